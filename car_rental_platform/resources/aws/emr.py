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
``s3://<bucket>/dagster_pipes/<run_id>/...``. Unlike dagster-aws's ``PipesEMRClient`` the wait
has no fixed ceiling: interval and timeout are settings.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.pipes import PipesS3MessageReader
from pydantic import Field, PrivateAttr

from car_rental_platform.aws_names import (
    DEFAULT_PYSPARK_PYTHON,
    DEFAULT_RELEASE_LABEL,
    PIPES_PREFIX,
    PROJECT,
    active_clusters,
    console_url,
    run_job_flow_request,
)
from car_rental_platform.code_bundle import (
    DEPS_ZIP_NAME,
    bootstrap_uri,
    build_bundle,
    upload_bootstrap,
    upload_bundle,
)
from car_rental_platform.resources.aws.clients import (
    INTERRUPTS,
    AwsConnection,
    Deadline,
    error_code,
    parse_s3_uri,
)
from car_rental_platform.resources.aws.errors import (
    EmrClusterError,
    EmrStepError,
    EmrTimeoutError,
)
from car_rental_platform.resources.spark import PipesResult, SparkRunner, with_metadata
from spark_jobs.contract import Zone

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_s3 import S3Client

Log = dg.DagsterLogManager | logging.Logger

STEP_DONE = "COMPLETED"
STEP_FAILED_STATES = frozenset({"FAILED", "CANCELLED", "INTERRUPTED"})
CLUSTER_ENDED_STATES = frozenset({"TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"})
RUN_ID_TAG = "dagster-run-id"


class EmrBootstrapAction(dg.Config):
    """A script every node runs before Spark starts (e.g. installing Python packages)."""

    name: str = Field(description="Name shown in the EMR console.")
    path: str = Field(description="s3:// URI of the script.")
    args: list[str] = Field(default_factory=list, description="Arguments of the script.")


class EmrClusterTemplate(dg.Config):
    """How transient clusters are built (roles, tags and log URI from ``aws_names``)."""

    name_prefix: str = Field(
        default=f"{PROJECT}-transient",
        description="Cluster name prefix; the run id's first 8 characters are appended.",
    )
    release_label: str = Field(default=DEFAULT_RELEASE_LABEL, description="EMR release.")
    master_instance_type: str = Field(default="m5.xlarge", description="Primary node type.")
    core_instance_type: str = Field(default="m5.xlarge", description="Core node type.")
    core_instance_count: int = Field(default=2, ge=1, description="Number of core nodes (>= 1).")
    core_market: Literal["ON_DEMAND", "SPOT"] = Field(
        default="ON_DEMAND", description="ON_DEMAND or SPOT: how the core nodes are bought."
    )
    spot_bid_price: str | None = Field(
        default=None,
        description="Highest spot price in USD per hour (e.g. '0.10'); unset: the on-demand price.",
    )
    subnet_id: str | None = Field(
        default=None,
        description="Subnet to launch in; it must carry for-use-with-amazon-emr-managed-policies.",
    )
    key_name: str | None = Field(default=None, description="EC2 key pair for SSH; none if unset.")
    step_concurrency: int = Field(
        default=2,
        ge=1,
        le=256,
        description="StepConcurrencyLevel, 1-256: independent steps run at once.",
    )
    pyspark_python: str | None = Field(
        default=DEFAULT_PYSPARK_PYTHON,
        description="Interpreter of PySpark (3.10+ for dagster-pipes); unset: EMR's default.",
    )
    python_bootstrap: bool = Field(
        default=True,
        description="Install pyspark_python (/usr/bin/python3.X, absent from EMR 7) on every "
        "node with car_rental_platform/emr_bootstrap.sh, before the bootstrap_actions below.",
    )
    bootstrap_actions: list[EmrBootstrapAction] = Field(
        default_factory=list, description="Bootstrap actions run on every node."
    )
    idle_timeout_minutes: int = Field(
        default=30,
        description="EMR terminates the cluster after this long without steps, should Dagster "
        "never get to (e.g. its process was killed); 0 disables. Minimum 1 minute.",
    )


