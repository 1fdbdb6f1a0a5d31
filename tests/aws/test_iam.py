"""iam.py against moto: policy versions, drift removal, instance profile, the runner role.

moto stores and validates IAM documents but does not enforce them, so what a role may do is
tested on the documents (test_iam_policies.py); here only what the script changes is checked.
"""

from __future__ import annotations

import json

import pytest

from car_rental_platform.aws_names import (
    EMR_INSTANCE_PROFILE,
    EMR_INSTANCE_ROLE,
    GLUE_CRAWLER_ROLE,
    LEGACY_INSTANCE_PROFILES,
)
from infra_scripts import iam, iam_apply, iam_documents, iam_policies, iam_roles
from infra_scripts.common import Plan, SetupError
from tests.aws.support import AwsEnv, changed_lines

ACCOUNT = "123456789012"
RUNNER_ARN = iam_documents.managed_policy_arn(iam_roles.DAGSTER_RUNNER_POLICY, ACCOUNT)


def _iam_main(aws_env: AwsEnv, *extra: str) -> None:
    assert iam.main([*aws_env.cli_args(), *extra]) == 0


def _default_document(aws_env: AwsEnv) -> tuple[str, dict]:
    client = aws_env.client("iam")
    version_id = client.get_policy(PolicyArn=RUNNER_ARN)["Policy"]["DefaultVersionId"]
    version = client.get_policy_version(PolicyArn=RUNNER_ARN, VersionId=version_id)
    return version_id, version["PolicyVersion"]["Document"]


def test_changed_document_becomes_the_new_default_version(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _iam_main(aws_env)
    _iam_main(aws_env, "--workgroup", "car-rental-v2")
    out = capsys.readouterr().out

    assert (
        f"update           iam policy {iam_roles.DAGSTER_RUNNER_POLICY} (new default version)"
        in out
    )
    version_id, document = _default_document(aws_env)
    assert version_id == "v2"
    assert document == iam_policies.dagster_runner_policy(
        aws_env.bucket, region=aws_env.region, account=ACCOUNT, workgroup="car-rental-v2"
    )


def test_oldest_version_is_deleted_at_the_five_version_limit(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    client = aws_env.client("iam")
    for number in range(1, 7):
        document = iam_documents.policy(
            iam_documents.allow(f"Version{number}", ["s3:GetObject"], ["arn:aws:s3:::b/*"])
        )
        spec = iam_roles.ManagedPolicySpec(iam_roles.DAGSTER_RUNNER_POLICY, "test", document)
        iam_apply.ensure_managed_policy(client, Plan(dry_run=False), spec, account=ACCOUNT)
    out = capsys.readouterr().out

    versions = client.list_policy_versions(PolicyArn=RUNNER_ARN)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v2", "v3", "v4", "v5", "v6"]
    assert [v["VersionId"] for v in versions if v["IsDefaultVersion"]] == ["v6"]
    assert f"delete           iam policy version {iam_roles.DAGSTER_RUNNER_POLICY} v1" in out


def test_hand_granted_extras_are_removed_and_trust_restored(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _iam_main(aws_env)
    client = aws_env.client("iam")
    s3_everything = iam_documents.policy(iam_documents.allow("Everything", ["s3:*"], ["*"]))
    client.put_role_policy(
        RoleName=EMR_INSTANCE_ROLE,
        PolicyName="seed-s3",
        PolicyDocument=json.dumps(s3_everything),
    )
    legacy = client.create_policy(PolicyName="seed-glue", PolicyDocument=json.dumps(s3_everything))
    client.attach_role_policy(RoleName=GLUE_CRAWLER_ROLE, PolicyArn=legacy["Policy"]["Arn"])
    client.update_assume_role_policy(
        RoleName=GLUE_CRAWLER_ROLE,
        PolicyDocument=json.dumps(iam_documents.service_trust_policy("ec2.amazonaws.com")),
    )
    capsys.readouterr()

    _iam_main(aws_env)
    changes = changed_lines(capsys.readouterr().out)

    assert len(changes) == 3, changes
    assert client.list_role_policies(RoleName=EMR_INSTANCE_ROLE)["PolicyNames"] == ["lake-access"]
    attached = client.list_attached_role_policies(RoleName=GLUE_CRAWLER_ROLE)
    assert attached["AttachedPolicies"] == []
    trust = client.get_role(RoleName=GLUE_CRAWLER_ROLE)["Role"]["AssumeRolePolicyDocument"]
    assert trust == iam_documents.service_trust_policy("glue.amazonaws.com")


def test_instance_profile_holding_another_role_is_fixed(aws_env: AwsEnv) -> None:
    _iam_main(aws_env)
    client = aws_env.client("iam")
    profile = EMR_INSTANCE_PROFILE
    client.remove_role_from_instance_profile(
        InstanceProfileName=profile, RoleName=EMR_INSTANCE_ROLE
    )
    client.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=GLUE_CRAWLER_ROLE)

    _iam_main(aws_env)

    roles = client.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]
    assert [r["RoleName"] for r in roles] == [EMR_INSTANCE_ROLE]


def test_the_instance_profile_is_named_like_its_role_and_the_old_name_goes(
    aws_env: AwsEnv,
) -> None:
    client = aws_env.client("iam")
    _iam_main(aws_env)
    (legacy,) = LEGACY_INSTANCE_PROFILES
    client.create_instance_profile(InstanceProfileName=legacy)
    client.add_role_to_instance_profile(InstanceProfileName=legacy, RoleName=EMR_INSTANCE_ROLE)

    _iam_main(aws_env)

    profiles = client.list_instance_profiles_for_role(RoleName=EMR_INSTANCE_ROLE)
    names = [p["InstanceProfileName"] for p in profiles["InstanceProfiles"]]
    assert names == [EMR_INSTANCE_ROLE]
    with pytest.raises(client.exceptions.NoSuchEntityException):
        client.get_instance_profile(InstanceProfileName=legacy)


def test_runner_role_trusts_the_given_principal(aws_env: AwsEnv) -> None:
    principal = f"arn:aws:iam::{ACCOUNT}:role/dagster-ecs-task"
    _iam_main(aws_env, "--runner-principal-arn", principal)

    client = aws_env.client("iam")
    role = client.get_role(RoleName=iam_roles.DAGSTER_RUNNER_ROLE)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"AWS": principal}
    attached = client.list_attached_role_policies(RoleName=iam_roles.DAGSTER_RUNNER_ROLE)
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [RUNNER_ARN]


