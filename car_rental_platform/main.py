"""The README's run command: materialize the whole graph through Dagster, then summarize.

    python -m car_rental_platform.main            (what ``make run`` does)

Reads the CSVs in ``CAR_RENTAL_SOURCE_DIR`` (default ``data/sample``, generated when absent),
writes the lake under ``CAR_RENTAL_LAKE_ROOT`` (default ``lake/``) and keeps Dagster's run
history in ``DAGSTER_HOME`` (default ``.dagster_home/``), so ``dagster dev`` shows the run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from car_rental_platform.resources.duckdb_catalog import duckdb_connection
from car_rental_platform.resources.query import quote_identifier
from car_rental_platform.sample_data import generate
from car_rental_platform.settings import DEFAULT_SOURCE_DIR, LocalSettings
from spark_jobs.contract import DATABASE, KPI_TABLES, REJECTED_ROWS_TABLE, SOURCE_TABLES

PROGRESS = re.compile(r" - (STEP_START|STEP_SUCCESS|STEP_FAILURE|RUN_SUCCESS|RUN_FAILURE) - ")


def ensure_source(settings: LocalSettings, env: dict[str, str]) -> None:
    """Generate the sample data when the default source folder is absent."""
    source = Path(settings.source_dir)
    expected = [t.file_name for t in SOURCE_TABLES]
    if all((source / name).is_file() for name in expected):
        return
    if "CAR_RENTAL_SOURCE_DIR" in env:
        missing = [name for name in expected if not (source / name).is_file()]
        raise SystemExit(f"CAR_RENTAL_SOURCE_DIR={source}: missing {missing}")
    print(f"No sample data in {DEFAULT_SOURCE_DIR}/: generating it (seed 42).")
    summary = generate(source)
    print(f"  {sum(summary.rows.values()):,} rows in {len(summary.rows)} files -> {source}")


def materialize(env: dict[str, str], log_path: Path) -> int:
    """``dagster asset materialize --select '*'``: progress on screen, full log in a file."""
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "asset", "materialize", "--select", "*"]
    command += ["-m", "car_rental_platform.definitions"]
    print("$ " + " ".join(command[0:1] + [c if c != "*" else "'*'" for c in command[1:]]))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            match = PROGRESS.search(line)
            if match:
                fields = line.split(" - ")  # time, logger, level, job, run, pid, step, event
                step = fields[6] if len(fields) > 7 else ""
                print(f"  {time.strftime('%H:%M:%S')} {match[1]:<13} {step}", flush=True)
        return process.wait()


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
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve()))
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    settings = LocalSettings.from_env(env)
    ensure_source(settings, env)
    env.setdefault("CAR_RENTAL_SOURCE_DIR", settings.source_dir)
    started = time.monotonic()
    log_path = Path(env["DAGSTER_HOME"], "logs", "last_materialize.log")
    code = materialize(env, log_path)
    elapsed = time.monotonic() - started
    if code != 0:
        print(f"Materialization failed after {elapsed:.0f}s; full log: {log_path}")
        failures = [ln for ln in log_path.read_text().splitlines() if "Error" in ln]
        print("\n".join(failures[-5:]))
        return code
    print(f"Materialized every asset in {elapsed:.0f}s (log: {log_path})")
    print(summary(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
