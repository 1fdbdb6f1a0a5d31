"""A class-data sharing archive of the local Spark JVM: classes mapped at start, not loaded.

Every local run starts a JVM that loads and verifies tens of thousands of classes from Spark's
jars, while it starts the session and plans its first queries. With a dynamic CDS archive of
them (``-XX:SharedArchiveFile``, JDK 13+) it maps them from one file instead. Measured on the
one-day run beside 1,000,000 landed rentals (the transform and KPI jobs alone, 3 runs each):
Spark session 4.0 s -> 2.0 s, transform 13.9 s -> 11.5 s, both jobs 34.4 s -> 30.5 s.

``make install`` builds it (``python -m car_rental_platform.resources.class_archive``): a tiny
sample through the transform and KPI jobs in one ``spark-submit`` JVM
started with ``-XX:ArchiveClassesAtExit``, which writes the classes it loaded when it exits.
The file is named by a digest of the Java runtime and of Spark's jars, so a JVM is only ever
given the archive of its own JDK and jars: after an upgrade of either, runs go without one
(slower, nothing else) until the next ``make install``. It is written under a temporary name
and renamed only once that JVM has exited cleanly, so a half-written archive is never used.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ARCHIVE_DIR = Path(sys.prefix) / "share" / "car-rental-platform"
"""Beside the environment's PySpark: the archive is only valid for its jars (and goes with it)."""
SAMPLE_RENTALS = 400
"""Enough rows for every cleaning rule, join and KPI path to run (the classes, not the data)."""
CLASS_LOG_OPTION = "-Xlog:cds=error,cds+dynamic=error"
"""The dump warns once per class it cannot archive (Spark's generated accessors): not news."""


def spark_home() -> Path:
    """The PySpark installation whose jars the local JVM runs."""
    import pyspark

    return Path(pyspark.__file__).parent


def java_executable() -> Path | None:
    """The ``java`` local Spark runs (``car_rental_platform.java``), or None when there is none."""
    from car_rental_platform.java import JavaNotFoundError, java_home

    try:
        home = java_home()
    except JavaNotFoundError:
        return None
    found = Path(home, "bin", "java") if home else shutil.which("java")
    return Path(found).resolve() if found else None


def fingerprint(java: Path, spark: Path) -> str:
    """A digest of what an archive is valid for: the Java runtime and Spark's jars (paths,
    sizes and modification times, which the JVM itself checks before it uses an archive)."""
    digest = hashlib.sha256()
    for path in (java, *sorted((spark / "jars").glob("*.jar"))):
        stat = path.stat()
        digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def archive_path(folder: Path = ARCHIVE_DIR) -> Path | None:
    """Where this environment's archive is (whether built or not); None without a Java."""
    java = java_executable()
    if java is None:
        return None
    return folder / f"spark-classes-{fingerprint(java, spark_home())}.jsa"


def sharing_options(folder: Path = ARCHIVE_DIR) -> list[str]:
    """The JVM option that maps the archive, when this environment's is built."""
    path = archive_path(folder)
    return [f"-XX:SharedArchiveFile={path}"] if path is not None and path.is_file() else []


def build(folder: Path = ARCHIVE_DIR, log: Callable[[str], None] = print) -> Path | None:
    """Build this environment's archive unless it exists; None when it cannot be built (the
    reason is logged: runs then simply start without one)."""
    target = archive_path(folder)
    if target is None:
        log("Spark class archive: no Java runtime found, not built")
        return None
    if target.is_file():
        return target
    from car_rental_platform.resources.spark import (  # it imports this module
        local_spark_config,
        spark_submit_command,
        spark_submit_env,
    )

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log(f"Spark class archive: cannot write {folder} ({exc}), not built")
        return None
    log(f"Spark class archive: building {target} (a tiny sample through the Spark jobs)")
    with tempfile.TemporaryDirectory(prefix="class-archive-") as work:
        partial = folder / f".{target.name}.{os.getpid()}.tmp"
        config = local_spark_config(master="local[2]", input_bytes=0, class_archive=False)
        config["spark.driver.extraJavaOptions"] += (
            f" -XX:ArchiveClassesAtExit={partial} {CLASS_LOG_OPTION}"
        )
        command = spark_submit_command(config, __file__, ["--workload", work])
        output = Path(work, "spark-submit.log")
        with output.open("w") as out:
            result = subprocess.run(
                command, env=spark_submit_env(), stdout=out, stderr=subprocess.STDOUT
            )
        if result.returncode != 0 or not partial.is_file():
            partial.unlink(missing_ok=True)
            tail = output.read_text(errors="replace").splitlines()[-15:]
            log(
                f"Spark class archive: not built (spark-submit exited {result.returncode}; "
                "runs start without it). Last output:\n" + "\n".join(tail)
            )
            return None
        partial.replace(target)
    log(f"Spark class archive: {target} ({target.stat().st_size / 2**20:.0f} MiB)")
    return target


def workload(work: Path) -> None:
    """Inside the archiving JVM: land a tiny daily sample, run the transform and KPI jobs.
    (A second pass over one more day, the incremental path, added no speed: same classes.)"""
    from car_rental_platform.raw_records import land
    from car_rental_platform.sample_data.generator import generate
    from spark_jobs import kpi_job, transform_job
    from spark_jobs.contract import RENTALS, SOURCE_TABLES, batch_folder, landed_folder
    from spark_jobs.contract import rental_batch as batch_of
    from spark_jobs.raw_format import MANIFEST
    from spark_jobs.reporting import StdoutReporter
    from spark_jobs.session import build_spark

    exports, lake = work / "exports", work / "lake"
    generate(exports, rentals=SAMPLE_RENTALS, seed=7, daily=True)
    for export in sorted(exports.glob("*.csv")):
        table = next(t for t in SOURCE_TABLES if export.name.startswith(t.raw_name))
        batch = batch_of(export.name) if table is RENTALS else None
        name = batch_folder(batch) if batch else landed_folder(datetime.now(UTC))
        folder = lake / "raw" / table.raw_name / name
        folder.mkdir(parents=True)
        item = land(export, table, str(export), folder / table.file_name)
        (folder / MANIFEST).write_text(item.manifest.to_json())
    spark, reporter = build_spark("car-rental-class-archive"), StdoutReporter()
    args = ["--lake-root", str(lake)]
    transform_job.run(spark, transform_job.parse_args(args), reporter)
    kpi_job.run(spark, kpi_job.parse_args(args), reporter)
    spark.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.workload:
        workload(options.workload)
    else:
        build()