def test_dry_run_reports_the_drift_and_keeps_it(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _iam_main(aws_env)
    _iam_main(aws_env, "--workgroup", "elsewhere", "--dry-run")
    out = capsys.readouterr().out

    assert f"would update     iam policy {iam_roles.DAGSTER_RUNNER_POLICY}" in out
    assert _default_document(aws_env)[0] == "v1"


def test_landing_prefix_option_scopes_the_runners_reads(aws_env: AwsEnv) -> None:
    _iam_main(aws_env, "--landing-prefix", "exports/")

    _, document = _default_document(aws_env)
    assert document == iam_policies.dagster_runner_policy(
        aws_env.bucket, region=aws_env.region, account=ACCOUNT, landing_prefix="exports"
    )
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["ReadLandedExports"]["Resource"] == [f"arn:aws:s3:::{aws_env.bucket}/exports/*"]


REPOSITORY = "acme/car-rental"


def test_the_ci_role_trusts_one_repository_and_branch_through_githubs_oidc(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    github = ("--github-repository", REPOSITORY, "--github-branch", "release")
    _iam_main(aws_env, *github, "--dry-run")
    dry_run = capsys.readouterr().out
    client = aws_env.client("iam")
    assert "would create     iam oidc provider token.actions.githubusercontent.com" in dry_run
    assert client.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []

    _iam_main(aws_env, *github)
    capsys.readouterr()
    _iam_main(aws_env, *github)
    assert changed_lines(capsys.readouterr().out) == []

    provider_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    provider = client.get_open_id_connect_provider(OpenIDConnectProviderArn=provider_arn)
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]
    role = client.get_role(RoleName=iam_roles.GITHUB_ACTIONS_ROLE)["Role"]
    assert role["MaxSessionDuration"] == 6 * 3600
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Federated": provider_arn}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": f"repo:{REPOSITORY}:ref:refs/heads/release",
        }
    }
    attached = client.list_attached_role_policies(RoleName=iam_roles.GITHUB_ACTIONS_ROLE)
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [RUNNER_ARN]


def test_a_shortened_session_is_repaired(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    _iam_main(aws_env, "--github-repository", REPOSITORY)
    client = aws_env.client("iam")
    client.update_role(RoleName=iam_roles.GITHUB_ACTIONS_ROLE, MaxSessionDuration=3600)
    capsys.readouterr()

    _iam_main(aws_env, "--github-repository", REPOSITORY)

    out = capsys.readouterr().out
    assert f"update           iam role session duration {iam_roles.GITHUB_ACTIONS_ROLE}" in out
    assert (
        client.get_role(RoleName=iam_roles.GITHUB_ACTIONS_ROLE)["Role"]["MaxSessionDuration"]
        == 21600
    )


def test_a_provider_without_the_sts_audience_would_get_it(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto lacks AddClientIDToOpenIDConnectProvider: the repair is seen planned, not applied."""
    aws_env.client("iam").create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["another-audience"]
    )

    _iam_main(aws_env, "--github-repository", REPOSITORY, "--dry-run")

    out = capsys.readouterr().out
    assert (
        "would update     iam oidc provider token.actions.githubusercontent.com "
        "(add audience sts.amazonaws.com)" in out
    )


@pytest.mark.parametrize(
    ("repository", "branch"), [("car-rental", "main"), ("acme/car-rental", "*"), ("a/b/c", "main")]
)
def test_the_ci_trust_names_exactly_one_repository_and_branch(repository: str, branch: str) -> None:
    with pytest.raises(SetupError, match="--github-"):
        iam_documents.github_trust_policy(repository, branch, account=ACCOUNT)
