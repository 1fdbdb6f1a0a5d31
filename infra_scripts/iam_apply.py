"""Make IAM match the desired state (``iam_roles``): create, update, or remove what differs.

The roles and policies of the desired state are owned by this project: inline or attached
policies that someone added by hand (the seeds' ``s3:*``) are removed, and a changed document
becomes a new default policy version. Every change goes through the ``Plan`` (``--dry-run``).
"""

from __future__ import annotations

import json

from botocore.client import BaseClient

from car_rental_platform.aws_names import PROJECT_TAGS
from infra_scripts.common import (
    Plan,
    get_or_none,
    policy_json,
    same_policy,
)
from infra_scripts.iam_documents import (
    GITHUB_OIDC_AUDIENCE,
    GITHUB_OIDC_HOST,
    github_oidc_provider_arn,
    managed_policy_arn,
)
from infra_scripts.iam_roles import ManagedPolicySpec, RoleSpec

_NOT_FOUND = "NoSuchEntity"
MAX_POLICY_VERSIONS = 5
"""IAM keeps at most five versions of a managed policy."""


def _tags() -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in PROJECT_TAGS.items()]


def ensure_managed_policy(
    iam: BaseClient, plan: Plan, spec: ManagedPolicySpec, *, account: str, partition: str = "aws"
) -> None:
    """Create the policy, or add a new default version when its document changed."""
    arn = managed_policy_arn(spec.name, account, partition)
    found = get_or_none(iam.get_policy, {_NOT_FOUND}, PolicyArn=arn)
    if found is None:
        plan.change(
            "create",
            "iam policy",
            spec.name,
            lambda: iam.create_policy(
                PolicyName=spec.name,
                PolicyDocument=policy_json(spec.document),
                Description=spec.description,
                Tags=_tags(),
            ),
        )
        return
    default_version = found["Policy"]["DefaultVersionId"]
    current = iam.get_policy_version(PolicyArn=arn, VersionId=default_version)["PolicyVersion"]
    if same_policy(current["Document"], spec.document):
        plan.ok("iam policy", spec.name, default_version)
        return
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min(
            (v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"]
        )
        plan.change(
            "delete",
            "iam policy version",
            f"{spec.name} {oldest['VersionId']}",
            lambda: iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"]),
            detail=f"IAM keeps {MAX_POLICY_VERSIONS} versions",
        )
    plan.change(
        "update",
        "iam policy",
        spec.name,
        lambda: iam.create_policy_version(
            PolicyArn=arn, PolicyDocument=policy_json(spec.document), SetAsDefault=True
        ),
        detail="new default version",
    )


def ensure_role(iam: BaseClient, plan: Plan, spec: RoleSpec) -> None:
    """Make the role, its inline and attached policies and its instance profile match ``spec``."""
    found = get_or_none(iam.get_role, {_NOT_FOUND}, RoleName=spec.name)
    if found is None:
        plan.change(
            "create",
            "iam role",
            spec.name,
            lambda: iam.create_role(
                RoleName=spec.name,
                AssumeRolePolicyDocument=json.dumps(spec.trust),
                Description=spec.description,
                MaxSessionDuration=spec.max_session_seconds,
                Tags=_tags(),
            ),
        )
    else:
        role = found["Role"]
        unchanged = True
        if not same_policy(role["AssumeRolePolicyDocument"], spec.trust):
            unchanged = False
            plan.change(
                "update",
                "iam role trust policy",
                spec.name,
                lambda: iam.update_assume_role_policy(
                    RoleName=spec.name, PolicyDocument=json.dumps(spec.trust)
                ),
            )
        if role.get("Description", "") != spec.description:
            unchanged = False
            plan.change(
                "update",
                "iam role description",
                spec.name,
                lambda: iam.update_role(RoleName=spec.name, Description=spec.description),
            )
        if role.get("MaxSessionDuration", 3600) != spec.max_session_seconds:
            unchanged = False
            plan.change(
                "update",
                "iam role session duration",
                spec.name,
                lambda: iam.update_role(
                    RoleName=spec.name, MaxSessionDuration=spec.max_session_seconds
                ),
                detail=f"{spec.max_session_seconds}s",
            )
        if unchanged:
            plan.ok("iam role", spec.name)
    exists = found is not None
    _ensure_inline_policies(iam, plan, spec, exists=exists)
    _ensure_attached_policies(iam, plan, spec, exists=exists)
    if spec.instance_profile:
        ensure_instance_profile(iam, plan, spec.instance_profile, spec.name)
    for legacy in spec.legacy_instance_profiles:
        remove_instance_profile(iam, plan, legacy)


def _ensure_inline_policies(iam: BaseClient, plan: Plan, spec: RoleSpec, *, exists: bool) -> None:
    current_names: set[str] = set()
    if exists:
        pages = iam.get_paginator("list_role_policies").paginate(RoleName=spec.name)
        current_names = {name for page in pages for name in page["PolicyNames"]}
    for name, document in spec.inline_policies.items():
        label = f"{spec.name}/{name}"
        current = (
            iam.get_role_policy(RoleName=spec.name, PolicyName=name)["PolicyDocument"]
            if name in current_names
            else None
        )
        if current is not None and same_policy(current, document):
            plan.ok("iam inline policy", label)
            continue
        plan.change(
            "update" if current is not None else "create",
            "iam inline policy",
            label,
            lambda name=name, document=document: iam.put_role_policy(
                RoleName=spec.name, PolicyName=name, PolicyDocument=policy_json(document)
            ),
        )
    for name in sorted(current_names - spec.inline_policies.keys()):
        plan.change(
            "delete",
            "iam inline policy",
            f"{spec.name}/{name}",
            lambda name=name: iam.delete_role_policy(RoleName=spec.name, PolicyName=name),
            detail="not declared here",
        )


def _ensure_attached_policies(iam: BaseClient, plan: Plan, spec: RoleSpec, *, exists: bool) -> None:
    attached: set[str] = set()
    if exists:
        pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=spec.name)
        attached = {p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]}
    for arn in spec.managed_policy_arns:
        if arn in attached:
            plan.ok("iam attached policy", f"{spec.name} <- {arn}")
        else:
            plan.change(
                "attach",
                "iam attached policy",
                f"{spec.name} <- {arn}",
                lambda arn=arn: iam.attach_role_policy(RoleName=spec.name, PolicyArn=arn),
            )
    for arn in sorted(attached - set(spec.managed_policy_arns)):
        plan.change(
            "detach",
            "iam attached policy",
            f"{spec.name} <- {arn}",
            lambda arn=arn: iam.detach_role_policy(RoleName=spec.name, PolicyArn=arn),
            detail="not declared here",
        )


