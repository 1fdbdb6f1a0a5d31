"""Landing sensor, daily schedule, eager catalog refresh, and the run-failure summary."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from car_rental_platform import definitions
from car_rental_platform.assets.raw import raw_files
from car_rental_platform.automation import (
    daily_refresh_schedule,
    landing_sensor,
    report_failed_runs,
)
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.landing import LocalLanding
from spark_jobs.contract import SOURCE_TABLES


def write_landing(folder: Path) -> None:
    for table in SOURCE_TABLES:
        (folder / table.file_name).write_text(",".join(table.column_names) + "\n")


def evaluate(folder: Path, cursor: str | None):
    context = dg.build_sensor_context(
        cursor=cursor, resources={"landing": LocalLanding(source_dir=str(folder))}
    )
    return landing_sensor.evaluate_tick(context)


def test_sensor_requests_a_run_for_new_files_skips_unchanged_and_sees_changes(
    tmp_path: Path,
) -> None:
    empty = evaluate(tmp_path, None)
    assert empty.run_requests == []
    assert "still missing" in empty.skip_message

    write_landing(tmp_path)
    (tmp_path / "notes.csv").write_text("x\n")
    first = evaluate(tmp_path, empty.cursor)
    assert len(first.run_requests) == 1
    assert first.run_requests[0].tags["car_rental/changed_files"] == ",".join(
        sorted(t.file_name for t in SOURCE_TABLES)
    )

    unchanged = evaluate(tmp_path, first.cursor)
    assert unchanged.run_requests == []
    assert "4 of 4 files unchanged" in unchanged.skip_message
    assert "notes.csv" in unchanged.skip_message

    rentals = tmp_path / "rental_transactions.csv"
    rentals.write_text(
        rentals.read_text() + "r1,u1,v1,2024-01-01 10:00:00,2024-01-01 11:00:00,1,1,5\n"
    )
    stat = rentals.stat()
    os.utime(rentals, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed = evaluate(tmp_path, unchanged.cursor)
    assert len(changed.run_requests) == 1
    assert changed.run_requests[0].tags["car_rental/changed_files"] == "rental_transactions.csv"
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_daily_schedule_requests_the_refresh_all_job() -> None:
    context = dg.build_schedule_context(scheduled_execution_time=None)
    data = daily_refresh_schedule.evaluate_tick(context)
    assert len(data.run_requests) == 1
    assert daily_refresh_schedule.job_name == "refresh_all"
    assert daily_refresh_schedule.cron_schedule == "0 3 * * *"


def report(instance: dg.DagsterInstance, *keys: str) -> None:
    for key in keys:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(dg.AssetKey.from_user_string(key))
        )


def test_materialized_kpi_makes_its_catalog_entry_then_its_analyses_requested() -> None:
    """What the automation daemon (dagster dev) does after a KPI materialization."""
    defs = definitions.defs
    with dg.instance_for_test() as instance:
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert baseline.total_requested == 0  # nothing upstream exists yet
        report(instance, "kpi/daily_metrics", "processed/rentals")
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=baseline.cursor
        )

        def requested(key: str) -> int:
            return result.get_num_requested(dg.AssetKey.from_user_string(key))

        assert requested("catalog/daily_metrics") == 1
        assert requested("catalog/rentals") == 1
        # The analysis over the entry is requested in the same tick, to run after it.
        assert requested("analyses/daily_revenue_trend") == 1
        assert requested("catalog/user_metrics") == 0  # its KPI was never materialized
        assert result.total_requested == 3

        again = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert again.total_requested == 0  # nothing new upstream: no repeated request

        report(instance, "catalog/hourly_metrics")  # e.g. an entry refreshed from the CLI
        analyses = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=again.cursor
        )
        pattern = dg.AssetKey.from_user_string("analyses/hourly_pattern")
        assert analyses.get_num_requested(pattern) == 1
        assert analyses.total_requested == 1


def test_a_full_refresh_leaves_nothing_for_the_automation_to_redo() -> None:
    """After ``refresh_all`` (every table in one run) the sensor requests no second run."""
    defs = definitions.defs
    with dg.instance_for_test() as instance:
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        report(instance, "kpi/daily_metrics", "catalog/daily_metrics")
        report(instance, "analyses/daily_revenue_trend")
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=baseline.cursor
        )
        assert result.total_requested == 0


def test_run_failure_sensor_summarizes_the_failed_step(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "users.csv").write_text("user_id,first_name\n")
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [raw_files],
            selection=[dg.AssetKey(["raw", "users"])],
            resources={
                "landing": LocalLanding(source_dir=str(landing)),
                "lake": LocalLake(root=str(tmp_path / "lake")),
            },
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        failure = next(
            e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE
        )
        context = dg.build_run_status_sensor_context(
            sensor_name="report_failed_runs",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=failure,
        ).for_run_failure()
        from car_rental_platform.automation import failure_summary

        summary = failure_summary(context)
        report_failed_runs(context)
    job = result.dagster_run.job_name
    assert summary.startswith(
        f"Run {result.run_id} of job {job} failed.\n- step raw_files: Nothing landed (1 of 1"
    )
    assert "users.csv: missing column(s) ['last_name'," in summary
