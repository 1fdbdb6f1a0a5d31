"""'Execute' on a KPI or processed check: measured on the stored tables through the query engine,
no Spark."""

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
from car_rental_platform.assets.processed import processed_key, processed_tables
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


# --- processed checks -------------------------------------------------------------------


@pytest.fixture
def stored_processed(tmp_path: Path) -> dict[str, object]:
    """Four processed tables and their rejected rows, each input wrong in its own way.

    rentals: 3 kept + 1 rejected of 4 landed (25%); r2's dropoff (L2) and r3's user (u9) are
    unknown.
    users: 2 kept of 2 landed. vehicles: v1 twice (a repeated key), 2 kept of 3 landed (one
    record unaccounted for). locations: 1 kept + 3 rejected of 4 landed (75% > 10%).
    """
    lake = LocalLake(root=str(tmp_path / "lake"))
    engine = DuckDBQueryEngine(database_path=str(tmp_path / "catalog.duckdb"))
    tables = {
        "rentals": pa.table({
            "rental_id": ["r1", "r2", "r3"],
            "user_id": ["u1", "u2", "u9"],
            "vehicle_id": ["v1", "v1", "v1"],
            "pickup_location": ["L1", "L1", "L1"],
            "dropoff_location": ["L1", "L2", "L1"],
            "total_amount": pa.array([Decimal("1.00")] * 3, MONEY),
        }),
        "users": pa.table({"user_id": ["u1", "u2"]}),
        "vehicles": pa.table({"vehicle_id": ["v1", "v1"]}),
        "locations": pa.table({"location_id": ["L1"]}),
        "rejected_rows": pa.table({
            "source_table": ["rentals", "locations", "locations", "locations"],
            "reason": ["unparseable_value", "missing_required_value", "missing_required_value",
                       "duplicate_key"],
            "detail": ["total_amount is not a decimal: 'ten'", "location_id is empty",
                       "location_id is empty", "location_id L1 seen on line 2"],
        }),
    }  # fmt: skip
    for name, table in tables.items():
        write_table(lake, engine, Zone.PROCESSED, name, table)
    return {"spark": NoSpark(), "lake": lake, "engine": engine}


LANDED = {"rentals": 4, "users": 2, "vehicles": 3, "locations": 4}


def land(instance: dg.DagsterInstance, records: dict[str, int]) -> None:
    """What the raw assets' materializations record: each export's records and source."""
    for name, count in records.items():
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=dg.AssetKey(["raw", name]),
                metadata={
                    "dagster/row_count": count,
                    "source": dg.MetadataValue.path(f"/landing/{name}.csv"),
                },
            )
        )


def processed_check(table: str, name: Check) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(processed_key(table), name.value)


