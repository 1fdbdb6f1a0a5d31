"""``EmrJobs``, the behaviour behind ``EmrSparkRunner``: code upload, steps, their metadata."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.emr import EmrStepState

from car_rental_platform.aws_names import console_url
from car_rental_platform.code_bundle import build_bundle, upload_bundle
from car_rental_platform.resources.aws.clients import Deadline, Log
from car_rental_platform.resources.aws.emr_clusters import CLUSTER_ENDED_STATES, EmrClusters
from car_rental_platform.resources.aws.emr_step_logs import (
    NEVER_STARTED,
    stderr_tail,
    stderr_uri,
    step_error,
    step_logs_url,
)
from car_rental_platform.resources.aws.errors import EmrStepError, EmrTimeoutError
from spark_jobs.driver_log import CONFIG_NAME, LOG_NAME, file_appender_config

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_s3 import S3Client

    from car_rental_platform.resources.aws.emr_runner import EmrSparkRunner

DRIVER_LOG_LAUNCHER = """set -e
config="$1"; shift
mkdir -p "$(dirname "$config")"
printf '%s\\n' "$1" > "$config"; shift
spark_log4j="${SPARK_CONF_DIR:-/etc/spark/conf}/log4j2.properties"
if [ -f "$spark_log4j" ]; then export LOG4J_CONFIGURATION_FILE="$spark_log4j,$config"; fi
exec "$@"
"""
"""``bash -c`` script around ``spark-submit``: ``CONFIG_PATH CONFIG_TEXT COMMAND...``.

It writes the step's log4j2 configuration and lists it after Spark's own in log4j2's
``LOG4J_CONFIGURATION_FILE`` (a composite configuration: Spark's appenders and levels stay),
then becomes the command. An environment variable rather than ``--driver-java-options``, which
would replace EMR's ``spark.driver.extraJavaOptions``. Without Spark's file there is nothing to
add to, and the command runs unchanged.
"""
DRIVER_LOG_STEP_NAME = "car-rental-driver-log"
"""``$0`` of the script (what ``ps`` shows)."""
STEP_DONE = EmrStepState.Completed.value
STEP_FAILED_STATES = frozenset(
    state.value for state in (EmrStepState.Failed, EmrStepState.Cancelled, EmrStepState.Interrupted)
)
"""Compared as EMR's strings: a step can also be CANCEL_PENDING, which ``EmrStepState`` lacks."""


@dataclass(frozen=True)
class StepRun:
    """A finished step: where it ran and its timeline."""

    cluster_id: str
    step_id: str
    state: str
    submitted_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


class EmrJobs:
    """The behaviour behind ``EmrSparkRunner``: code upload, steps and their metadata; clusters."""

    def __init__(self, settings: EmrSparkRunner, *, emr: EMRClient, s3: S3Client) -> None:
        self.settings = settings
        self.emr = emr
        self.s3 = s3
        self.clusters = EmrClusters(settings, emr=emr, s3=s3)

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

    @staticmethod
    def with_driver_log(args: Sequence[str], *, folder: str) -> list[str]:
        """``args`` (a spark-submit command) run so the driver JVM also logs to
        ``<folder>/driver.log`` (``DRIVER_LOG_LAUNCHER``, ``spark_jobs.driver_log``)."""
        config = file_appender_config(f"{folder}/{LOG_NAME}")
        launch = ["bash", "-c", DRIVER_LOG_LAUNCHER, DRIVER_LOG_STEP_NAME]
        return [*launch, f"{folder}/{CONFIG_NAME}", config, *args]

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
            cluster = self.clusters.describe(cluster_id)
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
        status = step["Status"]
        if status.get("Timeline", {}).get("StartDateTime"):
            stderr = stderr_uri(
                self.clusters.log_uri(cluster_id),
                cluster_id=cluster_id,
                step_id=step["Id"],
                log_file=(status.get("FailureDetails") or {}).get("LogFile"),
            )
            tail = stderr_tail(
                self.s3,
                stderr,
                wait_seconds=self.settings.failure_log_wait_seconds,
                poll_seconds=self.settings.poll_interval_seconds,
                lines=self.settings.stderr_tail_lines,
            )
        else:
            stderr, tail = None, NEVER_STARTED
        return step_error(
            step,
            cluster_id=cluster_id,
            region=self.region,
            elapsed=deadline.elapsed,
            stderr=stderr,
            tail=tail,
            cluster=cluster,
        )

    def step_metadata(self, *, step: StepRun) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "emr_cluster_id": step.cluster_id,
            "emr_step_id": step.step_id,
            "emr_cluster_url": dg.MetadataValue.url(console_url(self.region, step.cluster_id)),
        }
        logs = stderr_uri(
            self.clusters.log_uri(step.cluster_id), cluster_id=step.cluster_id, step_id=step.step_id
        )
        if logs:
            metadata["emr_step_logs_url"] = dg.MetadataValue.url(step_logs_url(logs, self.region))
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
        cost = self.clusters.cluster_cost(cluster_id=step.cluster_id)
        # EMR reports hours per cluster, not per step: a shared cluster's count covers all.
        metadata["emr_cluster_normalized_instance_hours"] = cost.normalized_instance_hours
        if cost.usd_per_hour is not None:
            metadata["emr_cluster_estimated_cost_usd"] = cost.estimated_usd
            if "emr_step_seconds" in metadata:
                metadata["emr_step_estimated_cost_usd"] = round(
                    cost.usd_per_hour * metadata["emr_step_seconds"] / 3600, 4
                )
        return metadata


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
