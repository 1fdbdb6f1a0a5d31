"""Wall times of the platform against the bare Spark jobs, on the same data, in one run.

    python scripts/benchmark.py [--rentals 20000 1000000] [--out bench_out]

For each size: generate the sample (timed), run the two spark-submit jobs alone exactly as
the local runner launches them (the baseline), then the whole Dagster materialization
(``dagster asset materialize --select '*'``) into a fresh lake and DAGSTER_HOME. Prints a
table with the ratio platform / baseline; no thresholds, numbers to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from car_rental_platform.java import ensure_java
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.spark import LocalSparkRunner
from car_rental_platform.sample_data import generate
from spark_jobs.contract import SOURCE_TABLES, Zone


def timed(label: str, command: list[str], env: dict[str, str], log: Path) -> float:
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"{label} failed (exit {code}); see {log}")
    print(f"  {label:<34} {elapsed:8.1f} s", flush=True)
    return elapsed


def bare_spark(source: Path, lake: Path, env: dict[str, str], logs: Path) -> float:
    """Copy the CSVs into the raw zone, then the transform and KPI jobs back to back."""
    for table in SOURCE_TABLES:
        target = lake / Zone.RAW.value / table.raw_name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / table.file_name, target / table.file_name)
    runner = LocalSparkRunner()
    args = LocalLake(root=str(lake)).spark_args()
    return sum(
        timed(f"spark-submit {script}", runner.command(script, args), env, logs / f"{script}.log")
        for script in ("transform_job.py", "kpi_job.py")
    )


def platform(source: Path, root: Path, env: dict[str, str], logs: Path) -> float:
    home = root / "dagster_home"
    home.mkdir(parents=True)
    env = {
        **env,
        "DAGSTER_HOME": str(home),
        "CAR_RENTAL_SOURCE_DIR": str(source),
        "CAR_RENTAL_LAKE_ROOT": str(root / "lake"),
    }
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "asset", "materialize", "--select", "*"]
    command += ["-m", "car_rental_platform.definitions"]
    return timed("dagster asset materialize '*'", command, env, logs / "dagster.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rentals", type=int, nargs="+", default=[20_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args()
    ensure_java()
    import pyspark

    env = {
        **os.environ,
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "PYSPARK_PYTHON": sys.executable,
    }
    rows = []
    for rentals in args.rentals:
        root = args.out / f"rentals_{rentals}"
        shutil.rmtree(root, ignore_errors=True)
        logs = root / "logs"
        logs.mkdir(parents=True)
        print(f"{rentals:,} rentals", flush=True)
        started = time.monotonic()
        generate(root / "landing", rentals=rentals, seed=42)
        generation = time.monotonic() - started
        print(f"  {'generate sample':<34} {generation:8.1f} s", flush=True)
        baseline = bare_spark(root / "landing", root / "bare_lake", env, logs)
        full = platform(root / "landing", root / "platform", env, logs)
        rows.append((rentals, generation, baseline, full))
    print("\n| rentals | generate (s) | bare Spark jobs (s) | Dagster, whole graph (s) | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for rentals, generation, baseline, full in rows:
        print(
            f"| {rentals:,} | {generation:.1f} | {baseline:.1f} | {full:.1f} "
            f"| {full / baseline:.2f} |"
        )


if __name__ == "__main__":
    main()
