"""``EmrClusters``: the cluster a step runs on, checked, found by name or created transient,
and what it cost when it is terminated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.emr import EMR_CLUSTER_TERMINATED_STATES

from car_rental_platform.aws_names import (
    active_clusters,
    auto_termination_policy,
    console_url,
    run_job_flow_request,
)
from car_rental_platform.code_bundle import bootstrap_uri, upload_bootstrap
from car_rental_platform.resources.aws.clients import Log
from car_rental_platform.resources.aws.emr_config import parse_prices
from car_rental_platform.resources.aws.emr_step_logs import state_change_reason
from car_rental_platform.resources.aws.errors import EmrClusterError

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_s3 import S3Client

    from car_rental_platform.resources.aws.emr_runner import EmrSparkRunner

CLUSTER_ENDED_STATES = frozenset(state.value for state in EMR_CLUSTER_TERMINATED_STATES)
"""TERMINATING, TERMINATED, TERMINATED_WITH_ERRORS: dagster-aws's ``EmrClusterState`` values."""
RUN_ID_TAG = "dagster-run-id"


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


class EmrClusters:
    """The clusters of ``EmrJobs``: state, lookup by name, transient ones, cost, termination."""

    def __init__(self, settings: EmrSparkRunner, *, emr: EMRClient, s3: S3Client) -> None:
        self.settings = settings
        self.emr = emr
        self.s3 = s3
        self._log_uris: dict[str, str | None] = {}

    @property
    def region(self) -> str:
        return self.emr.meta.region_name

    def is_active(self, *, cluster_id: str) -> bool:
        return self.describe(cluster_id)["Status"]["State"] not in CLUSTER_ENDED_STATES

    def check_active(self, *, cluster_id: str) -> str:
        cluster = self.describe(cluster_id)
        state = cluster["Status"]["State"]
        if state in CLUSTER_ENDED_STATES:
            raise EmrClusterError(
                description=f"EMR cluster {cluster_id} is {state}: "
                f"{state_change_reason(cluster['Status']) or 'no reason given'}",
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
            # Set right after the launch instead (set_idle_timeout): see there.
            idle_timeout_minutes=0,
            install_python=template.python_bootstrap,
            scripts_prefix=self.settings.scripts_prefix,
            region=self.region,
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
        self.set_idle_timeout(cluster_id=cluster_id, log=log)
        return cluster_id

    def set_idle_timeout(self, *, cluster_id: str, log: Log) -> None:
        """Give the new cluster its idle auto-termination policy, or terminate it.

        Set after RunJobFlow rather than in it: then EMR authorizes PutAutoTerminationPolicy on
        a cluster that exists and carries the project tag, so the runner's policy can scope it
        to the project's clusters (elasticmapreduce:ResourceTag/project), as it does every other
        cluster action. Inside RunJobFlow the cluster has no tags yet to test, and the action
        defines no request-tag key. Unscoped, the grant would let the runner give any cluster in
        the account a one-minute idle timeout: a way round the tag-scoped TerminateJobFlows.
        A cluster that cannot get its safety net is not left running without one.
        """
        minutes = self.settings.cluster_template.idle_timeout_minutes
        if minutes <= 0:
            return
        try:
            self.emr.put_auto_termination_policy(
                ClusterId=cluster_id, AutoTerminationPolicy=auto_termination_policy(minutes)
            )
        except (ClientError, BotoCoreError) as error:
            self.terminate(cluster_id=cluster_id, log=log)
            raise EmrClusterError(
                description=f"could not give transient EMR cluster {cluster_id} its "
                f"{minutes}-minute idle auto-termination policy, so it was terminated: {error}",
                metadata={"emr_cluster_id": cluster_id},
            ) from error

    def cluster_cost(self, *, cluster_id: str) -> ClusterCost:
        """Instance hours EMR reports, and the price of the cluster's instances since it started."""
        cluster = self.describe(cluster_id)
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

    def describe(self, cluster_id: str) -> dict[str, Any]:
        try:
            cluster = self.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        except ClientError as error:
            raise EmrClusterError(
                description=f"EMR cluster {cluster_id} not found in {self.region}: {error}",
                metadata={"emr_cluster_id": cluster_id},
            ) from error
        self._log_uris[cluster_id] = cluster.get("LogUri")
        return cluster

    def log_uri(self, cluster_id: str) -> str | None:
        """The cluster's log URI, described once."""
        if cluster_id not in self._log_uris:
            self.describe(cluster_id)
        return self._log_uris.get(cluster_id)
