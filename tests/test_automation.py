"""Landing sensor, daily schedule, eager catalog refresh gated by blocking checks, and the
run-failure summary."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from car_rental_platform import definitions
from car_rental_platform.assets.kpi import KPI_CHECKS
from car_rental_platform.assets.processed import PROCESSED_CHECKS
from car_rental_platform.assets.raw import raw_files
from car_rental_platform.automation import (
    built_from,
    daily_refresh_schedule,
    landing_sensor,
    report_failed_runs,
)
from car_rental_platform.partitions import RENTAL_BATCHES
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.landing import Landing, LocalLanding
from spark_jobs.contract import RENTALS, SOURCE_TABLES, rental_batch

SNAPSHOT_FILES = ["locations.csv", "users.csv", "vehicles.csv"]
DAY_1 = "rental_transactions_2024-01-01.csv"
DAY_2 = "rental_transactions_2024-01-02.csv"
A_RENTALS_EXPORT = (
    "a rentals export (rental_transactions.csv or rental_transactions_YYYY-MM-DD.csv)"
)

# What each run rebuilds, spelled out: a snapshot's own tables and those built from it, never a
# rentals partition; a rentals export's partition and everything downstream, no other snapshot.
SNAPSHOT_RUNS = {
    "vehicles.csv": [
        "analyses/top_brands_by_revenue", "analyses/vehicle_types_by_rentals",
        "catalog/brand_metrics", "catalog/rejected_rows", "catalog/vehicle_type_metrics",
        "catalog/vehicles", "kpi/brand_metrics", "kpi/vehicle_type_metrics",
        "processed/rejected_rows", "processed/vehicles", "raw/vehicles",
    ],
    "users.csv": [
        "analyses/top_spenders", "catalog/rejected_rows", "catalog/user_metrics",
        "catalog/users", "kpi/user_metrics", "processed/rejected_rows", "processed/users",
        "raw/users",
    ],
    "locations.csv": [
        "analyses/city_state_rollup", "analyses/top_locations_by_revenue",
        "catalog/location_metrics", "catalog/locations", "catalog/rejected_rows",
        "kpi/location_metrics", "processed/locations", "processed/rejected_rows",
        "raw/locations",
    ],
}  # fmt: skip
ALL_ASSETS = sorted(k.to_user_string() for k in definitions.defs.resolve_all_asset_keys())
RENTALS_RUN = [
    key
    for key in ALL_ASSETS
    if key.split("/")[0] not in ("raw", "processed", "catalog")
    or key.split("/")[1] not in ("vehicles", "users", "locations")
]


def write_landing(folder: Path, names: Iterable[str] | None = None) -> None:
    """Header-only exports (the three snapshots and DAY_1 unless ``names``)."""
    by_name = {t.file_name: t for t in SOURCE_TABLES}
    for name in names or [*SNAPSHOT_FILES, DAY_1]:
        table = RENTALS if rental_batch(name) else by_name[name]
        (folder / name).write_text(",".join(table.column_names) + "\n")


def run_key(folder: Path, name: str, key: str | None = None) -> str:
    """The run key of a file's current version: ``<partition or file>:<size>:<mtime>``."""
    stat = (folder / name).stat()
    return f"{key or name}:{stat.st_size}:{stat.st_mtime_ns}"


class SensorDaemon:
    """Ticks the landing sensor as the daemon does: each tick gets the last tick's cursor and
    the definitions, and the partitions a tick asks for are added before the next one."""

    def __init__(self, landing: Landing, instance: dg.DagsterInstance) -> None:
        self.landing = landing
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> Any:
        context = dg.build_sensor_context(
            instance=self.instance,
            # The daemon's context has the instance's ref, through which the requested
            # partition keys are checked against the registered ones.
            instance_ref=self.instance.get_ref(),
            cursor=self.cursor,
            definitions=definitions.defs,
            resources={"landing": self.landing},
        )
        result = landing_sensor.evaluate_tick(context)
        for request in result.dynamic_partitions_requests or []:
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        self.cursor = result.cursor
        return result

    @property
    def partitions(self) -> list[str]:
        return self.instance.get_dynamic_partitions(RENTAL_BATCHES.name)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def daemon(tmp_path: Path, instance: dg.DagsterInstance) -> SensorDaemon:
    return SensorDaemon(LocalLanding(source_dir=str(tmp_path)), instance)


def runs(tick: Any) -> list[tuple[str | None, str, list[str], str]]:
    """Each requested run: (partition key, run key, assets, the file it was requested for)."""
    return [
        (
            request.partition_key,
            request.run_key,
            [key.to_user_string() for key in request.asset_selection],
            request.tags["car_rental/changed_file"],
        )
        for request in tick.run_requests
    ]


