"""The dashboard builds its query engine from the Definitions' resources: DuckDB locally,
Athena on AWS, settings resolved from the same variables, and nothing called while building."""

from __future__ import annotations

import pytest

from car_rental_platform.dashboard.ui import build_engine
from car_rental_platform.resources.aws import SETTINGS, AthenaQueryEngine
from car_rental_platform.resources.duckdb_catalog import DuckDBQueryEngine


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*SETTINGS, "CAR_RENTAL_DEPLOYMENT", "CAR_RENTAL_CATALOG_PATH"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_local_engine_is_the_duckdb_catalog_of_the_lake(clean_env, tmp_path) -> None:
    clean_env.setenv("CAR_RENTAL_LAKE_ROOT", str(tmp_path / "lake"))
    engine = build_engine()
    assert isinstance(engine, DuckDBQueryEngine)
    assert engine.database_path == str(tmp_path / "lake" / "catalog" / "car_rental.duckdb")
    assert engine.database == "car_rental_db"


def test_aws_engine_is_athena_with_the_deployments_settings(clean_env) -> None:
    clean_env.setenv("CAR_RENTAL_DEPLOYMENT", "aws")
    clean_env.setenv("CAR_RENTAL_BUCKET", "my-car-rental-lake")
    clean_env.setenv("CAR_RENTAL_AWS_REGION", "eu-west-1")
    clean_env.setenv("CAR_RENTAL_ATHENA_WORKGROUP", "analysts")
    clean_env.setenv("CAR_RENTAL_DATABASE", "rentals_prod")
    engine = build_engine()
    assert isinstance(engine, AthenaQueryEngine)
    assert (engine.bucket, engine.region_name, engine.workgroup, engine.database) == (
        "my-car-rental-lake",
        "eu-west-1",
        "analysts",
        "rentals_prod",
    )
    assert engine.table_name("daily_metrics") == '"rentals_prod"."daily_metrics"'
