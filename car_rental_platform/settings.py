"""The one place that reads the platform's environment: which deployment, and where things are.

Only ``definitions.py`` calls it, when the code location loads. Asset code never asks which
deployment it runs in; it gets resources.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal, get_args

from spark_jobs.contract import DATABASE

DEPLOYMENT_VAR = "CAR_RENTAL_DEPLOYMENT"
DEFAULT_SOURCE_DIR = "data/sample"
DEFAULT_LAKE_ROOT = "lake"
SPARK_MODE_VAR = "CAR_RENTAL_SPARK_MODE"
SparkMode = Literal["in_process", "spark_submit"]
SPARK_MODES: tuple[str, ...] = get_args(SparkMode)
DEFAULT_DASHBOARD_URL = "http://127.0.0.1:8501"


class Deployment(StrEnum):
    LOCAL = "local"
    AWS = "aws"


class SettingsError(ValueError):
    """A setting has a value the platform cannot use: names the variable."""


def deployment(env: Mapping[str, str] = os.environ) -> Deployment:
    value = env.get(DEPLOYMENT_VAR, Deployment.LOCAL.value).strip().lower()
    try:
        return Deployment(value)
    except ValueError:
        valid = ", ".join(d.value for d in Deployment)
        raise SettingsError(f"{DEPLOYMENT_VAR}={value!r}: expected one of {valid}") from None


@dataclass(frozen=True)
class LocalSettings:
    """Settings of the local deployment, each from a ``CAR_RENTAL_*`` variable or its default."""

    source_dir: str
    lake_root: str
    catalog_path: str
    database: str
    spark_mode: SparkMode = "in_process"
    dashboard_url: str = DEFAULT_DASHBOARD_URL
    source_encoding: str = "utf-8"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LocalSettings:
        def given(name: str, default: str) -> str:
            """An empty variable counts as unset (``X= make run`` must not mean the cwd)."""
            return env.get(name) or default

        lake_root = str(Path(given("CAR_RENTAL_LAKE_ROOT", DEFAULT_LAKE_ROOT)).resolve())
        return cls(
            source_dir=str(Path(given("CAR_RENTAL_SOURCE_DIR", DEFAULT_SOURCE_DIR)).resolve()),
            lake_root=lake_root,
            catalog_path=given(
                "CAR_RENTAL_CATALOG_PATH", str(Path(lake_root, "catalog", "car_rental.duckdb"))
            ),
            database=given("CAR_RENTAL_DATABASE", DATABASE),
            spark_mode=spark_mode(env),
            dashboard_url=given("CAR_RENTAL_DASHBOARD_URL", DEFAULT_DASHBOARD_URL),
            source_encoding=given("CAR_RENTAL_SOURCE_ENCODING", "utf-8"),
        )


def spark_mode(env: Mapping[str, str]) -> SparkMode:
    """How local Spark runs: in this process (default) or one spark-submit per job."""
    value = env.get(SPARK_MODE_VAR, "in_process").strip().lower().replace("-", "_")
    if value not in SPARK_MODES:
        valid = ", ".join(SPARK_MODES)
        raise SettingsError(f"{SPARK_MODE_VAR}={value!r}: expected one of {valid}")
    return value  # type: ignore[return-value]


def variables_set(names: Iterable[str], env: Mapping[str, str] = os.environ) -> frozenset[str]:
    """Which of ``names`` are set to a non-empty value: their presence only, never their value.

    The aws deployment turns each present one into a ``dg.EnvVar`` that Dagster reads when a
    run starts (and shows by name in the UI); an absent one leaves the resource's default.
    """
    return frozenset(name for name in names if env.get(name))


DEFAULT_DAGSTER_HOME = ".dagster_home"


def dagster_home_or_default(env: Mapping[str, str] = os.environ) -> Path:
    """``DAGSTER_HOME``, or ``.dagster_home/`` of the current folder (what ``make`` sets)."""
    return Path(env.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()


def source_dir_given(env: Mapping[str, str] = os.environ) -> bool:
    """Whether ``CAR_RENTAL_SOURCE_DIR`` names the exports (else the sample is generated)."""
    return bool(env.get("CAR_RENTAL_SOURCE_DIR"))


def dagster_home(env: Mapping[str, str] = os.environ) -> Path | None:
    """The Dagster instance folder (``DAGSTER_HOME``) when it exists, else None."""
    home = env.get("DAGSTER_HOME", "")
    return Path(home) if home and Path(home).is_dir() else None
