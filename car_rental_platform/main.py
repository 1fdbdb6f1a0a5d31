"""The README's run command: run the ``refresh_all`` job through Dagster, then summarize.

    python -m car_rental_platform.main            (what ``make run`` does)

Reads the CSVs in ``CAR_RENTAL_SOURCE_DIR`` (default ``data/sample``, generated when absent),
writes the lake under ``CAR_RENTAL_LAKE_ROOT`` (default ``lake/``) and keeps Dagster's run
history in ``DAGSTER_HOME`` (default ``.dagster_home/``, configured by the shipped
``instance/dagster.yaml``).

The run is launched the way the UI launches one (``dagster job launch`` over ``workspace.yaml``),
so it carries the code location ``car_rental_platform`` and the job ``refresh_all``: the UI lists
it under that job and re-executes it without warnings. Progress is read from the instance's event
log (step starts, successes and failures), not parsed from log lines.

After the run, whether it succeeded or not, the command lists the run's failed checks with the
figures they measured, then the tables in the catalog (a table the run did not reach says so).
Its exit status is 1 when the run failed or an ERROR-severity check failed, 0 otherwise: a
failed WARN check (``references_known``) is listed but does not fail the command, because its
rows are kept and counted on purpose and a warning must not break a scheduler's or CI's run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import dagster as dg

from car_rental_platform.partitions import (
    RANGE_END,
    RANGE_START,
    RENTAL_BATCHES,
    landed_batches,
    range_tags,
    register,
)
from car_rental_platform.raw_records import file_sha256, landed_manifest
from car_rental_platform.resources.duckdb_catalog import duckdb_connection
from car_rental_platform.resources.query import quote_identifier
from car_rental_platform.sample_data.generator import generate
from car_rental_platform.settings import (
    DEFAULT_SOURCE_DIR,
    LocalSettings,
    dagster_home_or_default,
    source_dir_given,
)
from spark_jobs.contract import (
    DAILY_EXPORT_PATTERN,
    DATABASE,
    KPI_TABLES,
    REJECTED_ROWS_TABLE,
    RENTALS,
    SOURCE_TABLES,
)

PROJECT_DIR = Path(__file__).resolve().parents[1]
WORKSPACE = PROJECT_DIR / "workspace.yaml"
INSTANCE_CONFIG = PROJECT_DIR / "instance" / "dagster.yaml"
"""Shipped outside the project root: Dagster warns about a dagster.yaml in the current folder
that is not DAGSTER_HOME's."""
LOCATION = "car_rental_platform"
"""The code location's one name: workspace.yaml, pyproject's [tool.dagster], dagster_cloud.yaml."""
JOB = "refresh_all"
RENTALS_JOB = "refresh_rentals"
RUN_LOG_DIR = "run_output"
"""Folder of DAGSTER_HOME for the launch command's output. Not ``logs/``: that is Dagster's
telemetry queue, whose files the webserver and daemon move away and upload."""
POLL_SECONDS = 0.5
GRACE_SECONDS = 30.0
"""How long a run may take to start after the launch command has exited."""
NOT_YET_RUNNING = {
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
}

PROGRESS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
}


def prepare_instance(home: Path) -> None:
    """Create DAGSTER_HOME, give it the shipped dagster.yaml unless it has its own, and create
    its storage now: on a new home, this command and the launched run would otherwise both
    create the same SQLite tables at once, and one fails (``table job_ticks already exists``).
    """
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)):
        pass


def run_log_path(home: Path) -> Path:
    return home / RUN_LOG_DIR / "last_run.log"


def launch_command(
    run_id: str,
    *,
    workspace: Path = WORKSPACE,
    location: str = LOCATION,
    job: str = JOB,
    tags: Mapping[str, str] | None = None,
) -> list[str]:
    """``dagster job launch`` of the job in the workspace's code location, with our run id
    and ``tags`` (the range of rentals batches, from ``partitions.range_tags``)."""
    dagster = Path(sys.executable).with_name("dagster")
    command = [
        str(dagster), "job", "launch", "-w", str(workspace), "-l", location, "-j", job,
        "--run-id", run_id,
    ]  # fmt: skip
    if tags:
        command += ["--tags", json.dumps(dict(tags))]
    return command


