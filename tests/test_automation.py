"""Landing sensor, daily schedule, eager catalog refresh gated by blocking checks, and the
run-failure summary."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from car_rental_platform import definitions
from car_rental_platform.assets.kpi import KPI_CHECKS
from car_rental_platform.assets.processed import PROCESSED_CHECKS
from car_rental_platform.assets.raw import raw_files
from car_rental_platform.automation import (
    daily_refresh_schedule,
    landing_sensor,
    report_failed_runs,
)
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.landing import LocalLanding
from spark_jobs.contract import SOURCE_TABLES

FILES = sorted(t.file_name for t in SOURCE_TABLES)


def write_landing(folder: Path, names: Iterable[str] | None = None) -> None:
    """Header-only contract files (all four unless ``names``)."""
    by_name = {t.file_name: t for t in SOURCE_TABLES}
    for name in names or FILES:
        (folder / name).write_text(",".join(by_name[name].column_names) + "\n")


def evaluate(folder: Path, cursor: str | None):
    context = dg.build_sensor_context(
        cursor=cursor, resources={"landing": LocalLanding(source_dir=str(folder))}
    )
    return landing_sensor.evaluate_tick(context)


def test_sensor_waits_for_all_four_files_then_for_one_unchanged_tick(tmp_path: Path) -> None:
    empty = evaluate(tmp_path, None)
    assert empty.run_requests == []
    assert f"still missing: {FILES}" in empty.skip_message

    write_landing(tmp_path, ["users.csv"])
    one = evaluate(tmp_path, empty.cursor)
    assert one.run_requests == []
    missing = ["locations.csv", "rental_transactions.csv", "vehicles.csv"]
    assert f"still missing: {missing}" in one.skip_message
    assert "waiting for ['users.csv'] to stop changing" in one.skip_message

    write_landing(tmp_path, missing)
    (tmp_path / "notes.csv").write_text("x\n")
    four = evaluate(tmp_path, one.cursor)
    assert four.run_requests == []
    assert "still missing" not in four.skip_message
    assert f"waiting for {missing} to stop changing" in four.skip_message
    assert "unchanged for one tick" in four.skip_message

    stable = evaluate(tmp_path, four.cursor)
    (request,) = stable.run_requests
    assert request.tags["car_rental/changed_files"] == ",".join(FILES)

    again = evaluate(tmp_path, stable.cursor)
    assert again.run_requests == []
    assert "(the 4 files are unchanged since their run was requested)" in again.skip_message
    assert "ignored (not part of the contract): ['notes.csv']" in again.skip_message
    assert evaluate(tmp_path, again.cursor).run_requests == []


def test_a_file_still_growing_starts_no_run_until_it_is_stable(tmp_path: Path) -> None:
    write_landing(tmp_path)
    seen = evaluate(tmp_path, evaluate(tmp_path, None).cursor)
    (first,) = seen.run_requests

    rentals = tmp_path / "rental_transactions.csv"
    with rentals.open("a") as upload:  # an upload in progress: the file grows between ticks
        upload.write("r1,u1,v1,2024-01-01 10:00:00,")
        upload.flush()
        growing = evaluate(tmp_path, seen.cursor)
        upload.write("2024-01-01 11:00:00,1,1,5\n")
    assert growing.run_requests == []
    assert "waiting for ['rental_transactions.csv'] to stop changing" in growing.skip_message

    grown = evaluate(tmp_path, growing.cursor)
    assert grown.run_requests == []
    assert "waiting for ['rental_transactions.csv'] to stop changing" in grown.skip_message

    settled = evaluate(tmp_path, grown.cursor)
    (request,) = settled.run_requests
    assert request.tags["car_rental/changed_files"] == "rental_transactions.csv"
    assert request.run_key != first.run_key


def test_a_rewrite_of_the_same_size_counts_as_a_change(tmp_path: Path) -> None:
    """The version (mtime) tells a same-size rewrite apart; restoring the requested set does not
    request it again."""
    write_landing(tmp_path)
    requested = evaluate(tmp_path, evaluate(tmp_path, None).cursor)
    assert len(requested.run_requests) == 1
    users = tmp_path / "users.csv"
    stat = users.stat()
    os.utime(users, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = evaluate(tmp_path, requested.cursor)
    assert "waiting for ['users.csv'] to stop changing" in touched.skip_message
    (request,) = evaluate(tmp_path, touched.cursor).run_requests
    assert request.tags["car_rental/changed_files"] == "users.csv"


def test_daily_schedule_requests_the_refresh_all_job() -> None:
    context = dg.build_schedule_context(scheduled_execution_time=None)
    data = daily_refresh_schedule.evaluate_tick(context)
    assert len(data.run_requests) == 1
    assert daily_refresh_schedule.job_name == "refresh_all"
    assert daily_refresh_schedule.cron_schedule == "0 3 * * *"


CHECK_SPECS = [*PROCESSED_CHECKS, *KPI_CHECKS]


def report_check(instance: dg.DagsterInstance, key: str, check: str, *, passed: bool) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey.from_user_string(key), check_name=check, passed=passed
        )
    )


def report(instance: dg.DagsterInstance, *keys: str) -> None:
    """A materialization of each asset, with its checks passing, as a run would report them."""
    for key in keys:
        asset_key = dg.AssetKey.from_user_string(key)
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key))
        for spec in CHECK_SPECS:
            if spec.asset_key == asset_key:
                report_check(instance, key, spec.name, passed=True)


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


def test_no_catalog_refresh_over_a_table_whose_blocking_check_failed() -> None:
    """The eager refresh of ``catalog/rentals`` waits until every blocking check passes."""
    defs = definitions.defs
    catalog_rentals = dg.AssetKey(["catalog", "rentals"])
    with dg.instance_for_test() as instance:
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        instance.report_runless_asset_event(
            dg.AssetMaterialization(dg.AssetKey(["processed", "rentals"]))
        )
        report_check(instance, "processed/rentals", "rows_conserved", passed=True)
        report_check(instance, "processed/rentals", "reject_rate_within_limit", passed=True)
        report_check(instance, "processed/rentals", "references_known", passed=True)
        report_check(instance, "processed/rentals", "primary_key_unique", passed=False)
        blocked = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=baseline.cursor
        )
        assert blocked.get_num_requested(catalog_rentals) == 0
        assert blocked.total_requested == 0

        report_check(instance, "processed/rentals", "primary_key_unique", passed=True)
        passed = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=blocked.cursor
        )
        assert passed.get_num_requested(catalog_rentals) == 1
        assert passed.total_requested == 1


def test_a_failed_warning_check_does_not_hold_the_catalog_back() -> None:
    """Only blocking checks gate the refresh: ``references_known`` (WARN) failing does not."""
    defs = definitions.defs
    with dg.instance_for_test() as instance:
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        report(instance, "processed/rentals")
        report_check(instance, "processed/rentals", "references_known", passed=False)
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=baseline.cursor
        )
        assert result.get_num_requested(dg.AssetKey(["catalog", "rentals"])) == 1


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