class RunScopedS3MessageReader(PipesS3MessageReader):
    """``PipesS3MessageReader`` whose chunks live under a fixed prefix (one per run).

    The parameters also carry the bucket's ``region``, for the job's S3 client
    (``spark_jobs.reporting``): boto3 on an EMR node has no default region.
    """

    def __init__(self, *, key_prefix: str, region: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key_prefix = key_prefix.strip("/")
        self._region = region

    @contextmanager
    def get_params(self) -> Iterator[dict[str, Any]]:
        with super().get_params() as params:
            yield {
                **params,
                "key_prefix": f"{self._key_prefix}/{params['key_prefix']}",
                "region": self._region,
            }


def parse_prices(text: str) -> dict[str, float]:
    """``'m5.xlarge=0.24,r5.xlarge=0.315'`` -> ``{'m5.xlarge': 0.24, 'r5.xlarge': 0.315}``."""
    prices: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, price = (part.strip() for part in item.partition("="))
        try:
            value = float(price)
        except ValueError:
            value = -1.0
        if not kind or not value >= 0:
            raise ValueError(
                f"instance_prices_usd: {item!r} is not TYPE=USD_PER_HOUR (e.g. m5.xlarge=0.24)"
            )
        prices[kind] = value
    return prices


@dataclass(frozen=True)
class ClusterCost:
    """What a cluster has used: EMR's normalized instance hours and, with prices, an estimate."""

    normalized_instance_hours: int
    usd_per_hour: float | None
    """Price of the cluster's instances per hour (None: some instance type has no price)."""
    hours_up: float

    @property
    def estimated_usd(self) -> float | None:
        return None if self.usd_per_hour is None else round(self.usd_per_hour * self.hours_up, 2)


@dataclass(frozen=True)
class StepRun:
    """A finished step: where it ran and its timeline."""

    cluster_id: str
    step_id: str
    state: str
    submitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


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
        reader = RunScopedS3MessageReader(
            bucket=self.bucket,
            client=jobs.s3,
            interval=self.pipes_poll_interval_seconds,
            key_prefix=f"{self.pipes_prefix}/{context.run_id}",
            region=jobs.region,
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
        return [with_metadata(result, metadata) for result in session.get_results()]

    def _cluster_for(self, context: dg.AssetExecutionContext, jobs: EmrJobs) -> str:
        if self.cluster_id:
            return jobs.check_active(cluster_id=self.cluster_id)
        if self.cluster_name:
            return jobs.find_cluster(name=self.cluster_name, log=context.log)
        if self._transient_cluster_id and not jobs.is_active(cluster_id=self._transient_cluster_id):
            context.log.warning(
                f"transient EMR cluster {self._transient_cluster_id} has ended: starting another"
            )
            self._transient_cluster_id = None
        if self._transient_cluster_id is None:
            self._transient_cluster_id = jobs.create_transient_cluster(
                run_id=context.run_id, log=context.log
            )
        return self._transient_cluster_id

    def _end_transient_cluster(self, jobs: EmrJobs, log: Log) -> None:
        cluster_id, self._transient_cluster_id = self._transient_cluster_id, None
        if cluster_id:
            jobs.terminate(cluster_id=cluster_id, log=log)


class EmrJobs:
    """The behaviour behind ``EmrSparkRunner``: code upload, clusters, steps, waits, logs."""

    def __init__(self, settings: EmrSparkRunner, *, emr: EMRClient, s3: S3Client) -> None:
        self.settings = settings
        self.emr = emr
        self.s3 = s3
        self._log_uris: dict[str, str | None] = {}

    @property
    def region(self) -> str:
        return self.emr.meta.region_name

    # --- code ---------------------------------------------------------------------------

    def upload_code(self) -> dict[str, str]:
        """Upload the bundle's missing files; name (``kpi_job.py``, ``deps.zip``) -> s3 URI."""
        with tempfile.TemporaryDirectory(prefix="car-rental-bundle-") as folder:
            bundle = build_bundle(Path(folder))
            return upload_bundle(
                self.s3, self.settings.bucket, bundle, prefix=self.settings.scripts_prefix
            )

    def spark_submit_args(
        self, *, script_uri: str, deps_uri: str, args: Sequence[str]
    ) -> list[str]:
        conf = [
            item for k, v in self.settings.spark_conf.items() for item in ("--conf", f"{k}={v}")
        ]
        return [
            "spark-submit",
            "--deploy-mode",
            "client",
            *conf,
            "--py-files",
            deps_uri,
            script_uri,
            *args,
        ]

    # --- clusters -----------------------------------------------------------------------

    def is_active(self, *, cluster_id: str) -> bool:
        return self._describe_cluster(cluster_id)["Status"]["State"] not in CLUSTER_ENDED_STATES

    def check_active(self, *, cluster_id: str) -> str:
        cluster = self._describe_cluster(cluster_id)
        state = cluster["Status"]["State"]
        if state in CLUSTER_ENDED_STATES:
            raise EmrClusterError(
                description=f"EMR cluster {cluster_id} is {state}: "
                f"{_reason(cluster['Status']) or 'no reason given'}",
                metadata={"emr_cluster_id": cluster_id, "state": state},
            )
        return cluster_id

    def find_cluster(self, *, name: str, log: Log) -> str:
        found = active_clusters(self.emr, name)
        if not found:
            raise EmrClusterError(
                description=f"no active EMR cluster named {name!r} in {self.region} "
                "(create it with python -m infra_scripts.emr_cluster create)",
                metadata={"emr_cluster_name": name},
            )
        if len(found) > 1:
            log.warning(f"{len(found)} active EMR clusters named {name!r}; using {found[0]}")
        return found[0]

    def transient_cluster_request(self, *, run_id: str) -> dict[str, Any]:
        template = self.settings.cluster_template
        request = run_job_flow_request(
            name=f"{template.name_prefix}-{run_id[:8]}",
            bucket=self.settings.bucket,
            release_label=template.release_label,
            master_instance_type=template.master_instance_type,
            core_instance_type=template.core_instance_type,
            core_count=template.core_instance_count,
            step_concurrency=template.step_concurrency,
            subnet_id=template.subnet_id,
            key_name=template.key_name,
            pyspark_python=template.pyspark_python,
            idle_timeout_minutes=template.idle_timeout_minutes,
            install_python=template.python_bootstrap,
            scripts_prefix=self.settings.scripts_prefix,
        )
        if template.core_market == "SPOT":
            for group in request["Instances"]["InstanceGroups"]:
                if group["InstanceRole"] == "CORE":
                    group["Market"] = "SPOT"
                    if template.spot_bid_price:
                        group["BidPrice"] = template.spot_bid_price
        if template.bootstrap_actions:
            request["BootstrapActions"] = [
                *request.get("BootstrapActions", []),
                *(
                    {
                        "Name": action.name,
                        "ScriptBootstrapAction": {"Path": action.path, "Args": list(action.args)},
                    }
                    for action in template.bootstrap_actions
                ),
            ]
        request["Tags"] = [*request["Tags"], {"Key": RUN_ID_TAG, "Value": run_id}]
        return request

    def create_transient_cluster(self, *, run_id: str, log: Log) -> str:
        request = self.transient_cluster_request(run_id=run_id)
        settings = self.settings
        ours = bootstrap_uri(settings.bucket, settings.scripts_prefix)
        paths = [a["ScriptBootstrapAction"]["Path"] for a in request.get("BootstrapActions", [])]
        if ours in paths:
            upload_bootstrap(self.s3, settings.bucket, prefix=settings.scripts_prefix)
        cluster_id = self.emr.run_job_flow(**request)["JobFlowId"]
        log.info(
            f"created transient EMR cluster {cluster_id} ({request['Name']}) for run {run_id}: "
            f"{console_url(self.region, cluster_id)}"
        )
        return cluster_id

    def cluster_cost(self, *, cluster_id: str) -> ClusterCost:
        """Instance hours EMR reports, and the price of the cluster's instances since it started."""
        cluster = self._describe_cluster(cluster_id)
        timeline = cluster["Status"].get("Timeline", {})
        start = timeline.get("ReadyDateTime") or timeline.get("CreationDateTime")
        end = timeline.get("EndDateTime") or datetime.now(start.tzinfo if start else UTC)
        hours_up = max((end - start).total_seconds(), 0.0) / 3600 if start else 0.0
        prices = parse_prices(self.settings.instance_prices_usd)
        usd_per_hour: float | None = None
        if prices:
            pages = self.emr.get_paginator("list_instance_groups").paginate(ClusterId=cluster_id)
            groups = [g for page in pages for g in page["InstanceGroups"]]
            if all(g["InstanceType"] in prices for g in groups):
                usd_per_hour = sum(
                    prices[g["InstanceType"]] * g.get("RequestedInstanceCount", 0) for g in groups
                )
        return ClusterCost(
            normalized_instance_hours=int(cluster.get("NormalizedInstanceHours") or 0),
            usd_per_hour=usd_per_hour,
            hours_up=hours_up,
        )

    def terminate(self, *, cluster_id: str, log: Log) -> None:
        try:
            cost = self.cluster_cost(cluster_id=cluster_id)
        except (ClientError, BotoCoreError, EmrClusterError) as error:
            log.warning(f"no cost summary for EMR cluster {cluster_id}: {error}")
        else:
            estimate = "" if cost.estimated_usd is None else f", about ${cost.estimated_usd:.2f}"
            log.info(
                f"transient EMR cluster {cluster_id} used {cost.normalized_instance_hours} "
                f"normalized instance hours over {cost.hours_up:.2f} h{estimate}"
            )
        try:
            self.emr.terminate_job_flows(JobFlowIds=[cluster_id])
        except (ClientError, BotoCoreError) as error:
            url = console_url(self.region, cluster_id)
            log.error(
                f"could not terminate transient EMR cluster {cluster_id}: {error}; its idle "
                f"timeout will end it, or terminate it by hand: {url}"
            )
            return
        log.info(f"terminated transient EMR cluster {cluster_id}")

    def _describe_cluster(self, cluster_id: str) -> dict[str, Any]:
        try:
            cluster = self.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        except ClientError as error:
            raise EmrClusterError(
                description=f"EMR cluster {cluster_id} not found in {self.region}: {error}",
                metadata={"emr_cluster_id": cluster_id},
            ) from error
        self._log_uris[cluster_id] = cluster.get("LogUri")
        return cluster

    # --- steps --------------------------------------------------------------------------

    def submit_step(self, *, cluster_id: str, name: str, args: Sequence[str]) -> str:
        response = self.emr.add_job_flow_steps(
            JobFlowId=cluster_id,
            Steps=[
                {
                    "Name": name,
                    # The cluster outlives a failed job; the runner decides when it ends.
                    "ActionOnFailure": "CONTINUE",
                    "HadoopJarStep": {"Jar": "command-runner.jar", "Args": list(args)},
                }
            ],
        )
        return response["StepIds"][0]

    def wait_for_step(self, *, cluster_id: str, step_id: str, log: Log) -> StepRun:
        """Poll until the step completes; raise EmrStepError / EmrTimeoutError otherwise."""
        settings = self.settings
        deadline = Deadline(settings.step_timeout_seconds)
        last_state = None
        while True:
            step = self.emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
            state = step["Status"]["State"]
            if state != last_state:
                log.info(f"EMR step {step_id} on {cluster_id}: {state}")
                last_state = state
            if state == STEP_DONE:
                return _step_run(cluster_id, step)
            cluster = self._describe_cluster(cluster_id)
            cluster_ended = cluster["Status"]["State"] in CLUSTER_ENDED_STATES
            if state in STEP_FAILED_STATES:
                # A cluster that fails to start (bootstrap, permissions, capacity) cancels its
                # steps: then only the cluster's StateChangeReason says why.
                raise self._step_error(
                    cluster_id, step, deadline, cluster=cluster if cluster_ended else None
                )
            if cluster_ended:
                raise self._step_error(cluster_id, step, deadline, cluster=cluster)
            if deadline.expired:
                raise EmrTimeoutError(
                    description=f"EMR step {step_id} ({step.get('Name', '')}) on cluster "
                    f"{cluster_id} still {state} after {deadline.describe()}",
                    metadata={
                        "emr_cluster_id": cluster_id,
                        "emr_step_id": step_id,
                        "waited_seconds": round(deadline.elapsed, 1),
                    },
                )
            time.sleep(settings.poll_interval_seconds)

    def cancel_steps(self, *, cluster_id: str, step_ids: Sequence[str], log: Log) -> None:
        """Ask EMR to stop the steps (running ones get SIGINT); never raises, only logs."""
        try:
            response = self.emr.cancel_steps(
                ClusterId=cluster_id,
                StepIds=list(step_ids),
                StepCancellationOption="SEND_INTERRUPT",
            )
        except (ClientError, BotoCoreError) as error:
            log.error(f"could not cancel EMR steps {list(step_ids)} on {cluster_id}: {error}")
            return
        for info in response.get("CancelStepsInfoList", []):
            detail = f": {info['Reason']}" if info.get("Reason") else ""
            log.warning(f"EMR step {info.get('StepId')} cancellation {info.get('Status')}{detail}")

    def _step_error(
        self,
        cluster_id: str,
        step: Mapping[str, Any],
        deadline: Deadline,
        *,
        cluster: Mapping[str, Any] | None = None,
    ) -> EmrStepError:
        step_id = step["Id"]
        status = step["Status"]
        failure = status.get("FailureDetails") or {}
        step_reason = _reason(status)
        reasons = [
            f"{key}: {failure[key]}" for key in ("Reason", "Message") if failure.get(key)
        ] or ([step_reason] if step_reason else [])
        cluster_reason = ""
        if cluster is not None:
            cluster_reason = _reason(cluster["Status"]) or "no reason given"
            reasons.append(f"cluster {cluster['Status']['State']}: {cluster_reason}")
        reasons = reasons or ["no reason given"]
        if status.get("Timeline", {}).get("StartDateTime"):
            log_uri, tail = self.stderr_tail(
                cluster_id=cluster_id, step_id=step_id, log_file=failure.get("LogFile")
            )
        else:
            log_uri, tail = None, "(the step never started: it has no logs)"
        message = (
            f"EMR step {step_id} ({step.get('Name', '')}) on cluster {cluster_id} ended "
            f"{status['State']} after {deadline.elapsed:.1f}s. " + " | ".join(reasons)
        )
        message += f"\nCluster: {console_url(self.region, cluster_id)}"
        message += f"\nLast lines of {log_uri}:\n{tail}" if log_uri else f"\n{tail}"
        return EmrStepError(
            description=message,
            metadata={
                "emr_cluster_id": cluster_id,
                "emr_step_id": step_id,
                "state": status["State"],
                "cluster_state_change_reason": cluster_reason,
                "stderr_uri": log_uri or "",
                "stderr_tail": dg.MetadataValue.text(tail),
            },
        )

    def stderr_location(
        self, *, cluster_id: str, step_id: str, log_file: str | None = None
    ) -> str | None:
        """``<LogUri>/<cluster>/steps/<step>/stderr.gz`` (or the LogFile EMR pointed at)."""
        if log_file and log_file.startswith(("s3://", "s3n://")):
            return log_file
        if cluster_id not in self._log_uris:
            self._describe_cluster(cluster_id)
        base = self._log_uris.get(cluster_id)
        if not base:
            return None
        bucket, prefix = parse_s3_uri(base)
        prefix = prefix.strip("/")
        key = "/".join(part for part in (prefix, cluster_id, "steps", step_id, "stderr.gz") if part)
        return f"s3://{bucket}/{key}"

    def stderr_tail(
        self, *, cluster_id: str, step_id: str, log_file: str | None = None
    ) -> tuple[str | None, str]:
        """(URI, last lines) of the step's stderr, waiting a while for EMR to ship it."""
        uri = self.stderr_location(cluster_id=cluster_id, step_id=step_id, log_file=log_file)
        if uri is None:
            return None, "(the cluster has no log URI: no step logs in S3)"
        bucket, key = parse_s3_uri(uri)
        deadline = Deadline(self.settings.failure_log_wait_seconds)
        while True:
            try:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                break
            except ClientError as error:
                if error_code(error) not in {"NoSuchKey", "404"}:
                    return uri, f"(could not read the step's stderr: {error})"
                if deadline.expired:
                    return uri, f"(stderr not in S3 after waiting {deadline.elapsed:.0f}s)"
            time.sleep(max(self.settings.poll_interval_seconds, 1.0))
        text = gzip.decompress(body) if key.endswith(".gz") else body
        lines = text.decode("utf-8", errors="replace").rstrip().splitlines()
        return uri, "\n".join(lines[-self.settings.stderr_tail_lines :])

    def step_metadata(self, *, step: StepRun) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "emr_cluster_id": step.cluster_id,
            "emr_step_id": step.step_id,
            "emr_cluster_url": dg.MetadataValue.url(console_url(self.region, step.cluster_id)),
        }
        logs = self.stderr_location(cluster_id=step.cluster_id, step_id=step.step_id)
        if logs:
            bucket, key = parse_s3_uri(logs.rsplit("/", 1)[0] + "/")
            metadata["emr_step_logs_url"] = dg.MetadataValue.url(
                f"https://s3.console.aws.amazon.com/s3/buckets/{bucket}"
                f"?region={self.region}&prefix={key}"
            )
        for label, moment in (
            ("submitted", step.submitted_at),
            ("started", step.started_at),
            ("ended", step.ended_at),
        ):
            if moment is not None:
                metadata[f"emr_step_{label}_at"] = dg.MetadataValue.timestamp(moment)
        if step.started_at and step.ended_at:
            metadata["emr_step_seconds"] = round(
                (step.ended_at - step.started_at).total_seconds(), 1
            )
        cost = self.cluster_cost(cluster_id=step.cluster_id)
        # EMR reports hours per cluster, not per step: a shared cluster's count covers all.
        metadata["emr_cluster_normalized_instance_hours"] = cost.normalized_instance_hours
        if cost.usd_per_hour is not None:
            metadata["emr_cluster_estimated_cost_usd"] = cost.estimated_usd
            if "emr_step_seconds" in metadata:
                metadata["emr_step_estimated_cost_usd"] = round(
                    cost.usd_per_hour * metadata["emr_step_seconds"] / 3600, 4
                )
        return metadata


def _reason(status: Mapping[str, Any]) -> str:
    """``CODE: Message`` of a StateChangeReason; empty when EMR gave none."""
    reason = status.get("StateChangeReason") or {}
    return ": ".join(str(reason[k]) for k in ("Code", "Message") if reason.get(k))


def _step_run(cluster_id: str, step: Mapping[str, Any]) -> StepRun:
    timeline = step["Status"].get("Timeline", {})
    return StepRun(
        cluster_id=cluster_id,
        step_id=step["Id"],
        state=step["Status"]["State"],
        submitted_at=timeline.get("CreationDateTime"),
        started_at=timeline.get("StartDateTime"),
        ended_at=timeline.get("EndDateTime"),
    )