def added_partitions(tick: Any) -> list[str]:
    return [key for request in tick.dynamic_partitions_requests for key in request.partition_keys]


def landed(daemon: SensorDaemon, folder: Path) -> Any:
    """The default landing, once stable and requested (two ticks)."""
    write_landing(folder)
    assert daemon.tick().run_requests == []
    first = daemon.tick()
    assert len(first.run_requests) == 4
    return first


def test_nothing_is_requested_until_the_snapshots_and_a_rentals_export_are_stable(
    tmp_path: Path, daemon: SensorDaemon
) -> None:
    empty = daemon.tick()
    assert empty.run_requests == []
    assert f"still missing: {[*SNAPSHOT_FILES, A_RENTALS_EXPORT]}" in empty.skip_message

    write_landing(tmp_path, ["users.csv", DAY_1])
    two = daemon.tick()
    assert two.run_requests == []
    assert "still missing: ['locations.csv', 'vehicles.csv']" in two.skip_message
    assert f"waiting for {[DAY_1, 'users.csv']} to stop changing" in two.skip_message

    # users.csv and the day are stable now: still nothing, the KPIs need the other snapshots.
    stable_two = daemon.tick()
    assert stable_two.run_requests == []
    assert "still missing: ['locations.csv', 'vehicles.csv']" in stable_two.skip_message
    assert "waiting" not in stable_two.skip_message

    write_landing(tmp_path, ["locations.csv", "vehicles.csv"])
    (tmp_path / "notes.csv").write_text("x\n")
    all_there = daemon.tick()
    assert all_there.run_requests == []
    assert "still missing" not in all_there.skip_message
    assert (
        "waiting for ['locations.csv', 'vehicles.csv'] to stop changing" in all_there.skip_message
    )
    assert "unchanged for one tick" in all_there.skip_message
    assert daemon.partitions == []

    stable = daemon.tick()
    assert runs(stable) == [
        (None, run_key(tmp_path, "vehicles.csv"), SNAPSHOT_RUNS["vehicles.csv"], "vehicles.csv"),
        (None, run_key(tmp_path, "users.csv"), SNAPSHOT_RUNS["users.csv"], "users.csv"),
        (None, run_key(tmp_path, "locations.csv"), SNAPSHOT_RUNS["locations.csv"], "locations.csv"),
        ("2024-01-01", run_key(tmp_path, DAY_1, "2024-01-01"), RENTALS_RUN, DAY_1),
    ]  # fmt: skip
    assert {r.tags["car_rental/change"] for r in stable.run_requests} == {"new"}
    assert stable.dynamic_partitions_requests == [RENTAL_BATCHES.build_add_request(["2024-01-01"])]
    assert daemon.partitions == ["2024-01-01"]

    again = daemon.tick()
    assert again.run_requests == []
    assert added_partitions(again) == []
    assert "(the 4 contract files are unchanged since their runs were requested)" in (
        again.skip_message
    )
    assert "ignored (not part of the contract): ['notes.csv']" in again.skip_message
    assert daemon.tick().run_requests == []


def test_a_new_daily_export_requests_exactly_its_partition_once(
    tmp_path: Path, daemon: SensorDaemon
) -> None:
    landed(daemon, tmp_path)
    write_landing(tmp_path, [DAY_2])
    arriving = daemon.tick()
    assert arriving.run_requests == []
    assert f"waiting for {[DAY_2]} to stop changing" in arriving.skip_message

    (request,) = daemon.tick().run_requests
    assert (request.partition_key, request.run_key) == (
        "2024-01-02",
        run_key(tmp_path, DAY_2, "2024-01-02"),
    )
    assert [k.to_user_string() for k in request.asset_selection] == RENTALS_RUN
    assert request.tags["car_rental/changed_file"] == DAY_2
    assert request.tags["car_rental/change"] == "new"
    assert request.tags["dagster/partition"] == "2024-01-02"
    assert daemon.partitions == ["2024-01-01", "2024-01-02"]

    after = daemon.tick()
    assert after.run_requests == []
    assert added_partitions(after) == []
    assert "(the 5 contract files are unchanged" in after.skip_message