def snapshots_changed(instance: dg.DagsterInstance, settings: LocalSettings) -> list[str]:
    """The snapshot exports never processed on this instance, landed again since they were
    processed (a transform that held them back), or whose bytes differ from the raw zone's."""
    source = Path(settings.source_dir)
    changed = []
    for table in SOURCE_TABLES:
        if table is RENTALS:
            continue
        manifest = landed_manifest(settings.lake_root, table.file_name)
        landed = manifest.sha256 if manifest else None
        processed = instance.get_latest_materialization_event(
            dg.AssetKey(["processed", table.name])
        )
        raw = instance.get_latest_materialization_event(dg.AssetKey(["raw", table.name]))
        if (
            processed is None
            or (raw is not None and raw.timestamp > processed.timestamp)  # held back since
            or landed != file_sha256(source / table.file_name)
        ):
            changed.append(table.file_name)
    return changed


def choose_job(
    instance: dg.DagsterInstance, settings: LocalSettings, out: Callable[[str], None] = print
) -> str:
    """``refresh_all``, or ``refresh_rentals`` when every snapshot is the one already landed
    and processed (cleaning it again would change nothing)."""
    changed = snapshots_changed(instance, settings)
    if changed:
        out(f"Snapshots new or changed: {', '.join(changed)}: running {JOB}.")
        return JOB
    out(f"Snapshots unchanged since their landing: running {RENTALS_JOB}.")
    return RENTALS_JOB


def latest_by_partition(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, float]:
    """When each partition of an asset was last materialized (timestamps, by partition key)."""
    latest: dict[str, float] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(key, limit=1000, cursor=cursor)
        for record in page.records:
            if record.partition_key is not None:
                latest.setdefault(record.partition_key, record.timestamp)
        if not page.has_more:
            return latest
        cursor = page.cursor


def batches_to_run(
    instance: dg.DagsterInstance, settings: LocalSettings, out: Callable[[str], None] = print
) -> dict[str, str]:
    """Run tags over the range of rentals batches the run processes: from the first to the
    last export that is new or changed (its bytes differ from the raw zone's copy, it was never
    processed, or it was landed again since it was: a transform that held it back).

    Every landed export is registered as a partition first (in batch order). With nothing new,
    the newest batch is run again, so the snapshots and everything downstream still refresh.
    """
    source = Path(settings.source_dir)
    batches = landed_batches([p.name for p in source.glob("*.csv") if p.is_file()])
    register(instance, batches)
    processed = latest_by_partition(instance, dg.AssetKey(["processed", RENTALS.name]))
    landed = latest_by_partition(instance, dg.AssetKey(["raw", RENTALS.name]))
    changed = []
    for batch in batches:
        manifest = landed_manifest(settings.lake_root, batch.file_name)
        if (
            # never processed, or landed again since (a transform that held it back)
            processed.get(batch.key, -1.0) < landed.get(batch.key, 0.0)
            or manifest is None
            or manifest.sha256 != file_sha256(source / batch.file_name)
        ):
            changed.append(batch.key)
    if not changed:
        out(f"No new or changed rentals export: refreshing the newest, {batches[-1].key}.")
        return range_tags(instance, [batches[-1].key])
    tags = range_tags(instance, changed)
    first, last = tags[RANGE_START], tags[RANGE_END]
    order = instance.get_dynamic_partitions(RENTAL_BATCHES.name)
    span = order.index(last) - order.index(first) + 1
    out(
        f"Rentals exports new or changed: {len(changed)}; "
        f"running {span} batch(es), {first} to {last}."
    )
    return tags


def progress_line(record: dg.EventLogRecord) -> str | None:
    """One screen line for a progress event (None for a check that passed)."""
    entry = record.event_log_entry
    event = entry.dagster_event
    if event is None:
        return None
    clock = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%H:%M:%S")
    kind = event.event_type
    if kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        evaluation = event.event_specific_data
        if evaluation is None or evaluation.passed:
            return None
        name = f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}"
        return f"  {clock} CHECK_{evaluation.severity.value:<7} {name}"
    line = f"  {clock} {kind.name:<13} {event.step_key or ''}".rstrip()
    if kind == dg.DagsterEventType.STEP_FAILURE:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.cause is not None:  # Dagster wraps the user's error
            error = error.cause
        if error is not None and error.message:
            line += "\n      " + error.message.strip().splitlines()[0][:300]
    return line


