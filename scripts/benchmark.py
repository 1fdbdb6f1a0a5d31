"""The platform against the hand-built pipelines' way, on the same data, in turn, in one run.

    python scripts/benchmark.py [--sizes 20000:3 1000000:2] [--daily 1000000:2] [--out bench_out]
                                [--platform-only]

For each size (rentals:runs): generate the sample once, then run, in turn A B A B ...,
- A, the platform: the whole local materialization
  (``dagster asset materialize --select '*'``) into a fresh lake and DAGSTER_HOME;
- B, the baseline: ``scripts/baseline/``'s two spark-submit applications one after the other
  (``header=True, inferSchema=True``, Spark's defaults, the contract's KPI formulas, no
  validation), as the pipelines this product replaces ran them.
Then, incremental (``--daily``): the sample as daily exports; per run, a fresh lake, the run
command (``python -m car_rental_platform.main``) over every day but the last (a full refresh),
then the last day landed and the run command again, which processes that day alone. The
ratio one day / full refresh is what the incremental lake saves.
Each command's peak memory is the largest resident set of any one process in its tree
(sampled from /proc every 0.1 s). Prints the medians, the ratio platform / baseline and the
peaks; no thresholds, numbers to compare (the machine is shared: run it with nothing else busy).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyspark

from car_rental_platform.java import ensure_java
from car_rental_platform.main import prepare_instance
from car_rental_platform.partitions import (
    RANGE_END,
    RANGE_START,
    landed_batches,
    range_tags,
    register,
)
from car_rental_platform.sample_data.generator import generate
from spark_jobs.contract import RENTALS

REPO = Path(__file__).resolve().parent.parent
BASELINE_JOBS = ("job1_vehicle_location_metrics.py", "job2_user_transaction_analysis.py")
SAMPLE_SECONDS = 0.1
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_bytes: int


class PeakMemory:
    """Samples the resident memory of every process below one pid; keeps the largest one's."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in descendants(self.pid):
                self.peak = max(self.peak, rss_bytes(pid))
            self._stop.wait(SAMPLE_SECONDS)


def descendants(root: int) -> list[int]:
    """root and every process below it, from /proc/<pid>/task/*/children.

    A process may end while it is being listed: it then has no children to add (listing a
    vanished /proc/<pid>/task once stopped the sampler, and that run's peak was too low).
    """
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                queue += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def measured(label: str, commands: list[list[str]], env: dict[str, str], log: Path) -> Measured:
    """Run the commands one after another; wall time of all, peak of the largest process."""
    started, peak = time.monotonic(), 0
    with log.open("w") as out:
        for command in commands:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            with PeakMemory(process.pid) as memory:
                code = process.wait()
            peak = max(peak, memory.peak)
            if code != 0:
                raise SystemExit(f"{label} failed (exit {code}); see {log}")
    result = Measured(time.monotonic() - started, peak)
    print(f"  {label:<28} {result.seconds:7.1f} s  {gib(result.peak_rss_bytes)}", flush=True)
    return result


def gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def platform_env(landing: Path, root: Path, env: dict[str, str]) -> dict[str, str]:
    """A fresh lake and DAGSTER_HOME under ``root`` for the landing folder."""
    shutil.rmtree(root, ignore_errors=True)
    prepare_instance(root / "dagster_home")  # the shipped dagster.yaml, as `make run` gives it
    return {
        **env,
        "DAGSTER_HOME": str(root / "dagster_home"),
        "CAR_RENTAL_SOURCE_DIR": str(landing),
        "CAR_RENTAL_LAKE_ROOT": str(root / "lake"),
    }


def platform_commands(landing: Path, root: Path, env: dict[str, str]) -> tuple[list, dict]:
    """Every asset, with the rentals' partitions (registered first, outside the timing)."""
    env = platform_env(landing, root, env)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        batches = landed_batches([p.name for p in landing.glob("*.csv")])
        tags = range_tags(instance, register(instance, batches))
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "asset", "materialize", "--select", "*"]
    span = ["--partition-range", f"{tags[RANGE_START]}...{tags[RANGE_END]}"]
    return [[*command, *span, "-m", "car_rental_platform.definitions"]], env


RUN_COMMAND = [sys.executable, "-m", "car_rental_platform.main"]


