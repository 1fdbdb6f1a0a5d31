"""Create or terminate the long-running EMR cluster that the Dagster EMR resource submits to.

    python -m infra_scripts.emr_cluster create --region eu-west-1 --bucket my-lake
        [--name car-rental-spark] [--core-count 2] [--subnet-id subnet-...] [--dry-run]
    python -m infra_scripts.emr_cluster terminate --region eu-west-1 [--cluster-id j-...]

``create`` does nothing when a cluster of that name is already starting, running or waiting.
The roles come from ``iam.py``; because the service role uses ``AmazonEMRServicePolicy_v2``, the
cluster carries the ``for-use-with-amazon-emr-managed-policies=true`` tag and must be launched in
a subnet (and VPC) carrying it too.

PySpark runs on ``--pyspark-python`` (``/usr/bin/python3.11``), which EMR 7's Amazon Linux 2023
does not install: every node runs the bootstrap action ``emr_bootstrap.sh`` that installs it and
the jobs' pinned wheels, offline (uploaded by ``create`` when missing, like ``upload_code`` does;
``--no-python-bootstrap`` for an image that has them already).
"""

from __future__ import annotations

import argparse
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from car_rental_platform.aws_names import (
    DEFAULT_PYSPARK_PYTHON,
    DEFAULT_RELEASE_LABEL,
    EMR_MANAGED_TAG,
    PROJECT,
    active_clusters,
    console_url,
    run_job_flow_request,
)
from infra_scripts import upload_code
from infra_scripts.common import (
    AwsContext,
    Plan,
    SetupError,
    add_common_arguments,
    cli_main,
    new_parser,
    retry_while_iam_propagates,
)

DEFAULT_NAME = f"{PROJECT}-spark"


def subnet_is_tagged(ec2: BaseClient, subnet_id: str) -> bool:
    """Whether the subnet carries the tag that ``AmazonEMRServicePolicy_v2`` requires."""
    subnets = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    tags = {t["Key"]: t["Value"] for s in subnets for t in s.get("Tags", [])}
    return all(tags.get(key) == value for key, value in EMR_MANAGED_TAG.items())


def create_cluster(emr: BaseClient, plan: Plan, request: dict[str, Any]) -> str | None:
    """Start the cluster unless one of that name is active; return its id (None on dry runs)."""
    name = request["Name"]
    existing = active_clusters(emr, name)
    if existing:
        if len(existing) > 1:
            plan.note(f"{len(existing)} active clusters named {name}: {', '.join(existing)}")
        plan.ok("emr cluster", name, existing[0])
        return existing[0]
    response = plan.change(
        "create",
        "emr cluster",
        name,
        lambda: retry_while_iam_propagates(lambda: emr.run_job_flow(**request)),
    )
    return None if response is None else response["JobFlowId"]


def terminate_cluster(
    emr: BaseClient, plan: Plan, *, region: str, cluster_id: str | None = None, name: str = ""
) -> list[str]:
    """Terminate the given cluster, or every active cluster called ``name``."""
    if cluster_id:
        try:
            state = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]
        except ClientError as error:
            raise SetupError(f"no cluster {cluster_id}: {error}") from error
        targets = [cluster_id] if state not in {"TERMINATING", "TERMINATED"} else []
        label = cluster_id
    else:
        targets = active_clusters(emr, name)
        label = name
    if not targets:
        plan.ok("emr cluster", label, "not running")
        return []
    for target in targets:
        plan.change(
            "terminate",
            "emr cluster",
            target,
            lambda target=target: emr.terminate_job_flows(JobFlowIds=[target]),
            detail=console_url(region, target),
        )
    return targets


# --- CLI ------------------------------------------------------------------------------------