def follow_run(
    instance: dg.DagsterInstance,
    run_id: str,
    launcher: subprocess.Popen[str],
    out: Callable[[str], None] = print,
) -> dg.DagsterRunStatus | None:
    """Print the run's progress from its event log until it ends; its final status.

    None when the run was not running GRACE_SECONDS after the launch command's exit (it was
    never created, or never started).
    """
    cursor: str | None = None
    exited_at: float | None = None
    while True:
        if exited_at is None and launcher.poll() is not None:
            exited_at = time.monotonic()  # before reading: events up to here are seen below
        run = instance.get_run_by_id(run_id)
        if run is not None:
            page = instance.get_records_for_run(run_id, cursor=cursor, of_type=PROGRESS)
            for record in page.records:
                line = progress_line(record)
                if line:
                    out(line)
            cursor = page.cursor
            if page.has_more:
                continue
            if run.is_finished:
                return run.status
        if exited_at is not None:
            if run is None and launcher.returncode != 0:
                return None  # the launch itself failed; its output says why
            waiting = run is None or run.status in NOT_YET_RUNNING
            if waiting and time.monotonic() - exited_at > GRACE_SECONDS:
                return None
            time.sleep(POLL_SECONDS)  # the run worker outlives the launch command
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                launcher.wait(timeout=POLL_SECONDS)


def run_job(
    env: dict[str, str],
    log: TextIO,
    command: list[str],
    run_id: str,
    out: Callable[[str], None] = print,
) -> bool:
    """Launch the run, follow it; True when it succeeded."""
    out("$ " + " ".join(command))
    launcher = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            status = follow_run(instance, run_id, launcher, out)
    finally:
        if launcher.poll() is None:
            launcher.wait()
    return status == dg.DagsterRunStatus.SUCCESS


def missing_exports(source: Path) -> list[str]:
    """The snapshots absent from ``source``, and the rentals when it has no rentals export
    (``rental_transactions.csv`` or daily ``rental_transactions_YYYY-MM-DD.csv`` files)."""
    names = {p.name for p in source.glob("*.csv") if p.is_file()} if source.is_dir() else set()
    missing = [t.file_name for t in SOURCE_TABLES if t is not RENTALS and t.file_name not in names]
    if not any(DAILY_EXPORT_PATTERN.fullmatch(n) or n == RENTALS.file_name for n in names):
        missing.append(f"{RENTALS.file_name} (or daily {RENTALS.raw_name}_YYYY-MM-DD.csv)")
    return missing


def ensure_source(settings: LocalSettings, env: dict[str, str]) -> None:
    """Generate the sample data when the default source folder is absent."""
    source = Path(settings.source_dir)
    missing = missing_exports(source)
    if not missing:
        return
    if source_dir_given(env):
        raise SystemExit(f"CAR_RENTAL_SOURCE_DIR={source}: missing {missing}")
    print(f"No sample data in {DEFAULT_SOURCE_DIR}/: generating it (seed 42).")
    summary = generate(source)
    print(f"  {sum(summary.rows.values()):,} rows in {len(summary.rows)} files -> {source}")


@dataclass(frozen=True)
class FailedCheck:
    """A check that failed in the run, with the figures it measured."""

    asset_key: dg.AssetKey
    check_name: str
    severity: dg.AssetCheckSeverity
    metadata: Mapping[str, object]
    """Plain values (the metadata values' ``.value``)."""

    def line(self) -> str:
        figures = ", ".join(f"{name}={value}" for name, value in self.metadata.items())
        head = f"  {self.severity.value:<5} {self.asset_key.to_user_string()} {self.check_name}"
        return f"{head}: {figures}" if figures else head


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[FailedCheck]:
    """The run's checks whose latest evaluation failed, read from its event log."""
    latest: dict[dg.AssetCheckKey, dg.AssetCheckEvaluation] = {}
    cursor: str | None = None
    while True:
        page = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        for record in page.records:
            event = record.event_log_entry.dagster_event
            evaluation = event.event_specific_data if event else None
            if isinstance(evaluation, dg.AssetCheckEvaluation):
                latest[evaluation.asset_check_key] = evaluation
        cursor = page.cursor
        if not page.has_more:
            break
    return [
        FailedCheck(
            asset_key=evaluation.asset_key,
            check_name=evaluation.check_name,
            severity=evaluation.severity,
            metadata={k: getattr(v, "value", v) for k, v in evaluation.metadata.items()},
        )
        for evaluation in sorted(
            latest.values(), key=lambda e: (e.asset_key.to_user_string(), e.check_name)
        )
        if not evaluation.passed
    ]