def run_processed_checks(
    resources: dict[str, object], instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey]
) -> dict[dg.AssetCheckKey, dg.AssetCheckEvaluation]:
    result = dg.materialize(
        [processed_tables],
        selection=dg.AssetSelection.checks(*keys),
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert result.get_asset_materialization_events() == []
    return {
        dg.AssetCheckKey(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()
    }


def test_a_processed_check_only_run_measures_the_stored_tables_and_writes_nothing(
    stored_processed: dict[str, object], tmp_path: Path
) -> None:
    before = files(tmp_path / "lake")
    keys = [spec.key for spec in processed_tables.check_specs]
    with dg.instance_for_test() as instance:
        land(instance, LANDED)
        evaluations = run_processed_checks(stored_processed, instance, keys)
    assert set(evaluations) == set(keys)
    assert files(tmp_path / "lake") == before

    def figures(table: str, name: Check) -> dict[str, object]:
        return {k: v.value for k, v in evaluations[processed_check(table, name)].metadata.items()}

    passed = {key for key, e in evaluations.items() if e.passed}
    assert passed == {
        processed_check("rentals", Check.ROWS_CONSERVED),
        processed_check("rentals", Check.PRIMARY_KEY_UNIQUE),
        processed_check("users", Check.ROWS_CONSERVED),
        processed_check("users", Check.PRIMARY_KEY_UNIQUE),
        processed_check("users", Check.REJECT_RATE),
        processed_check("vehicles", Check.REJECT_RATE),
        processed_check("locations", Check.ROWS_CONSERVED),
        processed_check("locations", Check.PRIMARY_KEY_UNIQUE),
    }
    assert figures("vehicles", Check.ROWS_CONSERVED) == {
        "raw_rows": 3,
        "kept_rows": 2,
        "rejected_rows": 0,
        "difference": 1,
        "source": "/landing/vehicles.csv",
    }
    assert figures("vehicles", Check.PRIMARY_KEY_UNIQUE)["duplicate_rows"] == 1
    rate = figures("locations", Check.REJECT_RATE)
    assert rate["reject_rate"] == 0.75
    assert rate["rejected_by_reason"] == {"duplicate_key": 1, "missing_required_value": 2}
    assert rate["top_problem"] == (
        "missing_required_value: 2 of 4 rows, e.g. 'location_id is empty'"
    )
    references = evaluations[processed_check("rentals", Check.REFERENCES_KNOWN)]
    assert references.severity == dg.AssetCheckSeverity.WARN
    assert {k: v.value for k, v in references.metadata.items()} == {
        "rentals_with_unknown_user": 1,
        "rentals_with_unknown_vehicle": 0,
        "rentals_with_unknown_pickup_location": 0,
        "rentals_with_unknown_dropoff_location": 1,
        "rentals_with_unknown_references": 2,
        "example_rental_ids": "r2, r3",
    }


def test_processed_check_only_conservation_needs_a_recorded_landing(
    stored_processed: dict[str, object],
) -> None:
    keys = [processed_check("users", Check.ROWS_CONSERVED)]
    with dg.instance_for_test() as instance:
        evaluations = run_processed_checks(stored_processed, instance, keys)
    outcome = evaluations[keys[0]]
    assert not outcome.passed
    assert outcome.metadata["problem"].value == (
        "no landing of users.csv is recorded: materialize raw/users first"
    )


def test_processed_check_only_uses_the_run_configured_reject_limit(
    stored_processed: dict[str, object],
) -> None:
    key = processed_check("locations", Check.REJECT_RATE)
    with dg.instance_for_test() as instance:
        land(instance, LANDED)
        result = dg.materialize(
            [processed_tables],
            selection=dg.AssetSelection.checks(key),
            resources=stored_processed,
            instance=instance,
            run_config={"ops": {"processed_tables": {"config": {"max_reject_rate": 0.8}}}},
        )
        (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["max_reject_rate"].value == 0.8


CALLS: list[tuple[str, list[str]]] = []
"""What ``RecordingRunner`` was asked for (Dagster runs a copy of the resource it is given)."""


class RecordingRunner(SparkRunner):
    """A runner that records the job it is asked for and reports nothing."""

    def run_job(
        self, *, context: dg.AssetExecutionContext, script: str, args: Sequence[str]
    ) -> list[PipesResult]:
        CALLS.append((script, list(args)))
        return []


def test_a_subset_of_processed_tables_asks_the_transform_to_publish_only_those(
    stored_processed: dict[str, object],
) -> None:
    runner = RecordingRunner()
    CALLS.clear()
    with dg.instance_for_test() as instance:
        dg.materialize(
            [processed_tables],
            selection=[processed_key("rentals"), processed_key("rejected_rows")],
            resources={**stored_processed, "spark": runner},
            instance=instance,
            raise_on_error=False,  # the recording runner reports no materialization
        )
        dg.materialize(
            [processed_tables],
            resources={**stored_processed, "spark": runner},
            instance=instance,
            raise_on_error=False,
        )
    (script, subset), (_, whole) = CALLS
    assert script == "transform_job.py"
    assert subset[-2:] == ["--tables", "rentals,rejected_rows"]
    assert "--tables" not in whole  # all five: the job's default


def test_a_check_only_run_over_an_uncataloged_table_says_what_to_materialize(
    tmp_path: Path,
) -> None:
    resources = {
        "spark": NoSpark(),
        "lake": LocalLake(root=str(tmp_path / "lake")),
        "engine": DuckDBQueryEngine(database_path=str(tmp_path / "catalog.duckdb")),
    }
    key = processed_check("users", Check.PRIMARY_KEY_UNIQUE)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [processed_tables],
            selection=dg.AssetSelection.checks(key),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert (
        "Cannot measure the stored table(s) rejected_rows, users: car_rental_db has no such "
        "table. Materialize catalog/rejected_rows, catalog/users (or the tables themselves)."
    ) in failure.step_failure_data.error.message
