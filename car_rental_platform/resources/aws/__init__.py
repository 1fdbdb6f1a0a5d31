"""The AWS twins of the local resources: S3 lake and landing, EMR Spark, Glue crawlers, Athena.

``aws_resources()`` is the resource dictionary of the ``aws`` deployment, with the same keys as
the local one. Every setting is a ``dg.EnvVar("CAR_RENTAL_...")`` resolved when a run starts (so
no value is read, and nothing is called, while definitions load) or, for an optional setting
whose variable is not set, the resource's default. ``CAR_RENTAL_BUCKET`` is required; the region
falls back to boto3's default (``AWS_REGION``); credentials are never settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import dagster as dg

from car_rental_platform.resources.aws.athena import AthenaQueryEngine
from car_rental_platform.resources.aws.emr_config import EmrBootstrapAction, EmrClusterTemplate
from car_rental_platform.resources.aws.emr_runner import EmrSparkRunner
from car_rental_platform.resources.aws.errors import (
    AthenaError,
    AthenaQueryError,
    AthenaTimeoutError,
    CrawlerError,
    CrawlerTimeoutError,
    EmrClusterError,
    EmrError,
    EmrStepError,
    EmrTimeoutError,
    TableRegistrationError,
)
from car_rental_platform.resources.aws.glue import GlueCrawlerCatalog
from car_rental_platform.resources.aws.s3 import S3Lake, S3Landing
from car_rental_platform.resources.dashboard import DashboardLinks
from car_rental_platform.resources.io_manager import LakehouseIOManager
from car_rental_platform.settings import variables_set

__all__ = [
    "SETTINGS",
    "AthenaError",
    "AthenaQueryEngine",
    "AthenaQueryError",
    "AthenaTimeoutError",
    "CrawlerError",
    "CrawlerTimeoutError",
    "EmrBootstrapAction",
    "EmrClusterError",
    "EmrClusterTemplate",
    "EmrError",
    "EmrSparkRunner",
    "EmrStepError",
    "EmrTimeoutError",
    "GlueCrawlerCatalog",
    "S3Lake",
    "S3Landing",
    "TableRegistrationError",
    "aws_resources",
]

SETTINGS: dict[str, str] = {
    "CAR_RENTAL_BUCKET": "the lake bucket (required)",
    "CAR_RENTAL_AWS_REGION": "AWS region (default: boto3's, e.g. AWS_REGION)",
    "CAR_RENTAL_AWS_ENDPOINT_URL": "AWS endpoint override (tests only)",
    "CAR_RENTAL_LANDING_PREFIX": "key prefix of the landed CSV exports (default landing/)",
    "CAR_RENTAL_SOURCE_ENCODING": "encoding of exports without a BOM (default utf-8; cp1252, "
    "users.csv=cp1252, ...)",
    "CAR_RENTAL_EMR_CLUSTER_ID": "run steps on this cluster",
    "CAR_RENTAL_EMR_CLUSTER_NAME": "run steps on the active cluster of this name",
    "CAR_RENTAL_EMR_RELEASE_LABEL": "release of transient clusters (default emr-7.5.0)",
    "CAR_RENTAL_EMR_SUBNET_ID": "subnet of transient clusters",
    "CAR_RENTAL_EMR_CORE_INSTANCE_COUNT": "core nodes of transient clusters (default 2)",
    "CAR_RENTAL_EMR_CORE_MARKET": "ON_DEMAND or SPOT core nodes of transient clusters",
    "CAR_RENTAL_EMR_POLL_SECONDS": "seconds between step polls (default 15)",
    "CAR_RENTAL_EMR_STEP_TIMEOUT_SECONDS": "seconds a step may take (default 21600)",
    "CAR_RENTAL_EMR_INSTANCE_PRICES_USD": "m5.xlarge=0.24,...: USD per instance-hour, for costs",
    "CAR_RENTAL_DATABASE": "Glue database, as the local catalog's (default car_rental_db)",
    "CAR_RENTAL_GLUE_CRAWLER_PREFIX": "crawler name prefix (default car-rental)",
    "CAR_RENTAL_GLUE_CRAWLER_ROLE_ARN": "crawler role (default: car-rental-glue-crawler-role)",
    "CAR_RENTAL_CRAWLER_TIMEOUT_SECONDS": "seconds a crawl may take (default 3600)",
    "CAR_RENTAL_ATHENA_WORKGROUP": "Athena workgroup (default car-rental)",
    "CAR_RENTAL_ATHENA_OUTPUT_LOCATION": "query results (default s3://<bucket>/athena_results/)",
    "CAR_RENTAL_ATHENA_TIMEOUT_SECONDS": "seconds a query may take (default 1800)",
    "CAR_RENTAL_DASHBOARD_URL": "where the dashboard is served (default http://127.0.0.1:8501)",
}
"""Every setting of the aws deployment and what it means (for the README and error messages)."""


def aws_resources(
    settings: Mapping[str, str] | None = None, *, variables: AbstractSet[str] | None = None
) -> dict[str, Any]:
    """The aws deployment's resources: ``lake landing spark catalog engine io_manager dashboard``.

    ``settings`` replaces the environment (values are used as given, e.g. in tests). Otherwise
    each ``CAR_RENTAL_*`` variable in ``variables`` (the set ones, from
    ``settings.variables_set``: only their presence is looked at, and only there) becomes a
    ``dg.EnvVar`` (Dagster reads the value when a run starts) and an unset optional one
    leaves the resource's default, so definitions load even with nothing set: a run without
    ``CAR_RENTAL_BUCKET`` fails at start with Dagster's message naming the variable.
    """
    if settings is None and variables is None:
        variables = variables_set(SETTINGS)
    pick = _picker(settings, variables or frozenset())
    connection: dict[str, Any] = {
        k: v
        for k, v in {
            "region_name": pick("CAR_RENTAL_AWS_REGION"),
            "endpoint_url": pick("CAR_RENTAL_AWS_ENDPOINT_URL"),
        }.items()
        if v is not None
    }
    bucket = pick("CAR_RENTAL_BUCKET", required=True)
    database = _given({"database": pick("CAR_RENTAL_DATABASE")})
    lake = S3Lake(bucket=bucket, **connection)
    engine = AthenaQueryEngine(
        bucket=bucket,
        **connection,
        **database,
        **_given(
            {
                "workgroup": pick("CAR_RENTAL_ATHENA_WORKGROUP"),
                "output_location": pick("CAR_RENTAL_ATHENA_OUTPUT_LOCATION"),
                "timeout_seconds": pick("CAR_RENTAL_ATHENA_TIMEOUT_SECONDS", kind=int),
            }
        ),
    )
    template = EmrClusterTemplate(
        **_given(
            {
                "release_label": pick("CAR_RENTAL_EMR_RELEASE_LABEL"),
                "subnet_id": pick("CAR_RENTAL_EMR_SUBNET_ID"),
                "core_instance_count": pick("CAR_RENTAL_EMR_CORE_INSTANCE_COUNT", kind=int),
                "core_market": pick("CAR_RENTAL_EMR_CORE_MARKET"),
            }
        )
    )
    return {
        "lake": lake,
        "landing": S3Landing(
            bucket=bucket,
            **connection,
            **_given(
                {
                    "prefix": pick("CAR_RENTAL_LANDING_PREFIX"),
                    "encoding": pick("CAR_RENTAL_SOURCE_ENCODING"),
                }
            ),
        ),
        "spark": EmrSparkRunner(
            bucket=bucket,
            **connection,
            cluster_template=template,
            **_given(
                {
                    "cluster_id": pick("CAR_RENTAL_EMR_CLUSTER_ID"),
                    "cluster_name": pick("CAR_RENTAL_EMR_CLUSTER_NAME"),
                    "poll_interval_seconds": pick("CAR_RENTAL_EMR_POLL_SECONDS", kind=int),
                    "step_timeout_seconds": pick("CAR_RENTAL_EMR_STEP_TIMEOUT_SECONDS", kind=int),
                    "instance_prices_usd": pick("CAR_RENTAL_EMR_INSTANCE_PRICES_USD"),
                }
            ),
        ),
        "catalog": GlueCrawlerCatalog(
            **connection,
            **database,
            **_given(
                {
                    "crawler_prefix": pick("CAR_RENTAL_GLUE_CRAWLER_PREFIX"),
                    "crawler_role_arn": pick("CAR_RENTAL_GLUE_CRAWLER_ROLE_ARN"),
                    "timeout_seconds": pick("CAR_RENTAL_CRAWLER_TIMEOUT_SECONDS", kind=int),
                }
            ),
        ),
        "engine": engine,
        "io_manager": LakehouseIOManager(lake=lake, engine=engine),
        "dashboard": DashboardLinks(**_given({"base_url": pick("CAR_RENTAL_DASHBOARD_URL")})),
    }


def _given(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Only the settings that were given: the rest keep the resource's default."""
    return {name: value for name, value in fields.items() if value is not None}


def _picker(settings: Mapping[str, str] | None, variables: AbstractSet[str]) -> Callable[..., Any]:
    def pick(name: str, *, kind: type = str, required: bool = False) -> Any:
        if name not in SETTINGS:
            raise KeyError(f"unknown setting {name}")
        if settings is not None:
            if name in settings and settings[name] != "":
                return kind(settings[name])
            return dg.EnvVar(name) if required else None
        if required or name in variables:
            return dg.EnvVar.int(name) if kind is int else dg.EnvVar(name)
        return None

    return pick