def ensure_instance_profile(iam: BaseClient, plan: Plan, profile: str, role: str) -> None:
    """The instance profile exists and holds exactly ``role`` (a profile holds at most one)."""
    found = get_or_none(iam.get_instance_profile, {_NOT_FOUND}, InstanceProfileName=profile)
    roles: list[str] = []
    if found is None:
        plan.change(
            "create",
            "iam instance profile",
            profile,
            lambda: iam.create_instance_profile(InstanceProfileName=profile, Tags=_tags()),
        )
    else:
        roles = [r["RoleName"] for r in found["InstanceProfile"]["Roles"]]
        if roles == [role]:
            plan.ok("iam instance profile", f"{profile} <- {role}")
            return
    for other in roles:
        if other != role:
            plan.change(
                "detach",
                "iam instance profile role",
                f"{profile} <- {other}",
                lambda other=other: iam.remove_role_from_instance_profile(
                    InstanceProfileName=profile, RoleName=other
                ),
            )
    if role not in roles:
        plan.change(
            "attach",
            "iam instance profile role",
            f"{profile} <- {role}",
            lambda: iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role),
        )


def remove_instance_profile(iam: BaseClient, plan: Plan, profile: str) -> None:
    """Delete a profile this project created under a name it no longer uses."""
    found = get_or_none(iam.get_instance_profile, {_NOT_FOUND}, InstanceProfileName=profile)
    if found is None:
        return
    for role in found["InstanceProfile"]["Roles"]:
        plan.change(
            "detach",
            "iam instance profile role",
            f"{profile} <- {role['RoleName']}",
            lambda name=role["RoleName"]: iam.remove_role_from_instance_profile(
                InstanceProfileName=profile, RoleName=name
            ),
        )
    plan.change(
        "delete",
        "iam instance profile",
        profile,
        lambda: iam.delete_instance_profile(InstanceProfileName=profile),
        detail="renamed to its role's name",
    )


def ensure_github_oidc_provider(
    iam: BaseClient, plan: Plan, *, account: str, partition: str = "aws"
) -> None:
    """GitHub's OIDC identity provider, accepting the STS audience (one per account, shared).

    It is never deleted here: other roles of the account may trust it. AWS validates GitHub's
    certificates itself, so no thumbprint is pinned.
    """
    arn = github_oidc_provider_arn(account, partition)
    found = get_or_none(
        iam.get_open_id_connect_provider, {_NOT_FOUND}, OpenIDConnectProviderArn=arn
    )
    if found is None:
        plan.change(
            "create",
            "iam oidc provider",
            GITHUB_OIDC_HOST,
            lambda: iam.create_open_id_connect_provider(
                Url=f"https://{GITHUB_OIDC_HOST}",
                ClientIDList=[GITHUB_OIDC_AUDIENCE],
                Tags=_tags(),
            ),
        )
    elif GITHUB_OIDC_AUDIENCE not in found.get("ClientIDList", []):
        plan.change(
            "update",
            "iam oidc provider",
            GITHUB_OIDC_HOST,
            lambda: iam.add_client_id_to_open_id_connect_provider(
                OpenIDConnectProviderArn=arn, ClientID=GITHUB_OIDC_AUDIENCE
            ),
            detail=f"add audience {GITHUB_OIDC_AUDIENCE}",
        )
    else:
        plan.ok("iam oidc provider", GITHUB_OIDC_HOST)