def exit_status(*, run_succeeded: bool, failed: Sequence[FailedCheck]) -> int:
    """1 when the run failed or an ERROR check failed; a failed WARN check alone gives 0."""
    errors = [c for c in failed if c.severity == dg.AssetCheckSeverity.ERROR]
    return 0 if run_succeeded and not errors else 1


NOT_CATALOGED = "not in the catalog yet"


def summary(settings: LocalSettings) -> str:
    """Rows per table, rejected rows by reason, total revenue: read from the catalog.

    Empty tables show 0 (revenue 0.00); a table not yet in the catalog (the run stopped before
    cataloging it, or never ran) says so.
    """
    lines = [f"Lake: {settings.lake_root}", f"Catalog: {settings.catalog_path} ({DATABASE})"]
    db = quote_identifier(settings.database)
    with duckdb_connection(
        settings.catalog_path, write=False, lock_timeout_seconds=60
    ) as connection:

        def scalar(sql: str) -> object:
            return connection.execute(sql).fetchone()[0]

        cataloged = {
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [settings.database],
            ).fetchall()
        }
        names = [t.name for t in SOURCE_TABLES] + [REJECTED_ROWS_TABLE]
        names += [t.name for t in KPI_TABLES]
        lines.append("Rows per table:")
        for name in names:
            if name in cataloged:
                rows = scalar(f"SELECT count(*) FROM {db}.{quote_identifier(name)}")
                lines.append(f"  {name:<22} {rows:>10,}")
            else:
                lines.append(f"  {name:<22} {NOT_CATALOGED}")
        lines.append("Rejected rows by reason:")
        if REJECTED_ROWS_TABLE in cataloged:
            rejected = connection.execute(
                f"SELECT source_table, reason, count(*) FROM {db}.{REJECTED_ROWS_TABLE}"
                " GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            lines += [f"  {table:<10} {reason:<26} {n:>6,}" for table, reason, n in rejected]
            if not rejected:
                lines.append("  none")
        else:
            lines.append(f"  {REJECTED_ROWS_TABLE} {NOT_CATALOGED}")
        if RENTALS.name in cataloged:
            revenue = scalar(f"SELECT coalesce(sum(total_amount), 0) FROM {db}.{RENTALS.name}")
            lines.append(f"Total revenue: {revenue:,.2f}")
        else:
            lines.append(f"Total revenue: {RENTALS.name} {NOT_CATALOGED}")
    return "\n".join(lines)


def conclude(
    instance: dg.DagsterInstance,
    run_id: str,
    *,
    run_succeeded: bool,
    settings: LocalSettings,
    out: Callable[[str], None] = print,
) -> int:
    """Print the run's failed checks and the catalog summary; return the exit status."""
    failed = failed_checks(instance, run_id)
    if failed:
        out("Failed checks (an ERROR fails the command, a WARN is listed only):")
        for check in failed:
            out(check.line())
    out(summary(settings))
    status = exit_status(run_succeeded=run_succeeded, failed=failed)
    if run_succeeded and status:
        out(f"Run {run_id} succeeded but ERROR checks failed: exit status {status}.")
    return status


def main() -> int:
    env = dict(os.environ)  # passed on to the launch command and, through it, to the run
    home = dagster_home_or_default(env)
    env["DAGSTER_HOME"] = str(home)
    prepare_instance(home)
    settings = LocalSettings.from_env(env)
    ensure_source(settings, env)
    env.setdefault("CAR_RENTAL_SOURCE_DIR", settings.source_dir)
    log_path = run_log_path(home)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    run_id = str(uuid.uuid4())
    started = time.monotonic()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        partitions = batches_to_run(instance, settings)
        job = choose_job(instance, settings)
    command = launch_command(run_id, job=job, tags=partitions)
    with log_path.open("w") as log:
        succeeded = run_job(env, log, command, run_id)
    elapsed = time.monotonic() - started
    if succeeded:
        print(
            f"Materialized {'every asset' if job == JOB else 'the rentals and what they feed'} "
            f"in {elapsed:.0f}s (run {run_id}, launch output: {log_path})"
        )
    else:
        print(f"Run {run_id} of {job} failed after {elapsed:.0f}s.")
        print(f"Its events are in the Dagster UI (make ui); launch output: {log_path}")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return conclude(instance, run_id, run_succeeded=succeeded, settings=settings)


if __name__ == "__main__":
    sys.exit(main())