def incremental(rentals: int, runs: int, out: Path, env: dict[str, str]) -> tuple[list, list]:
    """Full refresh of every day but the last, then the last day alone, ``runs`` times."""
    root = out.resolve() / f"daily_{rentals}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "logs").mkdir(parents=True)
    started = time.monotonic()
    summary = generate(root / "all", rentals=rentals, seed=42, daily=True)
    days = sorted(n for n in summary.rows if n.startswith(f"{RENTALS.raw_name}_"))
    print(f"{rentals:,} rentals in {len(days)} daily exports, {runs} run(s)", flush=True)
    print(f"  {'generate sample':<28} {time.monotonic() - started:7.1f} s", flush=True)
    full, one_day = [], []
    for run in range(1, runs + 1):
        landing = root / "landing"
        shutil.rmtree(landing, ignore_errors=True)
        shutil.copytree(root / "all", landing)
        (landing / days[-1]).unlink()
        run_env = platform_env(landing, root / f"platform_{run}", env)
        log = root / "logs" / f"full_{run}.log"
        full.append(measured(f"{len(days) - 1} days #{run}", [RUN_COMMAND], run_env, log))
        shutil.copy2(root / "all" / days[-1], landing / days[-1])
        log = root / "logs" / f"one_day_{run}.log"
        one_day.append(measured(f"one more day #{run}", [RUN_COMMAND], run_env, log))
    return full, one_day


def baseline_commands(landing: Path, root: Path) -> list[list[str]]:
    shutil.rmtree(root, ignore_errors=True)
    spark_submit = str(Path(pyspark.__file__).parent / "bin" / "spark-submit")
    jobs = REPO / "scripts" / "baseline"
    io = ["--data", str(landing), "--out", str(root)]
    return [[spark_submit, "--master", "local[*]", str(jobs / job), *io] for job in BASELINE_JOBS]


def parse_size(text: str) -> tuple[int, int]:
    rentals, _, runs = text.partition(":")
    return int(rentals), int(runs or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=[(20_000, 3), (1_000_000, 2)],
        help="RENTALS:RUNS pairs (default: 20000:3 1000000:2).",
    )
    parser.add_argument(
        "--daily",
        type=parse_size,
        default=(1_000_000, 2),
        help="RENTALS:RUNS of the incremental benchmark (default: 1000000:2; 0 skips it).",
    )
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    parser.add_argument(
        "--platform-only", action="store_true", help="Skip the baseline (e.g. for 10,000,000)."
    )
    args = parser.parse_args()
    ensure_java()
    env = {
        **os.environ,
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    rows = []
    for rentals, runs in args.sizes:
        root = args.out.resolve() / f"rentals_{rentals}"
        shutil.rmtree(root, ignore_errors=True)
        (root / "logs").mkdir(parents=True)
        print(f"{rentals:,} rentals, {runs} run(s) each, in turn", flush=True)
        started = time.monotonic()
        generate(root / "landing", rentals=rentals, seed=42)
        print(f"  {'generate sample':<28} {time.monotonic() - started:7.1f} s", flush=True)
        platform: list[Measured] = []
        baseline: list[Measured] = []
        for run in range(1, runs + 1):
            commands, platform_env = platform_commands(root / "landing", root / "platform", env)
            log = root / "logs" / f"platform_{run}.log"
            platform.append(measured(f"platform #{run}", commands, platform_env, log))
            if not args.platform_only:
                commands = baseline_commands(root / "landing", root / "baseline")
                log = root / "logs" / f"baseline_{run}.log"
                baseline.append(measured(f"baseline #{run}", commands, env, log))
        rows.append((rentals, platform, baseline))
    print_table(rows)
    rentals, runs = args.daily
    if rentals:
        full, one_day = incremental(rentals, runs, args.out, env)
        f_time = statistics.median(m.seconds for m in full)
        d_time = statistics.median(m.seconds for m in one_day)
        print(
            "\n| rentals (daily exports) | runs | full refresh, median (s) "
            "| one more day, median (s) | ratio | peak memory, full | peak memory, one day |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(
            f"| {rentals:,} | {runs} | {f_time:.1f} | {d_time:.1f} | **{d_time / f_time:.2f}** "
            f"| {gib(max(m.peak_rss_bytes for m in full))} "
            f"| {gib(max(m.peak_rss_bytes for m in one_day))} |"
        )


def print_table(rows: list[tuple[int, list[Measured], list[Measured]]]) -> None:
    print(
        "\n| rentals | runs | platform, median (s) | baseline, median (s) | ratio "
        "| peak memory, platform | peak memory, baseline | memory ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rentals, platform, baseline in rows:
        p_time = statistics.median(m.seconds for m in platform)
        p_peak = max(m.peak_rss_bytes for m in platform)
        if baseline:
            b_time = statistics.median(m.seconds for m in baseline)
            b_peak = max(m.peak_rss_bytes for m in baseline)
            cells = [f"{b_time:.1f}", f"**{p_time / b_time:.2f}**", gib(p_peak), gib(b_peak)]
            cells.append(f"{p_peak / b_peak:.2f}")
        else:
            cells = ["-", "-", gib(p_peak), "-", "-"]
        print(f"| {rentals:,} | {len(platform)} | {p_time:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