def add_create_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--release-label", default=DEFAULT_RELEASE_LABEL, help="default: %(default)s"
    )
    parser.add_argument("--master-instance-type", default="m5.xlarge", help="default: %(default)s")
    parser.add_argument("--core-instance-type", default="m5.xlarge", help="default: %(default)s")
    parser.add_argument("--core-count", type=int, default=2, help="default: %(default)s")
    parser.add_argument(
        "--step-concurrency",
        type=int,
        default=2,
        help="steps run at once (StepConcurrencyLevel, default: %(default)s)",
    )
    parser.add_argument(
        "--subnet-id",
        default=None,
        help="subnet to launch in; must be tagged for-use-with-amazon-emr-managed-policies=true",
    )
    parser.add_argument("--key-name", default=None, help="EC2 key pair for SSH (default: none)")
    parser.add_argument(
        "--pyspark-python",
        default=DEFAULT_PYSPARK_PYTHON,
        help="interpreter of PySpark steps; empty for EMR's default (default: %(default)s)",
    )
    parser.add_argument(
        "--no-python-bootstrap",
        dest="install_python",
        action="store_false",
        help="do not install --pyspark-python with the bootstrap action (the image has it)",
    )
    parser.add_argument(
        "--idle-timeout-minutes",
        type=int,
        default=0,
        help="let EMR terminate the cluster after this long without steps; 0 never (default)",
    )


def add_name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default=DEFAULT_NAME, help="cluster name (default: %(default)s)")


def request_from_args(args: argparse.Namespace, region: str | None = None) -> dict[str, Any]:
    return run_job_flow_request(
        name=args.name,
        bucket=args.bucket,
        release_label=args.release_label,
        master_instance_type=args.master_instance_type,
        core_instance_type=args.core_instance_type,
        core_count=args.core_count,
        step_concurrency=args.step_concurrency,
        subnet_id=args.subnet_id,
        key_name=args.key_name,
        pyspark_python=args.pyspark_python or None,
        idle_timeout_minutes=args.idle_timeout_minutes,
        install_python=args.install_python,
        scripts_prefix=args.scripts_prefix,
        region=region,
    )


def run_create(args: argparse.Namespace, ctx: AwsContext, plan: Plan) -> None:
    if not args.subnet_id:
        plan.note(
            "no --subnet-id: EMR picks a default-VPC subnet, which (with its VPC) must carry "
            "the tag for-use-with-amazon-emr-managed-policies=true"
        )
    elif not subnet_is_tagged(ctx.client("ec2"), args.subnet_id):
        plan.note(
            f"subnet {args.subnet_id} lacks the tag for-use-with-amazon-emr-managed-policies=true"
            " that AmazonEMRServicePolicy_v2 requires: the cluster will fail to start"
        )
    request = request_from_args(args, region=ctx.region)
    if request.get("BootstrapActions"):
        upload_code.ensure_bootstrap_script(
            ctx.client("s3"), plan, bucket=args.bucket, prefix=args.scripts_prefix
        )
    cluster_id = create_cluster(ctx.client("emr"), plan, request)
    if cluster_id:
        print(f"cluster {cluster_id}: {console_url(ctx.region, cluster_id)}")


def run_terminate(args: argparse.Namespace, ctx: AwsContext, plan: Plan) -> None:
    terminate_cluster(
        ctx.client("emr"), plan, region=ctx.region, cluster_id=args.cluster_id, name=args.name
    )


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create the cluster unless it is active")
    add_common_arguments(create)
    add_name_argument(create)
    add_create_arguments(create)
    upload_code.add_arguments(create)
    create.set_defaults(run=run_create)
    terminate = commands.add_parser("terminate", help="terminate by --cluster-id or --name")
    add_common_arguments(terminate, bucket_required=False)
    add_name_argument(terminate)
    terminate.add_argument("--cluster-id", default=None, help="terminate this cluster")
    terminate.set_defaults(run=run_terminate)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, build_parser(), lambda args, ctx, plan: args.run(args, ctx, plan))


if __name__ == "__main__":
    raise SystemExit(main())
