"""Run the ``spark_jobs`` scripts as EMR steps, with results back through Dagster Pipes.

Two modes, chosen by settings:

* an existing long-running cluster (``cluster_id``, or ``cluster_name`` looked up among the
  active clusters; ``infra_scripts.emr_cluster`` creates one): steps are added to it;
* otherwise a transient cluster from ``cluster_template``, created on the first job of a run and
  kept for the run's later jobs, terminated when the resource is torn down at the end of the
  run (success, failure or termination) and at once when the run is terminated. It carries an
  idle auto-termination policy as a safety net should the Dagster process itself be killed.
  Resources live per process: with the in-process executor a run uses one cluster; with the
  multiprocess executor each step process creates (and terminates) its own. Its nodes first run
  the bootstrap action ``car_rental_platform/emr_bootstrap.sh`` (uploaded content-addressed
  before the cluster is requested) to install the Python PySpark is pointed at, which EMR 7
  lacks.

Each job uploads the content-addressed code bundle (unchanged code is not uploaded again),
submits one ``command-runner.jar`` step running ``spark-submit --deploy-mode client``, passes the
Pipes bootstrap parameters on the step's command line (the jobs read them with
``PipesCliArgsParamsLoader``) and reads the jobs' messages from
``s3://<bucket>/dagster_pipes/<run_id>/...``: the driver's stdout and stderr, and (under a small
``bash`` launcher that adds a log4j2 file appender, ``EmrJobs.with_driver_log``) Spark's own log
lines, arrive with them every few seconds. Unlike dagster-aws's ``PipesEMRClient`` the wait
has no fixed ceiling: interval and timeout are settings.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_aws.pipes import PipesS3MessageReader
from pydantic import Field, PrivateAttr

from car_rental_platform.aws_names import PIPES_PREFIX, console_url
from car_rental_platform.code_bundle import DEPS_ZIP_NAME
from car_rental_platform.resources.aws.clients import INTERRUPTS, AwsConnection, Log
from car_rental_platform.resources.aws.emr_config import EmrClusterTemplate, parse_prices
from car_rental_platform.resources.aws.emr_jobs import EmrJobs
from car_rental_platform.resources.aws.errors import EmrTimeoutError
from car_rental_platform.resources.spark import PipesResult, SparkRunner, with_metadata
from spark_jobs.contract import Zone
from spark_jobs.driver_log import DRIVER_LOG_PARAM, LOG_NAME, driver_log_folder


class RunScopedS3MessageReader(PipesS3MessageReader):
    """``PipesS3MessageReader`` whose chunks live under a fixed prefix (one per run).

    The parameters also carry the bucket's ``region``, for the job's S3 client
    (``spark_jobs.reporting``): boto3 on an EMR node has no default region; and, when the driver
    JVM logs to a file too, that file, which the job forwards (``spark_jobs.driver_log``).
    """

    def __init__(
        self, *, key_prefix: str, region: str, driver_log: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._key_prefix = key_prefix.strip("/")
        self._region = region
        self._driver_log = driver_log

    @contextmanager
    def get_params(self) -> Iterator[dict[str, Any]]:
        with super().get_params() as params:
            yield {
                **params,
                "key_prefix": f"{self._key_prefix}/{params['key_prefix']}",
                "region": self._region,
                **({DRIVER_LOG_PARAM: self._driver_log} if self._driver_log else {}),
            }


class EmrSparkRunner(SparkRunner, AwsConnection):
    """Runs a ``spark_jobs`` script as an EMR step (existing or transient cluster) via Pipes."""

    bucket: str = Field(description="The lake bucket: code, Pipes messages and EMR logs live here.")
    cluster_id: str | None = Field(
        default=None, description="Submit to this running cluster (CAR_RENTAL_EMR_CLUSTER_ID)."
    )
    cluster_name: str | None = Field(
        default=None,
        description="Submit to the newest active cluster of this name (CAR_RENTAL_EMR_CLUSTER_NAME)"
        "; with neither id nor name, each run gets a transient cluster.",
    )
    cluster_template: EmrClusterTemplate = Field(
        default_factory=EmrClusterTemplate, description="How transient clusters are built."
    )
    scripts_prefix: str = Field(
        default=Zone.SCRIPTS.value, description="Key prefix of the uploaded code bundles."
    )
    pipes_prefix: str = Field(
        default=PIPES_PREFIX, description="Key prefix of the Pipes message chunks, per run."
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="Extra spark-submit --conf settings."
    )
    poll_interval_seconds: int = Field(
        default=15,
        ge=0,
        description="Seconds (>= 0) between two DescribeStep calls.",
    )
    step_timeout_seconds: int = Field(
        default=6 * 3600,
        gt=0,
        description="Seconds (> 0) a step may take from submission, cluster start-up included; "
        "then it is cancelled and the job fails. No fixed ceiling.",
    )
    pipes_poll_interval_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Seconds (>= 0) between two reads of the Pipes messages.",
    )
    stream_driver_output: bool = Field(
        default=True,
        description="Send the job driver's stdout/stderr with the Pipes messages (every few "
        "seconds) to the run's logs, instead of only EMR's step logs, which reach S3 minutes late.",
    )
    stream_driver_jvm_log: bool = Field(
        default=True,
        description="Send Spark's own log lines (the driver JVM's log4j output) with the Pipes "
        "messages too: the step runs spark-submit under bash with a log4j2 file appender added "
        "to Spark's configuration; WARN and ERROR events also reach the run's event log.",
    )
    failure_log_wait_seconds: float = Field(
        default=120.0,
        ge=0,
        description="Seconds (>= 0) to wait, after a failure, for EMR to ship the step's stderr "
        "to S3 (it does so every few minutes).",
    )
    stderr_tail_lines: int = Field(
        default=40,
        ge=1,
        description="Lines of stderr (>= 1) quoted in the error.",
    )
    instance_prices_usd: str = Field(
        default="",
        description="USD per instance-hour (EC2 plus the EMR uplift) by instance type, e.g. "
        "'m5.xlarge=0.240,r5.xlarge=0.315' (CAR_RENTAL_EMR_INSTANCE_PRICES_USD), for the cost "
        "estimate in each step's metadata; empty: instance hours only.",
    )

    _transient_cluster_id: str | None = PrivateAttr(default=None)

    def get_client(self) -> EmrJobs:
        parse_prices(self.instance_prices_usd)  # a typo fails before any step, not after
        return EmrJobs(self, emr=self.aws_client("emr"), s3=self.aws_client("s3"))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._transient_cluster_id:
            log = context.log or logging.getLogger(__name__)
            self._end_transient_cluster(self.get_client(), log)

    def run_job(
        self,
        *,
        context: dg.AssetExecutionContext,
        script: str,
        args: Sequence[str],
    ) -> list[PipesResult]:
        jobs = self.get_client()
        code = jobs.upload_code()
        if script not in code:
            known = sorted(name for name in code if name != DEPS_ZIP_NAME)
            raise ValueError(f"no spark_jobs script {script!r}; scripts: {known}")
        cluster_id = self._cluster_for(context, jobs)
        driver_log = (
            driver_log_folder(uuid.uuid4().hex[:12]) if self.stream_driver_jvm_log else None
        )
        reader = RunScopedS3MessageReader(
            bucket=self.bucket,
            client=jobs.s3,
            interval=self.pipes_poll_interval_seconds,
            key_prefix=f"{self.pipes_prefix}/{context.run_id}",
            region=jobs.region,
            driver_log=f"{driver_log}/{LOG_NAME}" if driver_log else None,
            include_stdio_in_messages=self.stream_driver_output,
        )
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesEnvContextInjector(),
            message_reader=reader,
        ) as session:
            pipes_args = [
                item for pair in session.get_bootstrap_cli_arguments().items() for item in pair
            ]
            step_args = jobs.spark_submit_args(
                script_uri=code[script], deps_uri=code[DEPS_ZIP_NAME], args=[*args, *pipes_args]
            )
            if driver_log:
                step_args = jobs.with_driver_log(step_args, folder=driver_log)
            step_id = jobs.submit_step(
                cluster_id=cluster_id, name=f"{script} run {context.run_id[:8]}", args=step_args
            )
            context.log.info(
                f"EMR step {step_id} ({script}) submitted to cluster {cluster_id}: "
                f"{console_url(jobs.region, cluster_id)}"
            )
            try:
                step = jobs.wait_for_step(cluster_id=cluster_id, step_id=step_id, log=context.log)
            except INTERRUPTS:
                context.log.warning(f"run terminated: cancelling EMR step {step_id}")
                jobs.cancel_steps(cluster_id=cluster_id, step_ids=[step_id], log=context.log)
                self._end_transient_cluster(jobs, context.log)
                raise
            except EmrTimeoutError:
                context.log.warning(f"cancelling EMR step {step_id}: it took too long")
                jobs.cancel_steps(cluster_id=cluster_id, step_ids=[step_id], log=context.log)
                raise
        metadata = jobs.step_metadata(step=step)
        return [
            with_metadata(result, metadata)
            for result in session.get_results(implicit_materializations=False)
        ]

    def _cluster_for(self, context: dg.AssetExecutionContext, jobs: EmrJobs) -> str:
        if self.cluster_id:
            return jobs.clusters.check_active(cluster_id=self.cluster_id)
        if self.cluster_name:
            return jobs.clusters.find_cluster(name=self.cluster_name, log=context.log)
        if self._transient_cluster_id and not jobs.clusters.is_active(
            cluster_id=self._transient_cluster_id
        ):
            context.log.warning(
                f"transient EMR cluster {self._transient_cluster_id} has ended: starting another"
            )
            self._transient_cluster_id = None
        if self._transient_cluster_id is None:
            self._transient_cluster_id = jobs.clusters.create_transient_cluster(
                run_id=context.run_id, log=context.log
            )
        return self._transient_cluster_id

    def _end_transient_cluster(self, jobs: EmrJobs, log: Log) -> None:
        cluster_id, self._transient_cluster_id = self._transient_cluster_id, None
        if cluster_id:
            jobs.clusters.terminate(cluster_id=cluster_id, log=log)
