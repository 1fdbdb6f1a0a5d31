"""The vocabulary of the IAM documents: statements, trust policies, and the ARNs they name.

Pure functions; the project's own permission policies (``iam_policies``) are built from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra_scripts.common import SetupError
from spark_jobs.contract import DATABASE

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
"""The audience configure-aws-credentials asks GitHub's token for."""
EMR_CLEANUP_SERVICE_ROLE = "AWSServiceRoleForEMRCleanup"
"""Service-linked role EMR creates with the first cluster of an account (it needs the caller's
``iam:CreateServiceLinkedRole``)."""


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(
    sid: str, actions: Sequence[str], resources: Sequence[str], condition: dict | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": list(resources),
    }
    if condition:
        statement["Condition"] = condition
    return statement


def service_trust_policy(service: str, condition: dict | None = None) -> dict[str, Any]:
    """Trust policy letting one AWS service assume the role, and nobody else."""
    statement: dict[str, Any] = {
        "Sid": "TrustService",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return policy(statement)


def emr_service_trust_policy(region: str, account: str, partition: str = "aws") -> dict[str, Any]:
    """EMR may assume the service role only for clusters of this account and region.

    The ``aws:SourceAccount``/``aws:SourceArn`` keys are AWS's guard against the confused-deputy
    problem, documented for EMR. The Glue role has none: Glue does not document sending them.
    """
    return service_trust_policy(
        "elasticmapreduce.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:elasticmapreduce:{region}:{account}:*"},
        },
    )


def principal_trust_policy(principal_arn: str) -> dict[str, Any]:
    """Trust policy for the Dagster deployment's own principal (a role or user ARN)."""
    return policy(
        {
            "Sid": "TrustDagsterPrincipal",
            "Effect": "Allow",
            "Principal": {"AWS": principal_arn},
            "Action": "sts:AssumeRole",
        }
    )


def github_oidc_provider_arn(account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"


def github_trust_policy(
    repository: str, branch: str, *, account: str, partition: str = "aws"
) -> dict[str, Any]:
    """Only workflows of ``repository`` running on ``branch`` may assume the role.

    GitHub's token names both in its ``sub`` claim (``repo:OWNER/REPO:ref:refs/heads/BRANCH``);
    its ``aud`` must be the audience configure-aws-credentials requests.
    """
    if repository.count("/") != 1 or not all(repository.split("/")):
        raise SetupError(f"--github-repository must be OWNER/REPO, not {repository!r}")
    if not branch or any(c in branch for c in "*?"):
        raise SetupError(f"--github-branch must name one branch, not {branch!r}")
    return policy(
        {
            "Sid": "TrustGitHubActionsOfOneBranch",
            "Effect": "Allow",
            "Principal": {"Federated": github_oidc_provider_arn(account, partition)},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": f"repo:{repository}:ref:refs/heads/{branch}",
                }
            },
        }
    )


def bucket_arn(bucket: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}"


def prefix_arns(bucket: str, prefixes: Sequence[str], partition: str = "aws") -> list[str]:
    return [f"{bucket_arn(bucket, partition)}/{prefix}/*" for prefix in prefixes]


def list_prefix_condition(prefixes: Sequence[str]) -> dict[str, Any]:
    """ListBucket only under these prefixes (the bare name too: Hadoop probes ``zone`` itself)."""
    values = [pattern for prefix in prefixes for pattern in (prefix, f"{prefix}/*")]
    return {"StringLike": {"s3:prefix": values}}


def emr_cleanup_role_arn(account: str, partition: str = "aws") -> str:
    """The ARN pattern AWS documents for EMR's cleanup service-linked role (any EMR endpoint)."""
    return (
        f"arn:{partition}:iam::{account}:role/aws-service-role/elasticmapreduce.amazonaws.com*/"
        f"{EMR_CLEANUP_SERVICE_ROLE}*"
    )


def glue_catalog_arns(
    region: str, account: str, database: str = DATABASE, partition: str = "aws"
) -> list[str]:
    """Glue checks the catalog, the database and the table ARN of a table call: all three."""
    base = f"arn:{partition}:glue:{region}:{account}"
    return [f"{base}:catalog", f"{base}:database/{database}", f"{base}:table/{database}/*"]


def managed_policy_arn(name: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:policy/{name}"
