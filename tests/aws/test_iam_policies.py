"""The IAM documents are least-privilege: no wildcard actions, S3 only in the lake bucket.

Whether AWS defines each action, resource type and condition key as used here is checked
against AWS's own reference in test_iam_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from car_rental_platform.aws_names import (
    EMR_INSTANCE_ROLE,
    EMR_SERVICE_ROLE,
    GLUE_CRAWLER_ROLE,
    PROJECT,
    role_arn,
)
from car_rental_platform.resources.aws import S3Landing
from infra_scripts import iam_documents, iam_policies, iam_roles
from infra_scripts.common import SetupError
from spark_jobs.contract import DATABASE

BUCKET = "my-lake"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
REGION = "eu-west-1"
ACCOUNT = "111122223333"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FORBIDDEN_ACTIONS = {"*", "s3:*", "glue:*", "iam:*"}


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _documents(kms_key_arn: str | None = None) -> dict[str, dict[str, Any]]:
    """Every permission document the script manages, by a readable name."""
    policies, roles = iam_roles.desired_state(
        bucket=BUCKET,
        region=REGION,
        account=ACCOUNT,
        kms_key_arn=kms_key_arn,
        runner_principal_arn=f"arn:aws:iam::{ACCOUNT}:role/dagster",
    )
    documents = {spec.name: spec.document for spec in policies}
    for role in roles:
        documents[f"{role.name} trust"] = role.trust
        for name, document in role.inline_policies.items():
            documents[f"{role.name}/{name}"] = document
    return documents


DOCUMENTS = _documents()
PERMISSION_DOCUMENTS = {k: v for k, v in DOCUMENTS.items() if not k.endswith(" trust")}


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["Statement"]


def _actions(document: dict[str, Any]) -> set[str]:
    return {a for s in _statements(document) for a in _as_list(s["Action"])}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_no_wildcard_actions(name: str) -> None:
    actions = _actions(DOCUMENTS[name])
    assert not actions & FORBIDDEN_ACTIONS
    assert not [a for a in actions if "*" in a], "every action is named, no Get* patterns"


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_statement_has_a_unique_sid_and_allows_only(name: str) -> None:
    sids = [s.get("Sid") for s in _statements(DOCUMENTS[name])]
    assert all(sid and sid.isalnum() for sid in sids)
    assert len(sids) == len(set(sids))
    assert {s["Effect"] for s in _statements(DOCUMENTS[name])} == {"Allow"}


@pytest.mark.parametrize("name", sorted(PERMISSION_DOCUMENTS))
def test_s3_resources_are_the_bucket_or_under_it(name: str) -> None:
    for statement in _statements(PERMISSION_DOCUMENTS[name]):
        if any(a.startswith("s3:") for a in _as_list(statement["Action"])):
            for resource in _as_list(statement["Resource"]):
                assert resource == BUCKET_ARN or resource.startswith(f"{BUCKET_ARN}/"), resource


@pytest.mark.parametrize("name", sorted(PERMISSION_DOCUMENTS))
def test_bucket_listing_is_limited_to_prefixes(name: str) -> None:
    for statement in _statements(PERMISSION_DOCUMENTS[name]):
        if "s3:ListBucket" in _as_list(statement["Action"]):
            assert statement["Resource"] == [BUCKET_ARN]
            assert statement["Condition"]["StringLike"]["s3:prefix"]


def test_emr_instance_role_reads_code_and_raw_and_writes_outputs_only() -> None:
    document = iam_policies.emr_instance_policy(BUCKET)
    by_sid = {s["Sid"]: s for s in _statements(document)}
    assert by_sid["ReadCodeAndRawZone"]["Action"] == ["s3:GetObject"]
    assert set(by_sid["ReadCodeAndRawZone"]["Resource"]) == {
        f"{BUCKET_ARN}/scripts/*",
        f"{BUCKET_ARN}/raw/*",
    }
    assert set(by_sid["ReadWriteOutputsLogsAndPipes"]["Resource"]) == {
        f"{BUCKET_ARN}/processed/*",
        f"{BUCKET_ARN}/kpi/*",
        f"{BUCKET_ARN}/_staging/*",  # written aside, checked, then moved into place
        f"{BUCKET_ARN}/logs/*",
        f"{BUCKET_ARN}/dagster_pipes/*",
    }
    assert not [a for a in _actions(document) if a.startswith(("glue:", "iam:"))]


def test_glue_crawler_policy_is_scoped_to_the_project_database() -> None:
    document = iam_policies.glue_crawler_policy(BUCKET, region=REGION, account=ACCOUNT)
    glue_resources = {
        r
        for s in _statements(document)
        if any(a.startswith("glue:") for a in _as_list(s["Action"]))
        for r in _as_list(s["Resource"])
    }
    base = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    assert glue_resources == {
        f"{base}:catalog",
        f"{base}:database/{DATABASE}",
        f"{base}:table/{DATABASE}/*",
    }
    s3_read = {s["Sid"]: s for s in _statements(document)}["ReadCrawledZones"]
    assert s3_read["Action"] == ["s3:GetObject"]
    logs = {s["Sid"]: s for s in _statements(document)}["WriteCrawlerLogs"]
    assert all(":log-group:/aws-glue/crawlers" in r for r in logs["Resource"])


def test_runner_passes_only_project_roles_to_their_service() -> None:
    """The service role goes to EMR, the instance role to EC2 (EMR passes it on at launch)."""
    document = iam_policies.dagster_runner_policy(BUCKET, region=REGION, account=ACCOUNT)
    pass_role = [s for s in _statements(document) if "iam:PassRole" in s["Action"]]
    passed = {
        r: (operator, values["iam:PassedToService"])
        for s in pass_role
        for operator, values in s["Condition"].items()
        for r in s["Resource"]
    }
    assert passed == {
        role_arn(EMR_SERVICE_ROLE, ACCOUNT): (
            "StringLike",
            "elasticmapreduce.amazonaws.com*",
        ),
        role_arn(EMR_INSTANCE_ROLE, ACCOUNT): (
            "StringLike",
            "ec2.amazonaws.com*",
        ),
        role_arn(GLUE_CRAWLER_ROLE, ACCOUNT): (
            "StringEquals",
            "glue.amazonaws.com",
        ),
    }
    assert {a for s in pass_role for a in s["Action"]} == {"iam:PassRole"}


def test_runner_operates_only_clusters_tagged_for_the_project() -> None:
    by_sid = {
        s["Sid"]: s
        for s in _statements(
            iam_policies.dagster_runner_policy(BUCKET, region=REGION, account=ACCOUNT)
        )
    }
    create = by_sid["CreateProjectClusters"]["Condition"]["StringEquals"]
    operate = by_sid["OperateProjectClusters"]["Condition"]["StringEquals"]
    assert create == {"elasticmapreduce:RequestTag/project": "car-rental"}
    assert operate == {"elasticmapreduce:ResourceTag/project": "car-rental"}
    athena = by_sid["QueryProjectWorkgroup"]["Resource"]
    assert athena == [f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/car-rental"]
    crawlers = by_sid["RunProjectCrawlers"]["Resource"]
    assert crawlers == [f"arn:aws:glue:{REGION}:{ACCOUNT}:crawler/car-rental-*"]
    assert "glue:CreateCrawler" not in by_sid["RunProjectCrawlers"]["Action"]
    assert by_sid["CreateProjectCrawlers"]["Resource"] == ["*"]
    assert by_sid["CreateProjectCrawlers"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/project": "car-rental"}
    }


def test_runner_may_launch_clusters_the_way_emr_authorizes_run_job_flow() -> None:
    """RunJobFlow with tags needs AddTags, and in a new account the cleanup service-linked
    role; the idle timeout is set on the tagged cluster right after (PutAutoTerminationPolicy,
    tag-scoped like the other cluster actions)."""
    by_sid = _runner_statements()
    tags = by_sid["TagProjectClusters"]
    assert tags["Action"] == ["elasticmapreduce:AddTags"]
    assert tags["Condition"] == {"StringEquals": {"elasticmapreduce:RequestTag/project": PROJECT}}
    operate = by_sid["OperateProjectClusters"]
    assert "elasticmapreduce:PutAutoTerminationPolicy" in operate["Action"]
    assert operate["Condition"] == {
        "StringEquals": {"elasticmapreduce:ResourceTag/project": PROJECT}
    }
    assert "SetAutoTerminationOfClusters" not in by_sid, "no unconditioned grant"
    linked = by_sid["CreateEmrCleanupServiceLinkedRole"]
    assert linked["Action"] == ["iam:CreateServiceLinkedRole"]
    assert linked["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/elasticmapreduce.amazonaws.com*/"
        "AWSServiceRoleForEMRCleanup*"
    ]
    assert linked["Condition"] == {
        "StringLike": {
            "iam:AWSServiceName": [
                "elasticmapreduce.amazonaws.com",
                "elasticmapreduce.amazonaws.com.cn",
            ]
        }
    }


def test_emr_service_role_uses_the_v2_managed_policy_and_passes_our_instance_role() -> None:
    _, roles = iam_roles.desired_state(bucket=BUCKET, region=REGION, account=ACCOUNT)
    service = next(r for r in roles if r.name == EMR_SERVICE_ROLE)
    assert service.managed_policy_arns == (
        "arn:aws:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2",
    )
    (statement,) = service.inline_policies["pass-instance-role"]["Statement"]
    assert statement["Resource"] == [role_arn(EMR_INSTANCE_ROLE, ACCOUNT)]
    assert service.trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:elasticmapreduce:{REGION}:{ACCOUNT}:*"},
    }
    trusts = {r.name: r.trust["Statement"][0]["Principal"] for r in roles}
    assert trusts == {
        EMR_SERVICE_ROLE: {"Service": "elasticmapreduce.amazonaws.com"},
        EMR_INSTANCE_ROLE: {"Service": "ec2.amazonaws.com"},
        GLUE_CRAWLER_ROLE: {"Service": "glue.amazonaws.com"},
    }


def test_kms_key_is_granted_only_when_the_lake_uses_it() -> None:
    without = _documents()
    with_key = _documents(KMS_KEY)
    assert not any(a.startswith("kms:") for d in without.values() for a in _actions(d))
    kms_resources = {
        r
        for d in with_key.values()
        for s in _statements(d)
        if any(a.startswith("kms:") for a in _as_list(s["Action"]))
        for r in s["Resource"]
    }
    assert kms_resources == {KMS_KEY}
    crawler_kms = _actions(with_key[f"{GLUE_CRAWLER_ROLE}/crawl-lake"]) & {
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    assert crawler_kms == {"kms:Decrypt"}, "crawlers only read"


def test_other_partitions_get_their_own_arns() -> None:
    document = iam_policies.emr_instance_policy(BUCKET, partition="aws-cn")
    resources = {r for s in _statements(document) for r in s["Resource"]}
    assert all(r.startswith("arn:aws-cn:s3:::") for r in resources)


def _runner_statements(**settings: Any) -> dict[str, dict[str, Any]]:
    document = iam_policies.dagster_runner_policy(
        BUCKET, region=REGION, account=ACCOUNT, **settings
    )
    return {s["Sid"]: s for s in _statements(document)}


def test_runner_only_reads_the_landing_prefix() -> None:
    by_sid = _runner_statements(landing_prefix="/drop/exports/")
    assert by_sid["ReadLandedExports"]["Action"] == ["s3:GetObject"]
    assert by_sid["ReadLandedExports"]["Resource"] == [f"{BUCKET_ARN}/drop/exports/*"]
    listing = by_sid["ListLandedExports"]["Condition"]["StringLike"]["s3:prefix"]
    assert listing == ["drop/exports", "drop/exports/*"]
    writable = {
        r
        for s in by_sid.values()
        if "s3:PutObject" in s["Action"] or "s3:DeleteObject" in s["Action"]
        for r in s["Resource"]
    }
    assert not [r for r in writable if "/drop/" in r or "/landing/" in r]


def test_the_default_landing_prefix_is_the_landing_resources() -> None:
    assert (
        S3Landing.model_fields["prefix"].default.strip("/") == iam_policies.DEFAULT_LANDING_PREFIX
    )
    listing = _runner_statements()["ListLandedExports"]["Condition"]["StringLike"]["s3:prefix"]
    assert listing == ["landing", "landing/*"]


def test_an_empty_landing_prefix_is_refused() -> None:
    with pytest.raises(SetupError, match="landing prefix must not be empty"):
        _runner_statements(landing_prefix="/")


def test_runner_glue_writes_are_scoped_to_the_project() -> None:
    by_sid = _runner_statements()
    base = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    assert by_sid["CreateProjectDatabase"]["Resource"] == [
        f"{base}:catalog",
        f"{base}:database/{DATABASE}",
    ]
    assert by_sid["TagProjectDatabaseAndCrawlers"]["Action"] == ["glue:TagResource"]
    assert by_sid["TagProjectDatabaseAndCrawlers"]["Resource"] == [
        f"{base}:database/{DATABASE}",
        f"{base}:crawler/car-rental-*",
    ]
    assert set(by_sid["WriteProjectTables"]["Action"]) >= {
        "glue:DeleteTable",
        "glue:BatchDeletePartition",
    }
    assert by_sid["WriteProjectTables"]["Resource"] == iam_documents.glue_catalog_arns(
        REGION, ACCOUNT
    )
