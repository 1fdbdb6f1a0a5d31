"""emr_cluster against moto: one cluster per name, termination, and the request it sends.

moto keeps ``StepConcurrencyLevel``, tags, roles and the log URI, so they are checked on the
cluster; it ignores ``AutoTerminationPolicy`` and ``Configurations``, checked on the request.
Clusters start in WAITING at once (no bootstrapping), which is all ``create`` needs.
"""

from __future__ import annotations

import re

import pytest

from infra_scripts import emr_cluster, iam
from tests.aws.support import AwsEnv, changed_lines, unchanged_lines

ACTIVE = list(emr_cluster.ACTIVE_STATES)


def _create(aws_env: AwsEnv, *extra: str) -> int:
    return emr_cluster.main(["create", *aws_env.cli_args(), *extra])


def _cluster_ids(out: str) -> list[str]:
    return re.findall(r"^cluster (j-\w+): ", out, flags=re.MULTILINE)


def test_request_of_the_long_running_cluster() -> None:
    request = emr_cluster.run_job_flow_request(
        name="car-rental-spark", bucket="my-lake", core_count=3, idle_timeout_minutes=90
    )
    assert request["ReleaseLabel"] == "emr-7.5.0"
    assert request["Applications"] == [{"Name": "Spark"}]
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    groups = {g["InstanceRole"]: g for g in request["Instances"]["InstanceGroups"]}
    assert (groups["MASTER"]["InstanceCount"], groups["CORE"]["InstanceCount"]) == (1, 3)
    assert request["LogUri"] == "s3://my-lake/logs/emr/"
    assert (request["ServiceRole"], request["JobFlowRole"]) == (
        iam.EMR_SERVICE_ROLE,
        iam.EMR_INSTANCE_PROFILE,
    )
    assert request["StepConcurrencyLevel"] == 2
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 5400}
    (spark_env,) = request["Configurations"]
    assert spark_env["Configurations"][0]["Properties"]["PYSPARK_PYTHON"] == "/usr/bin/python3.11"


def test_create_twice_gives_one_cluster(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _create(aws_env, "--step-concurrency", "3") == 0
    assert _create(aws_env, "--step-concurrency", "3") == 0
    out = capsys.readouterr().out

    first_id, second_id = _cluster_ids(out)
    assert first_id == second_id
    assert len(changed_lines(out)) == 1 and len(unchanged_lines(out)) == 1
    region = aws_env.region
    assert (
        f"https://{region}.console.aws.amazon.com/emr/home?region={region}"
        f"#/clusterDetails/{first_id}"
    ) in out
    emr = aws_env.client("emr")
    assert [c["Id"] for c in emr.list_clusters(ClusterStates=ACTIVE)["Clusters"]] == [first_id]
    cluster = emr.describe_cluster(ClusterId=first_id)["Cluster"]
    assert cluster["StepConcurrencyLevel"] == 3
    assert cluster["LogUri"] == f"s3://{aws_env.bucket}/logs/emr/"
    assert cluster["ServiceRole"] == iam.EMR_SERVICE_ROLE
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == iam.EMR_INSTANCE_PROFILE
    assert {t["Key"]: t["Value"] for t in cluster["Tags"]} == {
        "project": "car-rental",
        "for-use-with-amazon-emr-managed-policies": "true",
    }


def test_terminate_by_name_then_by_id(aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    terminate = ["terminate", "--region", aws_env.region, "--endpoint-url", aws_env.endpoint_url]
    assert _create(aws_env) == 0
    (first_id,) = _cluster_ids(capsys.readouterr().out)

    assert emr_cluster.main(terminate) == 0
    assert emr_cluster.main(terminate) == 0
    out = capsys.readouterr().out
    assert changed_lines(out) == [
        f"terminate        emr cluster {first_id} "
        f"({emr_cluster.console_url(aws_env.region, first_id)})"
    ]
    assert "ok (unchanged)   emr cluster car-rental-spark (not running)" in out

    assert _create(aws_env) == 0
    (second_id,) = _cluster_ids(capsys.readouterr().out)
    assert second_id != first_id
    assert emr_cluster.main([*terminate, "--cluster-id", second_id]) == 0
    emr = aws_env.client("emr")
    assert emr.list_clusters(ClusterStates=ACTIVE)["Clusters"] == []
    state = emr.describe_cluster(ClusterId=second_id)["Cluster"]["Status"]["State"]
    assert state in {"TERMINATING", "TERMINATED"}


def test_dry_run_creates_nothing(aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert _create(aws_env, "--dry-run") == 0
    assert changed_lines(capsys.readouterr().out) == [
        "would create     emr cluster car-rental-spark"
    ]
    assert aws_env.client("emr").list_clusters()["Clusters"] == []


def test_untagged_subnet_is_flagged(aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    ec2 = aws_env.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]

    assert _create(aws_env, "--subnet-id", subnet, "--dry-run") == 0
    assert f"note: subnet {subnet} lacks the tag" in capsys.readouterr().out

    emr_tag = [{"Key": k, "Value": v} for k, v in iam.EMR_MANAGED_TAG.items()]
    ec2.create_tags(Resources=[subnet], Tags=emr_tag)
    assert _create(aws_env, "--subnet-id", subnet, "--dry-run") == 0
    assert "note:" not in capsys.readouterr().out
