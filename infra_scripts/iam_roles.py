"""The desired state of IAM: every role and managed policy of the project, from the settings.

``iam_apply`` makes the account match it; nothing here calls AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from car_rental_platform.aws_names import (
    EMR_INSTANCE_PROFILE,
    EMR_INSTANCE_ROLE,
    EMR_SERVICE_ROLE,
    GLUE_CRAWLER_ROLE,
    LEGACY_INSTANCE_PROFILES,
    PROJECT,
)
from infra_scripts.iam_documents import (
    emr_service_trust_policy,
    github_trust_policy,
    managed_policy_arn,
    principal_trust_policy,
    service_trust_policy,
)
from infra_scripts.iam_policies import (
    DEFAULT_LANDING_PREFIX,
    dagster_runner_policy,
    emr_instance_policy,
    emr_service_pass_role_policy,
    glue_crawler_policy,
)
from spark_jobs.contract import DATABASE

DAGSTER_RUNNER_POLICY = f"{PROJECT}-dagster-runner"
"""Customer managed policy for whatever principal runs the Dagster deployment."""
DAGSTER_RUNNER_ROLE = f"{PROJECT}-dagster-runner"
"""Optional role with ``DAGSTER_RUNNER_POLICY``, created when a trusted principal is given."""
GITHUB_ACTIONS_ROLE = f"{PROJECT}-github-actions"
"""Role the CI workflow (.github/workflows/aws-materialize.yml) assumes through GitHub's OIDC."""
CI_SESSION_SECONDS = 6 * 3600
"""The workflow's timeout (360 minutes): its credentials must not expire before the job does."""

EMR_SERVICE_MANAGED_POLICY = "service-role/AmazonEMRServicePolicy_v2"
"""AWS's scoped (v2) EMR service policy.

Acceptable although AWS-managed: unlike the deprecated ``AmazonElasticMapReduceRole`` it only
creates or changes EC2 resources tagged ``for-use-with-amazon-emr-managed-policies=true``, has no
S3 access at all, and AWS keeps it current with EMR's needs, which we could not do by hand.
Consequences: clusters must be launched with that tag (``aws_names.cluster_tags``) in a subnet
and VPC carrying it, and its ``iam:PassRole`` covers only ``EMR_EC2_DefaultRole``, so the service
role also gets a small inline policy to pass our own instance role.
"""


@dataclass(frozen=True)
class RoleSpec:
    """A role as this script wants it: trust, description, policies, optional instance profile."""

    name: str
    description: str
    trust: dict[str, Any]
    inline_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    managed_policy_arns: tuple[str, ...] = ()
    instance_profile: str | None = None
    max_session_seconds: int = 3600
    """How long credentials of the role last (IAM's default: one hour)."""
    legacy_instance_profiles: tuple[str, ...] = ()
    """Profiles of this role under old names: deleted, so the role is in one profile only."""


@dataclass(frozen=True)
class ManagedPolicySpec:
    name: str
    description: str
    document: dict[str, Any]


def desired_state(
    *,
    bucket: str,
    region: str,
    account: str,
    partition: str = "aws",
    database: str = DATABASE,
    crawler_prefix: str = PROJECT,
    workgroup: str = PROJECT,
    landing_prefix: str = DEFAULT_LANDING_PREFIX,
    kms_key_arn: str | None = None,
    runner_principal_arn: str | None = None,
    github_repository: str | None = None,
    github_branch: str = "main",
) -> tuple[list[ManagedPolicySpec], list[RoleSpec]]:
    """Every policy and role of the project, computed from the settings alone."""
    runner = ManagedPolicySpec(
        DAGSTER_RUNNER_POLICY,
        "Car-rental Dagster deployment: lake I/O, EMR steps, crawlers, catalog, Athena",
        dagster_runner_policy(
            bucket,
            region=region,
            account=account,
            database=database,
            crawler_prefix=crawler_prefix,
            workgroup=workgroup,
            landing_prefix=landing_prefix,
            partition=partition,
            kms_key_arn=kms_key_arn,
        ),
    )
    roles = [
        RoleSpec(
            EMR_SERVICE_ROLE,
            "Car-rental EMR service role: AmazonEMRServicePolicy_v2 plus passing our EC2 role",
            emr_service_trust_policy(region, account, partition),
            inline_policies={
                "pass-instance-role": emr_service_pass_role_policy(account, partition)
            },
            managed_policy_arns=(f"arn:{partition}:iam::aws:policy/{EMR_SERVICE_MANAGED_POLICY}",),
        ),
        RoleSpec(
            EMR_INSTANCE_ROLE,
            "Car-rental EMR instances: read code and raw zone, write outputs, logs, Pipes",
            service_trust_policy("ec2.amazonaws.com"),
            inline_policies={
                "lake-access": emr_instance_policy(
                    bucket, partition=partition, kms_key_arn=kms_key_arn
                )
            },
            instance_profile=EMR_INSTANCE_PROFILE,
            legacy_instance_profiles=LEGACY_INSTANCE_PROFILES,
        ),
        RoleSpec(
            GLUE_CRAWLER_ROLE,
            "Car-rental Glue crawlers: read processed/kpi/analyses, maintain car_rental_db",
            service_trust_policy("glue.amazonaws.com"),
            inline_policies={
                "crawl-lake": glue_crawler_policy(
                    bucket,
                    region=region,
                    account=account,
                    database=database,
                    partition=partition,
                    kms_key_arn=kms_key_arn,
                )
            },
        ),
    ]
    if runner_principal_arn:
        roles.append(
            RoleSpec(
                DAGSTER_RUNNER_ROLE,
                "Car-rental Dagster deployment, assumed by its own principal",
                principal_trust_policy(runner_principal_arn),
                managed_policy_arns=(managed_policy_arn(runner.name, account, partition),),
            )
        )
    if github_repository:
        roles.append(
            RoleSpec(
                GITHUB_ACTIONS_ROLE,
                f"Car-rental CI: GitHub Actions of {github_repository}@{github_branch}, "
                "with the runner policy",
                github_trust_policy(
                    github_repository, github_branch, account=account, partition=partition
                ),
                managed_policy_arns=(managed_policy_arn(runner.name, account, partition),),
                max_session_seconds=CI_SESSION_SECONDS,
            )
        )
    return [runner], roles
