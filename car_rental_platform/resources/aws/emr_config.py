"""Settings of the EMR runner that are not plain values: how transient clusters are built
(``EmrClusterTemplate``, its ``EmrBootstrapAction``s) and the instance prices of the cost estimate.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from car_rental_platform.aws_names import DEFAULT_PYSPARK_PYTHON, DEFAULT_RELEASE_LABEL, PROJECT


class EmrBootstrapAction(dg.Config):
    """A script every node runs before Spark starts (e.g. installing Python packages)."""

    name: str = Field(description="Name shown in the EMR console.")
    path: str = Field(description="s3:// URI of the script.")
    args: list[str] = Field(default_factory=list, description="Arguments of the script.")


class EmrClusterTemplate(dg.Config):
    """How transient clusters are built (roles, tags and log URI from ``aws_names``)."""

    name_prefix: str = Field(
        default=f"{PROJECT}-transient",
        description="Cluster name prefix; the run id's first 8 characters are appended.",
    )
    release_label: str = Field(default=DEFAULT_RELEASE_LABEL, description="EMR release.")
    master_instance_type: str = Field(default="m5.xlarge", description="Primary node type.")
    core_instance_type: str = Field(default="m5.xlarge", description="Core node type.")
    core_instance_count: int = Field(default=2, ge=1, description="Number of core nodes (>= 1).")
    core_market: Literal["ON_DEMAND", "SPOT"] = Field(
        default="ON_DEMAND", description="ON_DEMAND or SPOT: how the core nodes are bought."
    )
    spot_bid_price: str | None = Field(
        default=None,
        description="Highest spot price in USD per hour (e.g. '0.10'); unset: the on-demand price.",
    )
    subnet_id: str | None = Field(
        default=None,
        description="Subnet to launch in; it must carry for-use-with-amazon-emr-managed-policies.",
    )
    key_name: str | None = Field(default=None, description="EC2 key pair for SSH; none if unset.")
    step_concurrency: int = Field(
        default=2,
        ge=1,
        le=256,
        description="StepConcurrencyLevel, 1-256: independent steps run at once.",
    )
    pyspark_python: str | None = Field(
        default=DEFAULT_PYSPARK_PYTHON,
        description="Interpreter of PySpark (3.10+ for dagster-pipes); unset: EMR's default.",
    )
    python_bootstrap: bool = Field(
        default=True,
        description="Install pyspark_python (/usr/bin/python3.X, absent from EMR 7) on every "
        "node with car_rental_platform/emr_bootstrap.sh, before the bootstrap_actions below.",
    )
    bootstrap_actions: list[EmrBootstrapAction] = Field(
        default_factory=list, description="Bootstrap actions run on every node."
    )
    idle_timeout_minutes: int = Field(
        default=30,
        description="EMR terminates the cluster after this long without steps, should Dagster "
        "never get to (e.g. its process was killed); 0 disables. Minimum 1 minute. Set right "
        "after the launch; a cluster refused it is terminated.",
    )


def parse_prices(text: str) -> dict[str, float]:
    """``'m5.xlarge=0.24,r5.xlarge=0.315'`` -> ``{'m5.xlarge': 0.24, 'r5.xlarge': 0.315}``."""
    prices: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, price = (part.strip() for part in item.partition("="))
        try:
            value = float(price)
        except ValueError:
            value = -1.0
        if not kind or not value >= 0:
            raise ValueError(
                f"instance_prices_usd: {item!r} is not TYPE=USD_PER_HOUR (e.g. m5.xlarge=0.24)"
            )
        prices[kind] = value
    return prices
