"""emr_cluster against moto: one cluster per name, termination, and the request it sends.

moto keeps ``StepConcurrencyLevel``, tags, roles, bootstrap actions and the log URI, so they are
checked on the cluster; it ignores ``AutoTerminationPolicy`` and ``Configurations``, checked on
the request. Clusters start in WAITING at once (no bootstrap action runs), which is all
``create`` needs; the bootstrap script itself is checked for what it installs and its syntax.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from car_rental_platform import aws_names
from car_rental_platform.code_bundle import (
    BOOTSTRAP_SCRIPT,
    bootstrap_key,
    bootstrap_keys,
    build_bootstrap,
    wheels_uri,
)
from infra_scripts import emr_cluster
from tests.aws.support import AwsEnv, changed_lines, unchanged_lines

ACTIVE = list(aws_names.ACTIVE_STATES)


def _create(aws_env: AwsEnv, *extra: str) -> int:
    return emr_cluster.main(["create", *aws_env.cli_args(), *extra])


def _cluster_ids(out: str) -> list[str]:
    return re.findall(r"^cluster (j-\w+): ", out, flags=re.MULTILINE)


@pytest.fixture
def bucket(aws_env: AwsEnv) -> str:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    return aws_env.bucket


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
        aws_names.EMR_SERVICE_ROLE,
        aws_names.EMR_INSTANCE_PROFILE,
    )
    assert request["StepConcurrencyLevel"] == 2
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 5400}
    (spark_env,) = request["Configurations"]
    assert spark_env["Configurations"][0]["Properties"]["PYSPARK_PYTHON"] == "/usr/bin/python3.11"
    (bootstrap,) = request["BootstrapActions"]
    assert bootstrap == {
        "Name": "install-python3.11",
        "ScriptBootstrapAction": {
            "Path": f"s3://my-lake/{bootstrap_key()}",
            "Args": ["3.11", wheels_uri("my-lake")],
        },
    }
    with_region = emr_cluster.run_job_flow_request(name="c", bucket="my-lake", region="eu-west-1")
    assert with_region["BootstrapActions"][0]["ScriptBootstrapAction"]["Args"] == [
        "3.11",
        f"s3://my-lake/{bootstrap_key().rsplit('/', 1)[0]}/wheels/",
        "eu-west-1",
    ]


def test_bootstrap_installs_the_interpreter_pyspark_is_pointed_at() -> None:
    def actions(**settings: object) -> list[dict]:
        request = emr_cluster.run_job_flow_request(name="c", bucket="b", **settings)
        return request.get("BootstrapActions", [])

    (action,) = actions(pyspark_python="/usr/bin/python3.12", scripts_prefix="code/")
    assert action["ScriptBootstrapAction"]["Args"] == ["3.12", wheels_uri("b", "code/")]
    assert action["ScriptBootstrapAction"]["Path"] == f"s3://b/{bootstrap_key('code')}"
    assert actions(install_python=False) == []
    assert actions(pyspark_python=None) == [], "EMR's own python3: nothing to install"
    assert actions(pyspark_python="/opt/conda/bin/python") == [], "not a system package"


def test_bootstrap_script_installs_python_and_boto3_from_the_wheels_only() -> None:
    """The install itself runs offline in test_code_bundle.py; here what the script says."""
    script = BOOTSTRAP_SCRIPT.read_text()
    assert script.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in script
    assert 'VERSION="${1:?$USAGE}"' in script
    assert 'WHEELS_URI="${2:?$USAGE}"' in script
    assert 'sudo dnf install -y "python${VERSION}" "python${VERSION}-pip"' in script
    assert 'aws s3 cp --recursive --only-show-errors ${REGION:+--region "$REGION"}' in script
    assert '-m pip install --quiet --no-index --find-links "$WHEELS_DIR"' in script
    assert '--require-hashes -r "$WHEELS_DIR/requirements.txt"' in script
    pip_lines = [line for line in script.splitlines() if " pip install " in line]
    assert all("--no-index" in line for line in pip_lines), "no install from an index"
    assert bootstrap_key().startswith("scripts/bootstrap/")
    assert bootstrap_key().endswith("/emr_bootstrap.sh")


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bootstrap_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(BOOTSTRAP_SCRIPT)], check=True)


def test_create_twice_gives_one_cluster(
    aws_env: AwsEnv, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _create(aws_env, "--step-concurrency", "3") == 0
    assert _create(aws_env, "--step-concurrency", "3") == 0
    out = capsys.readouterr().out

    first_id, second_id = _cluster_ids(out)
    assert first_id == second_id
    script = f"s3://{bucket}/{bootstrap_key()}"
    assert changed_lines(out) == [
        f"upload           s3 code object {script} (EMR bootstrap action, and 7 pinned wheels "
        f"to {wheels_uri(bucket)})",
        "create           emr cluster car-rental-spark",
    ]
    assert unchanged_lines(out) == [
        f"ok (unchanged)   s3 code object {script}",
        f"ok (unchanged)   emr cluster car-rental-spark ({first_id})",
    ]
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
    assert cluster["ServiceRole"] == aws_names.EMR_SERVICE_ROLE
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == aws_names.EMR_INSTANCE_PROFILE
    assert {t["Key"]: t["Value"] for t in cluster["Tags"]} == {
        "project": "car-rental",
        "for-use-with-amazon-emr-managed-policies": "true",
    }
    (action,) = emr.list_bootstrap_actions(ClusterId=first_id)["BootstrapActions"]
    assert (action["Name"], action["ScriptPath"], action["Args"]) == (
        "install-python3.11",
        script,
        ["3.11", wheels_uri(bucket), aws_env.region],
    )
    body = aws_env.client("s3").get_object(Bucket=bucket, Key=bootstrap_key())["Body"].read()
    assert body == BOOTSTRAP_SCRIPT.read_bytes()
    uploaded = aws_env.client("s3").list_objects_v2(Bucket=bucket, Prefix="scripts/bootstrap/")
    keys = bootstrap_keys(build_bootstrap()).values()
    assert sorted(item["Key"] for item in uploaded["Contents"]) == sorted(keys)


def test_create_without_the_python_bootstrap(
    aws_env: AwsEnv, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _create(aws_env, "--no-python-bootstrap") == 0
    (cluster_id,) = _cluster_ids(capsys.readouterr().out)

    emr = aws_env.client("emr")
    assert emr.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"] == []
    assert "Contents" not in aws_env.client("s3").list_objects_v2(Bucket=bucket)


def test_terminate_by_name_then_by_id(
    aws_env: AwsEnv, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
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


def test_dry_run_creates_nothing(
    aws_env: AwsEnv, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _create(aws_env, "--dry-run") == 0
    assert changed_lines(capsys.readouterr().out) == [
        f"would upload     s3 code object s3://{aws_env.bucket}/{bootstrap_key()} "
        f"(EMR bootstrap action, and 7 pinned wheels to {wheels_uri(aws_env.bucket)})",
        "would create     emr cluster car-rental-spark",
    ]
    assert "Contents" not in aws_env.client("s3").list_objects_v2(Bucket=aws_env.bucket)
    assert aws_env.client("emr").list_clusters()["Clusters"] == []


def test_untagged_subnet_is_flagged(aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    ec2 = aws_env.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]

    assert _create(aws_env, "--subnet-id", subnet, "--dry-run") == 0
    assert f"note: subnet {subnet} lacks the tag" in capsys.readouterr().out

    emr_tag = [{"Key": k, "Value": v} for k, v in aws_names.EMR_MANAGED_TAG.items()]
    ec2.create_tags(Resources=[subnet], Tags=emr_tag)
    assert _create(aws_env, "--subnet-id", subnet, "--dry-run") == 0
    assert "note:" not in capsys.readouterr().out
