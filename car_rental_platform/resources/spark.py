"""Run a ``spark_jobs`` job and bring its results back to Dagster.

``LocalSparkRunner`` runs on this machine in ``local[*]`` mode, by default inside the run's own
process: one SparkSession (dagster-pyspark's ``LazyPySparkResource``) serves every Spark step
of the run, so the transform and the KPI work share one warm JVM. With ``mode="spark_submit"``
it launches the very same script with ``spark-submit``, as the AWS runner does on EMR. Both
modes call the job module's own ``run(spark, args, reporter)``; only the reporter differs.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

import spark_jobs
from car_rental_platform.java import ensure_java
from car_rental_platform.resources.class_archive import sharing_options, spark_home
from spark_jobs.quality import CheckOutcome
from spark_jobs.reporting import pipes_metadata
from spark_jobs.session import SESSION_CONF

SPARK_JOBS_DIR = Path(spark_jobs.__file__).parent
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
SPARK_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<level>WARN|ERROR|FATAL|INFO) (?P<logger>\S+): ")
TAIL_LINES = 40
TAIL_LINE_CHARS = 600
ERROR_CHARS = 4000
LOCAL_JVM_OPTIONS = ("-XX:-DontCompileHugeMethods", "-XX:+UseSerialGC")
"""Measured on 2 cores (``make bench``): see ``local_spark_config``."""
LOCAL_LISTING_THRESHOLD = "1024"
"""Folders Spark lists on the driver before it starts a Spark job to list them (default 32).
On one machine's disk the job costs seconds and the listing milliseconds: reading the key index
(185 ``batch=`` folders) took 4.1 s with the job, 1.3 s without, at 1,000,000 rentals."""
QUICK_JIT_OPTION = "-XX:TieredStopAtLevel=1"
QUICK_JIT_MAX_INPUT_BYTES = 56_000_000
"""Below this much landed data (about 250,000 rentals) the JVM compiles with C1 only.

