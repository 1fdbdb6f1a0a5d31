"""setup_all against moto: the first run builds everything, the second changes nothing.

The runs pass ``--skip-tls-policy`` because moto ignores the policy's ``aws:SecureTransport``
condition and would deny every object request (see ``test_bucket.py`` for that policy).
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from car_rental_platform.aws_names import (
    EMR_INSTANCE_PROFILE,
    EMR_INSTANCE_ROLE,
    EMR_SERVICE_ROLE,
    GLUE_CRAWLER_ROLE,
    crawler_names,
    role_arn,
)
from car_rental_platform.code_bundle import DEPS_ZIP_NAME, bootstrap_keys, build_bootstrap
from infra_scripts import iam_documents, iam_policies, iam_roles, setup_all
from spark_jobs.contract import DATABASE, Zone
from tests.aws.support import AwsEnv, changed_lines, unchanged_lines

ACCOUNT = "123456789012"  # moto's default account


def _run(aws_env: AwsEnv, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    argv = [*aws_env.cli_args(), "--skip-tls-policy", *extra]
    assert setup_all.main(argv) == 0
    return capsys.readouterr().out


def test_second_run_changes_nothing(aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    first = _run(aws_env, capsys)
    second = _run(aws_env, capsys)
    dry_run = _run(aws_env, capsys, "--dry-run")

    assert changed_lines(first) and not unchanged_lines(first)
    assert changed_lines(second) == []
    assert second.rstrip().endswith("nothing to change: all up to date")
    assert changed_lines(dry_run) == []
    assert "dry run: 0 change(s) would be made" in dry_run


def test_resources_have_the_declared_settings(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(aws_env, capsys)
    bucket = aws_env.bucket
    s3 = aws_env.client("s3")

    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"],
        True,
    )
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["car-rental-expire-athena-results"]["Filter"] == {"Prefix": "athena_results/"}
    assert rules["car-rental-expire-athena-results"]["Expiration"] == {"Days": 30}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {f"{zone.value}/" for zone in Zone} <= keys
    code = [k for k in keys if k.startswith("scripts/") and k != "scripts/"]
    bootstrap = [k for k in code if k.startswith("scripts/bootstrap/")]
    assert sorted(bootstrap) == sorted(bootstrap_keys(build_bootstrap()).values()), (
        "the EMR bootstrap action and its wheels, on their own digest"
    )
    bundle = [k for k in code if k not in bootstrap]
    assert {k.rsplit("/", 1)[-1] for k in bundle} >= {DEPS_ZIP_NAME, "contract.py"}
    assert len({k.split("/")[1] for k in bundle}) == 1, "one digest folder"

    client = aws_env.client("iam")
    instance_role_policy = client.get_role_policy(
        RoleName=EMR_INSTANCE_ROLE, PolicyName="lake-access"
    )["PolicyDocument"]
    assert instance_role_policy == iam_policies.emr_instance_policy(bucket)
    crawler_policy = client.get_role_policy(RoleName=GLUE_CRAWLER_ROLE, PolicyName="crawl-lake")[
        "PolicyDocument"
    ]
    assert crawler_policy == iam_policies.glue_crawler_policy(
        bucket, region=aws_env.region, account=ACCOUNT
    )
    attached = client.list_attached_role_policies(RoleName=EMR_SERVICE_ROLE)
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == ["AmazonEMRServicePolicy_v2"]
    profile = client.get_instance_profile(InstanceProfileName=EMR_INSTANCE_PROFILE)
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == [EMR_INSTANCE_ROLE]
    runner_arn = iam_documents.managed_policy_arn(iam_roles.DAGSTER_RUNNER_POLICY, ACCOUNT)
    version = client.get_policy_version(PolicyArn=runner_arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"] == iam_policies.dagster_runner_policy(
        bucket, region=aws_env.region, account=ACCOUNT
    )

    glue = aws_env.client("glue")
    assert glue.get_database(Name=DATABASE)["Database"]["Name"] == DATABASE
    for zone, name in crawler_names().items():
        crawler = glue.get_crawler(Name=name)["Crawler"]
        assert crawler["Targets"]["S3Targets"][0]["Path"] == f"s3://{bucket}/{zone.value}/"
        assert crawler["SchemaChangePolicy"] == {
            "UpdateBehavior": "UPDATE_IN_DATABASE",
            "DeleteBehavior": "DEPRECATE_IN_DATABASE",
        }
        assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}
        assert crawler["Role"] == role_arn(GLUE_CRAWLER_ROLE, ACCOUNT)
        assert crawler["DatabaseName"] == DATABASE
        assert crawler["TablePrefix"] == ""
        config = json.loads(crawler["Configuration"])
        assert config["Grouping"]["TableGroupingPolicy"] == "CombineCompatibleSchemas"
        assert config["CrawlerOutput"]["Partitions"]["AddOrUpdateBehavior"] == "InheritFromTable"

    group = aws_env.client("athena").get_work_group(WorkGroup="car-rental")["WorkGroup"]
    configuration = group["Configuration"]
    assert configuration["ResultConfiguration"]["OutputLocation"] == (
        f"s3://{bucket}/athena_results/"
    )
    assert configuration["EnforceWorkGroupConfiguration"] is True


def test_dry_run_on_an_empty_account_changes_nothing(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(aws_env, capsys, "--dry-run", "--with-cluster")

    planned = changed_lines(out)
    assert planned and all(line.startswith("would ") for line in planned)
    for expected in (
        f"would create     s3 bucket {aws_env.bucket} ({aws_env.region})",
        f"would create     iam role {EMR_INSTANCE_ROLE}",
        f"would create     iam policy {iam_roles.DAGSTER_RUNNER_POLICY}",
        "would create     glue crawler car-rental-processed-crawler",
        "would create     athena workgroup car-rental",
        "would upload     s3 code object",
        "would create     emr cluster car-rental-spark",
    ):
        assert any(line.startswith(expected) for line in planned), expected
    assert "dry run:" in out

    with pytest.raises(ClientError):
        aws_env.client("s3").head_bucket(Bucket=aws_env.bucket)
    assert aws_env.client("iam").list_roles()["Roles"] == []
    assert aws_env.client("glue").get_crawlers()["Crawlers"] == []
    assert aws_env.client("emr").list_clusters()["Clusters"] == []
