"""The local deployment end to end: every asset, check and catalog entry, through Dagster."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from car_rental_platform.assets.raw import raw_files
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.landing import LocalLanding
from spark_jobs.contract import KPI_TABLES, RENTALS, SOURCE_TABLES, Check
from tests import kpi_oracle
from tests.graph_fixtures import MaterializedGraph

DB = "car_rental_db"
DB_QUOTED = f'"{DB}"'


def latest_metadata(graph: MaterializedGraph, *path: str) -> dict[str, object]:
    event = graph.instance.get_latest_materialization_event(dg.AssetKey(list(path)))
    assert event is not None, f"{'/'.join(path)} was never materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_every_asset_materializes(graph: MaterializedGraph) -> None:
    assert graph.result.success
    materialized = {
        e.asset_key.to_user_string() for e in graph.result.get_asset_materialization_events()
    }
    assert {
        "raw/rentals",
        "processed/rejected_rows",
        "kpi/user_metrics",
        "catalog/daily_metrics",
        "analyses/top_spenders",
        "analyses/city_state_rollup",
    } <= materialized
    assert len(materialized) == 4 + 5 + 7 + 12 + 8


def test_checks_pass_and_unknown_references_warn(graph: MaterializedGraph) -> None:
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in graph.result.get_asset_check_evaluations()
    }
    expected = 4 * 3 + 1 + 7 * 3  # processed: conserved, key, reject rate; rentals refs; kpi: 3
    assert len(evaluations) == expected
    warning = evaluations.pop(("processed/rentals", Check.REFERENCES_KNOWN.value))
    assert not warning.passed
    assert warning.severity == dg.AssetCheckSeverity.WARN
    counts = {k: v.value for k, v in warning.metadata.items()}
    examples = counts.pop("example_rental_ids").split(", ")
    total = counts.pop("rentals_with_unknown_references")
    # The generator plants 3 unknown users, 3 unknown vehicles, 2 pickups at location 99999
    # and 1 drop-off at 99998 among the valid rentals.
    assert counts == {
        "rentals_with_unknown_user": 3,
        "rentals_with_unknown_vehicle": 3,
        "rentals_with_unknown_pickup_location": 2,
        "rentals_with_unknown_dropoff_location": 1,
    }
    assert 3 <= total <= 9
    assert 1 <= len(examples) <= 4
    listed = ", ".join(f"'{e}'" for e in examples)
    known = graph.query(f"SELECT rental_id FROM {DB}.rentals WHERE rental_id IN ({listed})")
    assert sorted(known.rental_id) == sorted(examples)  # real rentals, kept
    failed = [key for key, e in evaluations.items() if not e.passed]
    assert failed == []


def test_rows_are_conserved_and_rejections_match_what_was_planted(graph: MaterializedGraph) -> None:
    rejected = graph.query(
        f"SELECT source_table, reason, count(*) AS n FROM {DB}.rejected_rows GROUP BY ALL"
    )
    found = {(r.source_table, r.reason): r.n for r in rejected.itertuples()}
    assert found == graph.sample.planted
    for table in SOURCE_TABLES:
        raw = latest_metadata(graph, "raw", table.name)
        processed = latest_metadata(graph, "processed", table.name)
        assert raw["row_count"] == graph.sample.rows[table.file_name]
        assert processed["row_count"] + processed["rows_rejected"] == raw["row_count"]
        kept = graph.query(f"SELECT count(*) AS n FROM {DB}.{table.name}").n[0]
        assert kept == processed["row_count"]


def test_materialization_metadata(graph: MaterializedGraph) -> None:
    raw = latest_metadata(graph, "raw", "rentals")
    assert raw["size_bytes"] > 0 and raw["path"].endswith(
        "raw/rental_transactions/batch=full/rental_transactions.csv"
    )
    processed = latest_metadata(graph, "processed", "rentals")
    assert processed["rejected_by_reason"] == {
        reason: n for (table, reason), n in graph.sample.planted.items() if table == "rentals"
    }
    assert processed["path"].endswith("processed/rentals")
    rejected = latest_metadata(graph, "processed", "rejected_rows")
    assert rejected["preview"].startswith("| source_table | source_file | line | reason | detail |")
    assert "duplicate_key" in rejected["preview"] or "malformed_line" in rejected["preview"]
    kpi = latest_metadata(graph, "kpi", "daily_metrics")
    assert kpi["preview"].startswith("| rental_date | total_transactions |")
    top_day = graph.query(
        f"SELECT CAST(rental_date AS VARCHAR) AS d FROM {DB}.daily_metrics "
        "ORDER BY total_revenue DESC LIMIT 1"
    ).d[0]
    assert kpi["preview"].splitlines()[2].startswith(f"| {top_day} |")  # sorted by revenue
    assert kpi["row_count"] == graph.query(f"SELECT count(*) AS n FROM {DB}.daily_metrics").n[0]
    catalog = latest_metadata(graph, "catalog", "daily_metrics")
    assert catalog["dagster/table_name"] == f"{DB}.daily_metrics"
    assert catalog["crawl_status"] in ("created", "unchanged")
    assert [c.name for c in catalog["dagster/column_schema"].columns][:2] == [
        "rental_date",
        "total_transactions",
    ]
    assert kpi["dagster/row_count"] == kpi["row_count"]  # Dagster's standard key, typed
    assert all(c.description for c in catalog["dagster/column_schema"].columns)
    analysis = latest_metadata(graph, "analyses", "top_spenders")
    assert analysis["row_count"] > 0 and "| user_id |" in analysis["preview"]
    assert analysis["dagster/row_count"] == analysis["row_count"]
    assert all(c.description for c in analysis["dagster/column_schema"].columns)
    assert analysis["sql"].startswith("```sql\nSELECT user_id,")
    assert f'FROM {DB_QUOTED}."user_metrics"' in analysis["sql"]
    spec = graph.result.dagster_run  # the run exists in the instance
    assert spec.is_success


def test_kpis_agree_with_an_independent_pandas_reading(graph: MaterializedGraph) -> None:
    rentals = graph.query(f"SELECT * FROM {DB}.rentals")
    vehicles = graph.query(f"SELECT * FROM {DB}.vehicles")
    daily = graph.query(f"SELECT * FROM {DB}.daily_metrics").set_index("rental_date")
    expected = kpi_oracle.daily(rentals)
    daily.index = pd.to_datetime(daily.index).date
    assert list(daily.index) == list(expected.index)
    assert daily["total_transactions"].tolist() == expected["total_transactions"].tolist()
    for day, row in expected.iterrows():
        assert kpi_oracle.half_up(daily.loc[day, "total_revenue"]) == row["total_revenue"]
        assert kpi_oracle.half_up(daily.loc[day, "avg_transaction_amount"]) == row["avg"]
        assert daily.loc[day, "unique_users"] == row["users"]
        assert daily.loc[day, "total_rental_hours"] == pytest.approx(row["hours"], abs=1e-9)

    users = graph.query(f"SELECT * FROM {DB}.user_metrics").set_index("user_id")
    oracle_users = kpi_oracle.user_metrics(rentals)
    assert sorted(users.index) == sorted(oracle_users.index)
    joined = users.join(oracle_users, rsuffix="_oracle")
    assert (joined["spending_percentile"] == joined["spending_percentile_oracle"]).all()
    assert (joined["spending_category"] == joined["spending_category_oracle"]).all()

    by_type = graph.query(f"SELECT * FROM {DB}.vehicle_type_metrics")
    assert {
        r.vehicle_type: kpi_oracle.half_up(r.total_revenue) for r in by_type.itertuples()
    } == kpi_oracle.vehicle_type_revenue(rentals, vehicles)

    weekdays = graph.query(f"SELECT day_number, total_transactions FROM {DB}.day_of_week_metrics")
    assert dict(zip(weekdays.day_number, weekdays.total_transactions, strict=True)) == (
        kpi_oracle.weekday_counts(rentals)
    )


def test_revenue_and_counts_agree_across_kpi_tables(graph: MaterializedGraph) -> None:
    totals = graph.query(f"SELECT count(*) AS n, sum(total_amount) AS revenue FROM {DB}.rentals")
    revenue = Decimal(str(totals.revenue[0])).quantize(Decimal("0.01"))
    for table in KPI_TABLES:
        sums = graph.query(
            f"SELECT sum({table.revenue_column}) AS revenue, sum({table.count_column}) AS n "
            f"FROM {DB}.{table.name}"
        )
        assert Decimal(str(sums.revenue[0])).quantize(Decimal("0.01")) == revenue, table.name
        assert sums.n[0] == totals.n[0], table.name


def test_analyses_are_queryable_from_the_catalog(graph: MaterializedGraph) -> None:
    spenders = graph.query(f"SELECT * FROM {DB}.top_spenders")
    top = graph.query(
        f"SELECT user_id FROM {DB}.user_metrics WHERE spending_category = 'Top Spender' "
        "ORDER BY total_spent DESC, user_id LIMIT 20"
    )
    assert spenders.user_id.tolist() == top.user_id.tolist()
    rollup = graph.query(f"SELECT sum(total_pickups) AS n FROM {DB}.city_state_rollup")
    rentals = graph.query(f"SELECT count(*) AS n FROM {DB}.{RENTALS.name}")
    assert rollup.n[0] == rentals.n[0]


def dagster_cli() -> str:
    return str(Path(sys.executable).with_name("dagster"))


def test_cli_subset_runs_only_the_needed_spark_work_and_is_idempotent(
    graph: MaterializedGraph, tmp_path: Path
) -> None:
    """`dagster asset materialize --select kpi/daily_metrics+` from a shell, twice."""
    lake = Path(graph.settings.lake_root)
    other = lake / "kpi" / "user_metrics"
    other_files = {p: p.stat().st_mtime_ns for p in other.glob("*.parquet")}
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "CAR_RENTAL_SOURCE_DIR": graph.settings.source_dir,
        "CAR_RENTAL_LAKE_ROOT": graph.settings.lake_root,
    }
    (tmp_path / "home").mkdir()
    before = graph.query(f"SELECT * FROM {DB}.daily_metrics ORDER BY rental_date")
    outputs = []
    for _ in range(2):
        completed = subprocess.run(
            [
                dagster_cli(),
                "asset",
                "materialize",
                "--select",
                "kpi/daily_metrics+",
                "-m",
                "car_rental_platform.definitions",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, output[-4000:]
        outputs.append(output)
    for output in outputs:
        assert "--tables daily_metrics" in output
        assert "transform_job.py" not in output
        assert 'STEP_SUCCESS - Finished execution of step "catalog_kpi"' in output
        assert "analyses__" not in output  # `+` is one level downstream: the catalog entry
    after = graph.query(f"SELECT * FROM {DB}.daily_metrics ORDER BY rental_date")
    pd.testing.assert_frame_equal(before, after)
    assert {p: p.stat().st_mtime_ns for p in other.glob("*.parquet")} == other_files
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["catalog", "daily_metrics"]))
        assert event.asset_materialization.metadata["crawl_status"].value == "unchanged"


def test_missing_column_fails_the_raw_asset_naming_file_and_column(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    header = [c for c in RENTALS.column_names if c != "total_amount"] + ["amount"]
    (landing / RENTALS.file_name).write_text(",".join(header) + "\n")
    result = dg.materialize(
        [raw_files],
        selection=[dg.AssetKey(["raw", "rentals"])],
        resources={
            "landing": LocalLanding(source_dir=str(landing)),
            "lake": LocalLake(root=str(tmp_path / "lake")),
        },
        raise_on_error=False,
    )
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "rental_transactions.csv" in message
    assert "missing column(s) ['total_amount']" in message
    assert "unexpected column(s) ['amount']" in message
    assert not (tmp_path / "lake" / "raw" / "rental_transactions").exists()


def test_run_command_summary_reports_rows_rejections_and_revenue(graph: MaterializedGraph) -> None:
    from car_rental_platform.main import summary

    text = summary(graph.settings)
    kept = graph.query(f"SELECT count(*) AS n, sum(total_amount) AS r FROM {DB}.rentals")
    assert f"  {'rentals':<22} {kept.n[0]:>10,}" in text
    assert f"Total revenue: {kept.r[0]:,.2f}" in text
    for (table, reason), count in graph.sample.planted.items():
        assert f"  {table:<10} {reason:<26} {count:>6,}" in text