Whole local materializations, same machine, C2 (default) against C1 only: 20,000 rentals
(4.8 MB of exports) 58 s against 41 s; 200,000 (48 MB) 77 s against 69 s; 500,000 (75 MB)
85 s against 100 s; 1,000,000 (121 MB) 105 s against 130 s. A short run's generated code
never lives long enough to repay C2's compile time on 2 cores; a long one does. The size is
that of what the run lands (``resources.local.new_export_bytes``): one more day (61 rentals)
beside 1,000,000 landed ones, the run command took 49.3 s (median of 4) on C1 only against
55.4 s on both tiers before (which also built user_metrics last); its two Spark steps alone,
38-42 s against 42-46 s, the cores busy 51 of 74 core-seconds against 77 of 88.
"""

QUICK_JIT_CODE_CACHE = "-XX:ReservedCodeCacheSize=240m"
"""C1 alone gets a 48 MiB code cache by default (C1 and C2: 240 MiB). A whole run's generated
code (a Hive-partitioned write, then the KPI job's plans in the same JVM) filled it on the
20,000-rental sample: ``Out of space in CodeCache for adapters`` killed the KPI step."""

PipesResult = dg.MaterializeResult | dg.AssetCheckResult


def with_metadata(result: PipesResult, metadata: Mapping[str, Any]) -> PipesResult:
    """The job's own metadata plus where and when it ran (check results stay as they are)."""
    if not isinstance(result, dg.MaterializeResult):
        return result
    return dg.MaterializeResult(
        asset_key=result.asset_key,
        metadata={**(result.metadata or {}), **metadata},
        check_results=result.check_results,
        data_version=result.data_version,
        tags=result.tags,
    )


class SparkJobError(dg.Failure):
    """A Spark job failed: the message names the job and carries the tail of its output."""


class SparkRunner(dg.ConfigurableResource, ABC):
    """Runs one ``spark_jobs`` script as one Spark application and returns its Pipes results."""

    @abstractmethod
    def run_job(
        self,
        *,
        context: dg.AssetExecutionContext,
        script: str,
        args: Sequence[str],
    ) -> list[PipesResult]:
        """Run ``spark_jobs/<script>`` with ``args``; raise SparkJobError when it fails."""


def local_spark_config(
    *,
    master: str = "local[*]",
    driver_memory: str = "1g",
    shuffle_partitions: int = 4,
    input_bytes: int | None = None,
    class_archive: bool = True,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The Spark configuration of local runs, in both modes (one source for both).

    Measured on 2 cores (see the README's benchmark): 4 shuffle partitions suit one machine;
    a 1 GiB heap holds 10,000,000 rentals (1.63 GiB peak) because nothing wide is cached; the
    default JIT (C2) beats C1-only once the JVM lives for the whole run.
    ``-XX:-DontCompileHugeMethods`` lets the JVM compile Spark's generated code for the
    cleaning's wide expressions, which it otherwise interprets (a pass over 1,000,000
    rentals: 5.4 s interpreted, 2.5 s compiled).
    The serial collector keeps one process's heap smallest and was also the fastest here
    (20,000 rentals: 1.13 GiB peak against 1.29 GiB with G1).
    ``input_bytes``, the size of the data the run lands, picks the JIT: C1 alone below
    ``QUICK_JIT_MAX_INPUT_BYTES``, both tiers (C2) above it or when unknown.
    ``class_archive``: map the environment's archive of Spark's classes when it is built
    (``class_archive``, by ``make install``), which halves the session's start.
    """
    quick = input_bytes is not None and input_bytes < QUICK_JIT_MAX_INPUT_BYTES
    java_options = " ".join(
        [
            f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}",
            *LOCAL_JVM_OPTIONS,
            *([QUICK_JIT_OPTION, QUICK_JIT_CODE_CACHE] if quick else []),
            *(sharing_options() if class_archive else []),
        ]
    )
    return {
        "spark.master": master,
        "spark.driver.memory": driver_memory,
        "spark.driver.extraJavaOptions": java_options,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.debug.maxToStringFields": "200",
        "spark.sql.sources.parallelPartitionDiscovery.threshold": LOCAL_LISTING_THRESHOLD,
        **SESSION_CONF,
        **(extra or {}),
    }


def spark_submit_command(
    conf: Mapping[str, Any], script: Path | str, args: Sequence[str]
) -> list[str]:
    """``spark-submit`` of this environment's PySpark: ``conf`` as ``--conf``, then the script."""
    return [
        str(spark_home() / "bin" / "spark-submit"),
        *[item for key, value in conf.items() for item in ("--conf", f"{key}={value}")],
        str(script),
        *args,
    ]


def spark_submit_env() -> dict[str, str]:
    """This process's environment, with the Spark and the Python that spark-submit runs."""
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


class LocalSparkRunner(SparkRunner):
    """Spark in ``local[*]`` mode: no cluster, no AWS."""

    mode: Literal["in_process", "spark_submit"] = Field(
        default="in_process",
        description="in_process: the jobs run in this process's SparkSession, one JVM for the "
        "whole run. spark_submit: one spark-submit application per job, as on EMR.",
    )
    pyspark: LazyPySparkResource = Field(
        description="Owns the run's SparkSession; its spark_config is also what spark-submit "
        "is given, so both modes run with the same settings.",
    )

    @property
    def java_options(self) -> str:
        return str(self.pyspark.spark_config.get("spark.driver.extraJavaOptions", ""))

    def command(self, script: str, args: Sequence[str]) -> list[str]:
        """The spark-submit command line of ``spark_jobs/<script>``."""
        return spark_submit_command(self.pyspark.spark_config, SPARK_JOBS_DIR / script, args)

    def run_job(
        self,
        *,
        context: dg.AssetExecutionContext,
        script: str,
        args: Sequence[str],
    ) -> list[PipesResult]:
        ensure_java()
        if self.mode == "spark_submit":
            return self._spark_submit(context, script, args)
        return self._in_process(context, script, args)

    def _in_process(
        self, context: dg.AssetExecutionContext, script: str, args: Sequence[str]
    ) -> list[PipesResult]:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        job = importlib.import_module(f"{spark_jobs.__name__}.{Path(script).stem}")
        jit = "C1 only" if QUICK_JIT_OPTION in self.java_options else "C1 and C2"
        context.log.info(f"{script} {' '.join(args)} (in-process SparkSession, JIT {jit})")
        spark = self.pyspark.spark_session
        spark.sparkContext.setLogLevel("WARN")
        reporter = DagsterReporter(context)
        with cancelling_spark_on_interrupt(spark):
            try:
                job.run(spark, job.parse_args(list(args)), reporter)
            except (SystemExit, Exception) as exc:
                message = str(exc)[-ERROR_CHARS:]
                raise SparkJobError(
                    description=f"Spark job {script} failed: {message}",
                    metadata={"error": dg.MetadataValue.text(message)},
                ) from exc
        return reporter.results

    def _spark_submit(
        self, context: dg.AssetExecutionContext, script: str, args: Sequence[str]
    ) -> list[PipesResult]:
        command = self.command(script, args)
        env = spark_submit_env()
        context.log.info(f"spark-submit {script} {' '.join(args)}")
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesEnvContextInjector(),
            message_reader=dg.PipesTempFileMessageReader(),
        ) as session:
            env.update(session.get_bootstrap_env_vars())
            run_forwarding_logs(command, env=env, log=context.log, job=script)
        return list(session.get_results(implicit_materializations=False))


@contextmanager
def cancelling_spark_on_interrupt(spark: Any) -> Iterator[None]:
    """Cancel the session's running Spark jobs when the step is interrupted or fails.

    A cancelled Dagster run interrupts the step; without this, the in-process JVM would go
    on computing (and writing) after the run has ended.
    """
    try:
        yield
    except BaseException:
        spark.sparkContext.cancelAllJobs()
        raise


class DagsterReporter:
    """The jobs' ``Reporter`` inside Dagster's own process: the results Pipes would bring.

    Metadata takes the same shape as over Pipes (``pipes_metadata``: ``{raw_value, type}``
    for markdown and JSON), so a materialization looks the same in both modes.
    """

    def __init__(self, context: dg.AssetExecutionContext) -> None:
        self._context = context
        self.results: list[PipesResult] = []

    def log(self, message: str) -> None:
        self._context.log.info(message)

    def report(self, asset_key: str, metadata: Mapping[str, Any]) -> None:
        self.results.append(
            dg.MaterializeResult(
                asset_key=dg.AssetKey.from_user_string(asset_key),
                metadata=typed_metadata(metadata),
            )
        )

    def check(self, asset_key: str, name: str, outcome: CheckOutcome) -> None:
        self.results.append(
            dg.AssetCheckResult(
                asset_key=dg.AssetKey.from_user_string(asset_key),
                check_name=str(name),
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity(outcome.severity),
                metadata=typed_metadata(outcome.metadata),
            )
        )


METADATA_TYPES = {"md": dg.MetadataValue.md, "json": dg.MetadataValue.json}


def typed_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata as Pipes delivers it: typed markdown and JSON, plain values as they are."""
    return {
        key: METADATA_TYPES[value["type"]](value["raw_value"]) if isinstance(value, dict) else value
        for key, value in pipes_metadata(metadata).items()
    }


def run_forwarding_logs(
    command: list[str], *, env: dict[str, str], log: dg.DagsterLogManager, job: str
) -> None:
    """Run the command; Spark WARN/ERROR lines go to the run log, the rest to debug.

    The last lines are kept for the failure message. When the run is cancelled the Dagster
    step is interrupted and the Spark process is terminated with it.
    """
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            tail.append(line[:TAIL_LINE_CHARS])
            match = SPARK_LOG_LINE.match(line)
            level = match["level"] if match else "DEBUG"
            if level in ("ERROR", "FATAL"):
                log.error(f"[spark] {line}")
            elif level == "WARN":
                log.warning(f"[spark] {line}")
            else:
                log.debug(f"[spark] {line}")
        returncode = process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    if returncode != 0:
        output = "\n".join(tail)
        raise SparkJobError(
            description=f"Spark job {job} exited with code {returncode}. Last output:\n{output}",
            metadata={"exit_code": returncode, "output_tail": dg.MetadataValue.text(output)},
        )
