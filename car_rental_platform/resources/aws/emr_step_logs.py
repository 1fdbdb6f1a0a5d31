"""A failed EMR step's logs: where EMR ships its stderr, its last lines, the error quoting them.

EMR copies a step's logs to the cluster's log URI every few minutes, so the error waits a
while (a setting) for the stderr to arrive and says so when it did not.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg
from botocore.exceptions import ClientError

from car_rental_platform.aws_names import console_url
from car_rental_platform.resources.aws.clients import Deadline, error_code, parse_s3_uri
from car_rental_platform.resources.aws.errors import EmrStepError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NEVER_STARTED = "(the step never started: it has no logs)"


def state_change_reason(status: Mapping[str, Any]) -> str:
    """``CODE: Message`` of a StateChangeReason; empty when EMR gave none."""
    reason = status.get("StateChangeReason") or {}
    return ": ".join(str(reason[k]) for k in ("Code", "Message") if reason.get(k))


def stderr_uri(
    log_uri: str | None, *, cluster_id: str, step_id: str, log_file: str | None = None
) -> str | None:
    """``<LogUri>/<cluster>/steps/<step>/stderr.gz`` (or the LogFile EMR pointed at)."""
    if log_file and log_file.startswith(("s3://", "s3n://")):
        return log_file
    if not log_uri:
        return None
    bucket, prefix = parse_s3_uri(log_uri)
    prefix = prefix.strip("/")
    key = "/".join(part for part in (prefix, cluster_id, "steps", step_id, "stderr.gz") if part)
    return f"s3://{bucket}/{key}"


def stderr_tail(
    s3: S3Client, uri: str | None, *, wait_seconds: float, poll_seconds: float, lines: int
) -> str:
    """The last ``lines`` of the step's stderr, waiting ``wait_seconds`` for EMR to ship it."""
    if uri is None:
        return "(the cluster has no log URI: no step logs in S3)"
    bucket, key = parse_s3_uri(uri)
    deadline = Deadline(wait_seconds)
    while True:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            break
        except ClientError as error:
            if error_code(error) not in {"NoSuchKey", "404"}:
                return f"(could not read the step's stderr: {error})"
            if deadline.expired:
                # The configured wait, not the clock: one slow GetObject must not change it.
                return f"(stderr not in S3 after waiting {wait_seconds:g}s)"
        time.sleep(max(poll_seconds, 1.0))
    text = gzip.decompress(body) if key.endswith(".gz") else body
    return "\n".join(text.decode("utf-8", errors="replace").rstrip().splitlines()[-lines:])


def step_logs_url(stderr: str, region: str) -> str:
    """The S3 console's view of the folder holding a step's logs."""
    bucket, key = parse_s3_uri(stderr.rsplit("/", 1)[0] + "/")
    return f"https://s3.console.aws.amazon.com/s3/buckets/{bucket}?region={region}&prefix={key}"


def step_error(
    step: Mapping[str, Any],
    *,
    cluster_id: str,
    region: str,
    elapsed: float,
    stderr: str | None,
    tail: str,
    cluster: Mapping[str, Any] | None = None,
) -> EmrStepError:
    """The error of a step that ended other than COMPLETED: EMR's reasons and its stderr's tail.

    ``cluster`` is given when the cluster ended too: then its own reason is quoted, often the
    only one (a cluster that fails to start cancels its steps without a word).
    """
    step_id = step["Id"]
    status = step["Status"]
    failure = status.get("FailureDetails") or {}
    step_reason = state_change_reason(status)
    reasons = [f"{key}: {failure[key]}" for key in ("Reason", "Message") if failure.get(key)] or (
        [step_reason] if step_reason else []
    )
    cluster_reason = ""
    if cluster is not None:
        cluster_reason = state_change_reason(cluster["Status"]) or "no reason given"
        reasons.append(f"cluster {cluster['Status']['State']}: {cluster_reason}")
    reasons = reasons or ["no reason given"]
    message = (
        f"EMR step {step_id} ({step.get('Name', '')}) on cluster {cluster_id} ended "
        f"{status['State']} after {elapsed:.1f}s. " + " | ".join(reasons)
    )
    message += f"\nCluster: {console_url(region, cluster_id)}"
    message += f"\nLast lines of {stderr}:\n{tail}" if stderr else f"\n{tail}"
    return EmrStepError(
        description=message,
        metadata={
            "emr_cluster_id": cluster_id,
            "emr_step_id": step_id,
            "state": status["State"],
            "cluster_state_change_reason": cluster_reason,
            "stderr_uri": stderr or "",
            "stderr_tail": dg.MetadataValue.text(tail),
        },
    )
