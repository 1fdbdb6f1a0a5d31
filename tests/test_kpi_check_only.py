"""'Execute' on a KPI check: measured on the stored table through the query engine, no Spark."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from car_rental_platform.assets.kpi import kpi_key, kpi_tables
from car_rental_platform.resources.dashboard import DashboardLinks
from car_rental_platform.resources.duckdb_catalog import DuckDBQueryEngine
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.spark import PipesResult, SparkRunner
from spark_jobs.contract import Check, Zone

MONEY = pa.decimal128(18, 2)


class NoSpark(SparkRunner):
    """A runner that fails the test if anything asks it to run a job."""

    def run_job(
        self, *, context: dg.AssetExecutionContext, script: str, args: Sequence[str]
    ) -> list[PipesResult]:
        raise AssertionError(f"a check-only run started {script} {list(args)}")


def write_table(lake: LocalLake, engine: DuckDBQueryEngine, zone: Zone, name: str, table: pa.Table):
    folder = Path(lake.table_uri(zone, name))
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "part-00000.parquet")
    with engine.connect(write=True) as session:
        session.register_table(table=name, location=lake.table_uri(zone, name))


@pytest.fixture
def stored(tmp_path: Path) -> dict[str, object]:
    """Rentals worth 30.50 in 3 rentals; daily_metrics agrees, brand_metrics repeats a key."""
    lake = LocalLake(root=str(tmp_path / "lake"))
    engine = DuckDBQueryEngine(database_path=str(tmp_path / "catalog.duckdb"))
    amounts = [Decimal("10.00"), Decimal("10.25"), Decimal("10.25")]
    write_table(
        lake, engine, Zone.PROCESSED, "rentals",
        pa.table({"rental_id": ["r1", "r2", "r3"], "total_amount": pa.array(amounts, MONEY)}),
    )  # fmt: skip
    write_table(
        lake, engine, Zone.KPI, "daily_metrics",
        pa.table({
            "rental_date": [date(2024, 1, 1), date(2024, 1, 2)],
            "total_transactions": [1, 2],
            "total_revenue": pa.array([Decimal("10.00"), Decimal("20.50")], MONEY),
        }),
    )  # fmt: skip
    write_table(
        lake, engine, Zone.KPI, "brand_metrics",
        pa.table({
            "brand": ["Kia", "Kia"],
            "total_rentals": [1, 1],
            "total_revenue": pa.array([Decimal("10.00"), Decimal("10.25")], MONEY),
        }),
    )  # fmt: skip
    return {
        "spark": NoSpark(),
        "lake": lake,
        "engine": engine,
        "dashboard": DashboardLinks(),
    }


def files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*.parquet")}


def check(table: str, name: Check) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(kpi_key(table), name.value)


def test_a_check_only_run_measures_the_stored_tables_and_writes_nothing(
    stored: dict[str, object], tmp_path: Path
) -> None:
    before = files(tmp_path / "lake")
    keys = [
        check("daily_metrics", Check.TOTALS_MATCH_RENTALS),
        check("daily_metrics", Check.PRIMARY_KEY_UNIQUE),
        check("brand_metrics", Check.TOTALS_MATCH_RENTALS),
        check("brand_metrics", Check.PRIMARY_KEY_UNIQUE),
    ]
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [kpi_tables],
            selection=dg.AssetSelection.checks(*keys),
            resources=stored,
            instance=instance,
            raise_on_error=False,
        )
        # brand_metrics' totals are off on purpose: a blocking check, so the step fails.
        assert not result.success
        assert result.get_asset_materialization_events() == []
        evaluations = {
            dg.AssetCheckKey(e.asset_key, e.check_name): e
            for e in result.get_asset_check_evaluations()
        }
    assert set(evaluations) == set(keys)  # the selected checks, and only those
    assert files(tmp_path / "lake") == before

    totals = evaluations[check("daily_metrics", Check.TOTALS_MATCH_RENTALS)]
    assert totals.passed
    assert {k: v.value for k, v in totals.metadata.items()} == {
        "table_total_revenue": 30.5,
        "rentals_revenue": 30.5,
        "table_total_transactions": 3,
        "rentals_count": 3,
    }
    assert evaluations[check("daily_metrics", Check.PRIMARY_KEY_UNIQUE)].passed

    brand_totals = evaluations[check("brand_metrics", Check.TOTALS_MATCH_RENTALS)]
    assert not brand_totals.passed
    assert brand_totals.severity == dg.AssetCheckSeverity.ERROR
    assert brand_totals.metadata["table_total_rentals"].value == 2
    brand_key = evaluations[check("brand_metrics", Check.PRIMARY_KEY_UNIQUE)]
    assert not brand_key.passed
    assert brand_key.metadata["duplicate_rows"].value == 1