def test_a_relanded_day_is_requested_again_under_a_new_run_key(
    tmp_path: Path, daemon: SensorDaemon
) -> None:
    first = landed(daemon, tmp_path)
    (first_day,) = [r for r in first.run_requests if r.partition_key]
    day = tmp_path / DAY_1
    with day.open("a") as export:  # the marketplace corrects the day's export
        export.write("r1,u1,v1,2024-01-01 10:00:00,2024-01-01 11:00:00,1,1,5\n")
    assert daemon.tick().run_requests == []

    relanded = daemon.tick()
    assert runs(relanded) == [
        ("2024-01-01", run_key(tmp_path, DAY_1, "2024-01-01"), RENTALS_RUN, DAY_1)
    ]
    (request,) = relanded.run_requests
    assert request.run_key != first_day.run_key
    assert request.tags["car_rental/change"] == "re-landed"
    assert added_partitions(relanded) == []  # registered already
    assert daemon.tick().run_requests == []

    # A rewrite of the same size is told apart by its version (mtime).
    stat = day.stat()
    os.utime(day, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = daemon.tick()
    assert f"waiting for {[DAY_1]} to stop changing" in touched.skip_message
    (rewritten,) = daemon.tick().run_requests
    assert rewritten.partition_key == "2024-01-01"
    assert rewritten.run_key == run_key(tmp_path, DAY_1, "2024-01-01") != request.run_key
    assert daemon.partitions == ["2024-01-01"]


def test_a_file_still_being_written_requests_nothing_until_it_is_stable(
    tmp_path: Path, daemon: SensorDaemon
) -> None:
    landed(daemon, tmp_path)
    day = tmp_path / DAY_2
    with day.open("w") as upload:  # an upload in progress: the file grows between ticks
        upload.write(",".join(RENTALS.column_names) + "\n")
        upload.flush()
        started = daemon.tick()
        upload.write("r1,u1,v1,2024-01-02 10:00:00,")
        upload.flush()
        growing = daemon.tick()
        upload.write("2024-01-02 11:00:00,1,1,5\n")
    for tick in (started, growing, grown := daemon.tick()):
        assert tick.run_requests == []
        assert added_partitions(tick) == []
        assert f"waiting for {[DAY_2]} to stop changing" in tick.skip_message
    assert "(the 4 contract files are unchanged" in grown.skip_message
    assert daemon.partitions == ["2024-01-01"]

    settled = daemon.tick()
    assert runs(settled) == [
        ("2024-01-02", run_key(tmp_path, DAY_2, "2024-01-02"), RENTALS_RUN, DAY_2)
    ]


def test_a_changed_snapshot_requests_its_asset_and_downstream_and_no_rentals_partition(
    tmp_path: Path, daemon: SensorDaemon
) -> None:
    landed(daemon, tmp_path)
    with (tmp_path / "users.csv").open("a") as users:
        users.write("u9,Ada,Lovelace,ada@example.com,1,D1,2030-01-01,2024-01-01,1\n")
    changing = daemon.tick()
    assert changing.run_requests == []
    assert "waiting for ['users.csv'] to stop changing" in changing.skip_message

    changed = daemon.tick()
    assert runs(changed) == [
        (None, run_key(tmp_path, "users.csv"), SNAPSHOT_RUNS["users.csv"], "users.csv")
    ]
    assert changed.run_requests[0].tags["car_rental/change"] == "re-landed"
    assert "dagster/partition" not in changed.run_requests[0].tags
    assert added_partitions(changed) == []
    assert daemon.tick().run_requests == []


def test_a_snapshot_run_never_holds_a_partitioned_asset() -> None:
    """Its run has no partition key: a partitioned asset downstream is left out."""
    repo = definitions.defs.get_repository_def()
    assets = repo.assets_defs_by_key
    raw = {t.name: dg.AssetKey(["raw", t.name]) for t in SOURCE_TABLES}
    partitioned = {"raw/rentals", "processed/rentals"}
    for name in ("vehicles", "users", "locations"):
        keys = {k.to_user_string() for k in built_from(raw[name], assets, partitioned=False)}
        assert keys == set(SNAPSHOT_RUNS[f"{name}.csv"])
    rentals = {k.to_user_string() for k in built_from(raw["rentals"], assets, partitioned=True)}
    assert rentals == set(RENTALS_RUN) and partitioned <= rentals
    unpartitioned = built_from(raw["rentals"], assets, partitioned=False)
    assert {k.to_user_string() for k in unpartitioned} == rentals - partitioned


def test_nothing_is_requested_while_a_snapshot_is_missing(
    tmp_path: Path, daemon: SensorDaemon
) -> None:
    landed(daemon, tmp_path)
    (tmp_path / "vehicles.csv").unlink()
    write_landing(tmp_path, [DAY_2])
    for _ in range(3):
        tick = daemon.tick()
        assert tick.run_requests == []
        assert added_partitions(tick) == []
        assert "still missing: ['vehicles.csv']" in tick.skip_message
    assert daemon.partitions == ["2024-01-01"]

    write_landing(tmp_path, ["vehicles.csv"])
    assert daemon.tick().run_requests == []
    back = daemon.tick()
    assert runs(back) == [
        (None, run_key(tmp_path, "vehicles.csv"), SNAPSHOT_RUNS["vehicles.csv"], "vehicles.csv"),
        ("2024-01-02", run_key(tmp_path, DAY_2, "2024-01-02"), RENTALS_RUN, DAY_2),
    ]  # fmt: skip
    assert added_partitions(back) == ["2024-01-02"]


def test_a_daily_export_named_with_an_impossible_day_holds_the_requests_back(
    tmp_path: Path, daemon: SensorDaemon
) -> None:
    """Every rentals run lists the landing and would fail on it: the tick says to rename it."""
    landed(daemon, tmp_path)
    write_landing(tmp_path, [DAY_2])
    (tmp_path / "rental_transactions_2024-02-30.csv").write_text("x\n")
    daemon.tick()
    held = daemon.tick()
    assert held.run_requests == []
    assert "rename rental_transactions_2024-02-30.csv: 2024-02-30 is not a date" in (
        held.skip_message
    )
    (tmp_path / "rental_transactions_2024-02-30.csv").unlink()
    assert [r.partition_key for r in daemon.tick().run_requests] == ["2024-01-02"]


def test_an_export_without_its_partition_is_requested_whatever_the_cursor_says(
    tmp_path: Path, daemon: SensorDaemon
) -> None:
    """The cursor of the sensor before partitions listed the full file as requested: its
    partition was never registered, so it is requested (once) with the partition added."""
    names = [*SNAPSHOT_FILES, RENTALS.file_name]
    write_landing(tmp_path, names)
    seen = {name: run_key(tmp_path, name).split(":", 1)[1] for name in names}
    daemon.cursor = json.dumps({"listing": seen, "requested": seen})
    upgraded = daemon.tick()
    assert runs(upgraded) == [
        ("full", run_key(tmp_path, RENTALS.file_name, "full"), RENTALS_RUN, RENTALS.file_name)
    ]
    assert upgraded.run_requests[0].tags["car_rental/change"] == "new"
    assert added_partitions(upgraded) == ["full"]
    assert daemon.tick().run_requests == []


def test_daily_schedule_refreshes_every_registered_batch_in_one_run(
    instance: dg.DagsterInstance,
) -> None:
    assert daily_refresh_schedule.job_name == "refresh_all"
    assert daily_refresh_schedule.cron_schedule == "0 3 * * *"
    assert daily_refresh_schedule.execution_timezone == "UTC"
    assert daily_refresh_schedule.default_status == dg.DefaultScheduleStatus.STOPPED

    def tick() -> Any:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=None)
        return daily_refresh_schedule.evaluate_tick(context)

    nothing = tick()
    assert nothing.run_requests == []
    assert "No rental_batches partition registered yet" in nothing.skip_message

    # A day that landed late is registered last: the range is in registration order.
    instance.add_dynamic_partitions(RENTAL_BATCHES.name, ["full", "2024-01-02", "2024-01-01"])
    (request,) = tick().run_requests
    assert request.partition_key is None
    assert request.tags["dagster/asset_partition_range_start"] == "full"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-01-01"
    assert request.job_name in (None, "refresh_all")


