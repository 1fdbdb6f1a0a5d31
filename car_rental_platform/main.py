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
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import dagster as dg

from car_rental_platform.resources.duckdb_catalog import duckdb_connection
from car_rental_platform.resources.query import quote_identifier
from car_rental_platform.sample_data.generator import generate
from car_rental_platform.settings import (
    DEFAULT_SOURCE_DIR,
    LocalSettings,
    dagster_home_or_default,
    source_dir_given,
)
from spark_jobs.contract import DATABASE, KPI_TABLES, REJECTED_ROWS_TABLE, SOURCE_TABLES

PROJECT_DIR = Path(__file__).resolve().parents[1]
WORKSPACE = PROJECT_DIR / "workspace.yaml"
INSTANCE_CONFIG = PROJECT_DIR / "instance" / "dagster.yaml"
"""Shipped outside the project root: Dagster warns about a dagster.yaml in the current folder
that is not DAGSTER_HOME's."""
LOCATION = "car_rental_platform"
"""The code location's one name: workspace.yaml, pyproject's [tool.dagster], dagster_cloud.yaml."""
JOB = "refresh_all"
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
    """Create DAGSTER_HOME and give it the shipped dagster.yaml unless it has its own."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")


def run_log_path(home: Path) -> Path:
    return home / RUN_LOG_DIR / "last_run.log"


def launch_command(
    run_id: str, *, workspace: Path = WORKSPACE, location: str = LOCATION, job: str = JOB
) -> list[str]:
    """``dagster job launch`` of the job in the workspace's code location, with our run id."""
    dagster = Path(sys.executable).with_name("dagster")
    return [
        str(dagster), "job", "launch", "-w", str(workspace), "-l", location, "-j", job,
        "--run-id", run_id,
    ]  # fmt: skip


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


def ensure_source(settings: LocalSettings, env: dict[str, str]) -> None:
    """Generate the sample data when the default source folder is absent."""
    source = Path(settings.source_dir)
    expected = [t.file_name for t in SOURCE_TABLES]
    if all((source / name).is_file() for name in expected):
        return
    if source_dir_given(env):
        missing = [name for name in expected if not (source / name).is_file()]
        raise SystemExit(f"CAR_RENTAL_SOURCE_DIR={source}: missing {missing}")
    print(f"No sample data in {DEFAULT_SOURCE_DIR}/: generating it (seed 42).")
    summary = generate(source)
    print(f"  {sum(summary.rows.values()):,} rows in {len(summary.rows)} files -> {source}")


def summary(settings: LocalSettings) -> str:
    """Rows per table, rejected rows by reason, total revenue: read from the catalog."""
    lines = [f"Lake: {settings.lake_root}", f"Catalog: {settings.catalog_path} ({DATABASE})"]
    db = quote_identifier(settings.database)
    with duckdb_connection(
        settings.catalog_path, write=False, lock_timeout_seconds=60
    ) as connection:

        def scalar(sql: str) -> object:
            return connection.execute(sql).fetchone()[0]

        names = [t.name for t in SOURCE_TABLES] + [REJECTED_ROWS_TABLE]
        names += [t.name for t in KPI_TABLES]
        lines.append("Rows per table:")
        for name in names:
            rows = scalar(f"SELECT count(*) FROM {db}.{quote_identifier(name)}")
            lines.append(f"  {name:<22} {rows:>10,}")
        lines.append("Rejected rows by reason:")
        for table, reason, count in connection.execute(
            f"SELECT source_table, reason, count(*) FROM {db}.{REJECTED_ROWS_TABLE}"
            " GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            lines.append(f"  {table:<10} {reason:<26} {count:>6,}")
        revenue = scalar(f"SELECT sum(total_amount) FROM {db}.rentals")
        lines.append(f"Total revenue: {revenue:,.2f}")
    return "\n".join(lines)


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
    with log_path.open("w") as log:
        succeeded = run_job(env, log, launch_command(run_id), run_id)
    elapsed = time.monotonic() - started
    if not succeeded:
        print(f"Run {run_id} of {JOB} failed after {elapsed:.0f}s.")
        print(f"Its events are in the Dagster UI (make ui); launch output: {log_path}")
        return 1
    print(f"Materialized every asset in {elapsed:.0f}s (run {run_id}, launch output: {log_path})")
    print(summary(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