CHECK_SPECS = [*PROCESSED_CHECKS, *KPI_CHECKS]


PARTITIONED = {"raw/rentals", "processed/rentals"}
"""Reported for one rentals batch, as a run of that partition reports them."""
BATCH = "2024-01-01"


def partition_of(instance: dg.DagsterInstance, key: str) -> str | None:
    if key not in PARTITIONED:
        return None
    instance.add_dynamic_partitions(RENTAL_BATCHES.name, [BATCH])
    return BATCH


def report_check(instance: dg.DagsterInstance, key: str, check: str, *, passed: bool) -> None:
    # Without a partition: the instance stores one runless evaluation per check and partition,
    # so a second one for the partition (the check passing after failing) could not be stored.
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey.from_user_string(key), check_name=check, passed=passed
        )
    )


def report_materialization(instance: dg.DagsterInstance, key: str) -> None:
    asset_key = dg.AssetKey.from_user_string(key)
    partition = partition_of(instance, key)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key, partition=partition))


def report(instance: dg.DagsterInstance, *keys: str) -> None:
    """A materialization of each asset, with its checks passing, as a run would report them."""
    for key in keys:
        report_materialization(instance, key)
        for spec in CHECK_SPECS:
            if spec.asset_key == dg.AssetKey.from_user_string(key):
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
        report_materialization(instance, "processed/rentals")
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
