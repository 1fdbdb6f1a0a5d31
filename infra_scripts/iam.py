"""IAM roles and least-privilege policies for EMR, the Glue crawlers and the Dagster deployment.

The hand-built set-up granted ``s3:*``, ``glue:*`` and ``iam:*``. Here every statement names its
actions, scopes S3 to the lake bucket's prefixes and Glue to the ``car_rental_db`` database, and
carries a ``Sid``; the comment above each statement says why it is needed.

The roles and policies named below are owned by this script: a run makes them match the
documents here exactly, so inline or attached policies that someone added by hand (the seeds'
``s3:*``) are removed, and a changed document becomes a new default policy version.

    python -m infra_scripts.iam --region eu-west-1 --bucket my-lake [--dry-run]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

from car_rental_platform.aws_names import (
    EMR_INSTANCE_PROFILE,
    EMR_INSTANCE_ROLE,
    EMR_SERVICE_ROLE,
    GLUE_CRAWLER_ROLE,
    LEGACY_INSTANCE_PROFILES,
    PIPES_PREFIX,
    PROJECT,
    PROJECT_TAG_KEY,
    PROJECT_TAGS,
    role_arn,
)
from infra_scripts.common import (
    AwsContext,
    Plan,
    SetupError,
    add_catalog_arguments,
    add_common_arguments,
    add_kms_argument,
    cli_main,
    get_or_none,
    new_parser,
    policy_json,
    resolve_kms_key_arn,
    same_policy,
)
from spark_jobs.contract import DATABASE, Zone

DAGSTER_RUNNER_POLICY = f"{PROJECT}-dagster-runner"
"""Customer managed policy for whatever principal runs the Dagster deployment."""
DAGSTER_RUNNER_ROLE = f"{PROJECT}-dagster-runner"
"""Optional role with ``DAGSTER_RUNNER_POLICY``, created when a trusted principal is given."""
GITHUB_ACTIONS_ROLE = f"{PROJECT}-github-actions"
"""Role the CI workflow (.github/workflows/aws-materialize.yml) assumes through GitHub's OIDC."""
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"
"""The audience configure-aws-credentials asks GitHub's token for."""
CI_SESSION_SECONDS = 6 * 3600
"""The workflow's timeout (360 minutes): its credentials must not expire before the job does."""
EMR_CLEANUP_SERVICE_ROLE = "AWSServiceRoleForEMRCleanup"
"""Service-linked role EMR creates with the first cluster of an account (it needs the caller's
``iam:CreateServiceLinkedRole``)."""
EMR_SERVICE_NAMES = ("elasticmapreduce.amazonaws.com", "elasticmapreduce.amazonaws.com.cn")

EMR_SERVICE_MANAGED_POLICY = "service-role/AmazonEMRServicePolicy_v2"
"""AWS's scoped (v2) EMR service policy.

Acceptable although AWS-managed: unlike the deprecated ``AmazonElasticMapReduceRole`` it only
creates or changes EC2 resources tagged ``for-use-with-amazon-emr-managed-policies=true``, has no
S3 access at all, and AWS keeps it current with EMR's needs, which we could not do by hand.
Consequences: clusters must be launched with that tag (``aws_names.cluster_tags``) in a subnet
and VPC carrying it, and its ``iam:PassRole`` covers only ``EMR_EC2_DefaultRole``, so the service
role also gets a small inline policy to pass our own instance role.
"""
INSTANCE_READ_PREFIXES = (Zone.SCRIPTS.value, Zone.RAW.value)
INSTANCE_WRITE_PREFIXES = (Zone.PROCESSED.value, Zone.KPI.value, Zone.LOGS.value, PIPES_PREFIX)
CRAWLED_READ_PREFIXES = (Zone.PROCESSED.value, Zone.KPI.value, Zone.ANALYSES.value)
RUNNER_PREFIXES = (*(zone.value for zone in Zone), PIPES_PREFIX)
DEFAULT_LANDING_PREFIX = "landing"
"""Where the marketplace drops its CSV exports (S3Landing's default, CAR_RENTAL_LANDING_PREFIX)."""

# Object-level actions of a writer: Spark commits by put + delete and uploads big files in parts.
_OBJECT_WRITE_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
_GLUE_READ_ACTIONS = [
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
]


# --- policy documents (pure) ----------------------------------------------------------------


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


def _kms_statements(kms_key_arn: str | None, *, write: bool) -> list[dict[str, Any]]:
    # With SSE-KMS every object read needs Decrypt and every write GenerateDataKey on that key.
    if not kms_key_arn:
        return []
    actions = ["kms:Decrypt", "kms:GenerateDataKey"] if write else ["kms:Decrypt"]
    return [allow("UseLakeKmsKey", actions, [kms_key_arn])]


def emr_service_pass_role_policy(account: str, partition: str = "aws") -> dict[str, Any]:
    """Inline addition to the EMR service role: pass *our* instance role to EC2.

    ``AmazonEMRServicePolicy_v2`` only allows passing ``EMR_EC2_DefaultRole``.
    """
    return policy(
        allow(
            "PassInstanceRoleToEc2",
            ["iam:PassRole"],
            [role_arn(EMR_INSTANCE_ROLE, account, partition)],
            {"StringLike": {"iam:PassedToService": "ec2.amazonaws.com*"}},
        )
    )


def emr_instance_policy(
    bucket: str, *, partition: str = "aws", kms_key_arn: str | None = None
) -> dict[str, Any]:
    """What Spark steps on the cluster may do: read code and raw data, write outputs and logs."""
    prefixes = (*INSTANCE_READ_PREFIXES, *INSTANCE_WRITE_PREFIXES)
    return policy(
        # Steps run the uploaded scripts and read the raw CSV exports; they never change them.
        allow(
            "ReadCodeAndRawZone",
            ["s3:GetObject"],
            prefix_arns(bucket, INSTANCE_READ_PREFIXES, partition),
        ),
        # Steps write processed and KPI Parquet, EMR pushes its logs, Pipes exchanges messages.
        allow(
            "ReadWriteOutputsLogsAndPipes",
            _OBJECT_WRITE_ACTIONS,
            prefix_arns(bucket, INSTANCE_WRITE_PREFIXES, partition),
        ),
        # Spark lists directories before reading and writing; only under the prefixes above.
        allow(
            "ListLakePrefixes",
            ["s3:ListBucket"],
            [bucket_arn(bucket, partition)],
            list_prefix_condition(prefixes),
        ),
        # EMRFS resolves the bucket's region before its first request.
        allow("LocateLakeBucket", ["s3:GetBucketLocation"], [bucket_arn(bucket, partition)]),
        *_kms_statements(kms_key_arn, write=True),
    )


def glue_crawler_policy(
    bucket: str,
    *,
    region: str,
    account: str,
    database: str = DATABASE,
    partition: str = "aws",
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """The crawlers' inline policy, replacing ``AWSGlueServiceRole`` (S3 and Glue on ``*``)."""
    catalog = glue_catalog_arns(region, account, database, partition)
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/crawlers*"
    return policy(
        # Crawlers sample files to infer schemas; they never write to the lake.
        allow(
            "ReadCrawledZones",
            ["s3:GetObject"],
            prefix_arns(bucket, CRAWLED_READ_PREFIXES, partition),
        ),
        allow(
            "ListCrawledZones",
            ["s3:ListBucket"],
            [bucket_arn(bucket, partition)],
            list_prefix_condition(CRAWLED_READ_PREFIXES),
        ),
        allow("LocateLakeBucket", ["s3:GetBucketLocation"], [bucket_arn(bucket, partition)]),
        # Crawlers create, update and (DEPRECATE_IN_DATABASE) mark tables of this database only.
        allow(
            "MaintainProjectTables",
            [
                *_GLUE_READ_ACTIONS,
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:DeleteTable",
                "glue:BatchDeleteTable",
                "glue:CreatePartition",
                "glue:BatchCreatePartition",
                "glue:UpdatePartition",
                "glue:BatchUpdatePartition",
                "glue:DeletePartition",
                "glue:BatchDeletePartition",
            ],
            catalog,
        ),
        # Crawler runs log to CloudWatch under /aws-glue/crawlers; nowhere else.
        allow(
            "WriteCrawlerLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group, f"{log_group}:log-stream:*"],
        ),
        *_kms_statements(kms_key_arn, write=False),
    )


def dagster_runner_policy(
    bucket: str,
    *,
    region: str,
    account: str,
    database: str = DATABASE,
    crawler_prefix: str = PROJECT,
    workgroup: str = PROJECT,
    landing_prefix: str = DEFAULT_LANDING_PREFIX,
    partition: str = "aws",
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """What the Dagster deployment may do: lake I/O, EMR steps, crawlers, catalog and Athena.

    Every action is one that the AWS resources call (``car_rental_platform/resources/aws``) or
    that Athena performs with the caller's permissions; tests/aws/test_iam_runner_operations.py
    holds the list of calls and checks it against this document and the resources' source.
    """
    landing = landing_prefix.strip("/")
    if not landing:
        raise SetupError(
            "the landing prefix must not be empty: the runner's read access to the exports is "
            "scoped to it (land them under a prefix such as landing/)"
        )
    emr_cluster = f"arn:{partition}:elasticmapreduce:{region}:{account}:cluster/*"
    tag_key = f"elasticmapreduce:ResourceTag/{PROJECT_TAG_KEY}"
    request_tag_key = f"elasticmapreduce:RequestTag/{PROJECT_TAG_KEY}"
    catalog = glue_catalog_arns(region, account, database, partition)
    glue_base = f"arn:{partition}:glue:{region}:{account}"
    database_arn = f"{glue_base}:database/{database}"
    crawlers = f"{glue_base}:crawler/{crawler_prefix}-*"
    return policy(
        # Assets land raw files, read outputs, upload code, read EMR logs and Athena results.
        allow(
            "ReadWriteLakeZones",
            _OBJECT_WRITE_ACTIONS,
            prefix_arns(bucket, RUNNER_PREFIXES, partition),
        ),
        allow(
            "ListLakeZones",
            ["s3:ListBucket"],
            [bucket_arn(bucket, partition)],
            list_prefix_condition(RUNNER_PREFIXES),
        ),
        # The landing sensor lists the exports and the raw assets download them; read only.
        allow("ReadLandedExports", ["s3:GetObject"], prefix_arns(bucket, [landing], partition)),
        allow(
            "ListLandedExports",
            ["s3:ListBucket"],
            [bucket_arn(bucket, partition)],
            list_prefix_condition([landing]),
        ),
        # Athena checks the region of the result bucket before writing query results.
        allow("LocateLakeBucket", ["s3:GetBucketLocation"], [bucket_arn(bucket, partition)]),
        # Transient clusters may be created, but only tagged as this project's.
        allow(
            "CreateProjectClusters",
            ["elasticmapreduce:RunJobFlow"],
            ["*"],
            {"StringEquals": {request_tag_key: PROJECT}},
        ),
        # ListClusters has no resource type: it is how a cluster is found by name.
        allow("FindClusters", ["elasticmapreduce:ListClusters"], ["*"]),
        # Steps are submitted, watched, cancelled; clusters priced and terminated: this
        # project's only.
        allow(
            "OperateProjectClusters",
            [
                "elasticmapreduce:AddJobFlowSteps",
                "elasticmapreduce:DescribeCluster",
                "elasticmapreduce:ListInstanceGroups",
                "elasticmapreduce:DescribeStep",
                "elasticmapreduce:CancelSteps",
                "elasticmapreduce:TerminateJobFlows",
            ],
            [emr_cluster],
            {"StringEquals": {tag_key: PROJECT}},
        ),
        # RunJobFlow passes the service role to EMR and the instance role to EC2 (AWS's
        # AmazonEMRFullAccessPolicy_v2 conditions them so); no other role, to no other service.
        allow(
            "PassEmrServiceRoleToEmr",
            ["iam:PassRole"],
            [role_arn(EMR_SERVICE_ROLE, account, partition)],
            {"StringLike": {"iam:PassedToService": "elasticmapreduce.amazonaws.com*"}},
        ),
        allow(
            "PassEmrInstanceRoleToEc2",
            ["iam:PassRole"],
            [role_arn(EMR_INSTANCE_ROLE, account, partition)],
            {"StringLike": {"iam:PassedToService": "ec2.amazonaws.com*"}},
        ),
        # Tags given to RunJobFlow are authorized as AddTags; only with the project tag.
        allow(
            "TagProjectClusters",
            ["elasticmapreduce:AddTags"],
            [emr_cluster],
            {"StringEquals": {request_tag_key: PROJECT}},
        ),
        # Transient clusters carry an idle auto-termination policy, set during RunJobFlow. The
        # action knows no condition key usable at launch (the cluster has no tags yet to test).
        allow(
            "SetAutoTerminationOfClusters",
            ["elasticmapreduce:PutAutoTerminationPolicy"],
            [emr_cluster],
        ),
        # The first cluster of an account creates EMR's cleanup service-linked role.
        allow(
            "CreateEmrCleanupServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [emr_cleanup_role_arn(account, partition)],
            {"StringLike": {"iam:AWSServiceName": list(EMR_SERVICE_NAMES)}},
        ),
        # Creating or updating a crawler hands it the crawler role.
        allow(
            "PassCrawlerRoleToGlue",
            ["iam:PassRole"],
            [role_arn(GLUE_CRAWLER_ROLE, account, partition)],
            {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}},
        ),
        # The catalog assets update, start, stop and wait for the project's crawlers.
        allow(
            "RunProjectCrawlers",
            ["glue:StartCrawler", "glue:StopCrawler", "glue:GetCrawler", "glue:UpdateCrawler"],
            [crawlers],
        ),
        # CreateCrawler has no resource type (AWS authorizes it on "*" only); its condition key
        # aws:RequestTag limits it to crawlers created with the project tag.
        allow(
            "CreateProjectCrawlers",
            ["glue:CreateCrawler"],
            ["*"],
            {"StringEquals": {f"aws:RequestTag/{PROJECT_TAG_KEY}": PROJECT}},
        ),
        # The catalog and the IO manager create the database when it is missing.
        allow(
            "CreateProjectDatabase", ["glue:CreateDatabase"], [f"{glue_base}:catalog", database_arn]
        ),
        # Crawlers and the database are created with the project tag: Glue authorizes tags given
        # on create as TagResource on the new resource.
        allow(
            "TagProjectDatabaseAndCrawlers",
            ["glue:TagResource"],
            [database_arn, crawlers],
        ),
        # Athena reads table definitions with the caller's permissions; the catalog assets list
        # the zone's tables around a crawl.
        allow("ReadProjectCatalog", _GLUE_READ_ACTIONS, catalog),
        # The Athena IO manager registers the tables it writes and keeps their partitions in step
        # with the folders present (stale ones deleted); drop_table deletes a table.
        allow(
            "WriteProjectTables",
            [
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:DeleteTable",
                "glue:BatchCreatePartition",
                "glue:BatchDeletePartition",
            ],
            catalog,
        ),
        # Without a configured crawler role ARN, the catalog builds it from the account id.
        # (AWS requires no permission for GetCallerIdentity; granted so the policy lists it.)
        allow("IdentifyAccount", ["sts:GetCallerIdentity"], ["*"]),
        # Queries run in the project's workgroup, whose result location is enforced.
        allow(
            "QueryProjectWorkgroup",
            [
                "athena:StartQueryExecution",
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:StopQueryExecution",
                "athena:GetWorkGroup",
            ],
            [f"arn:{partition}:athena:{region}:{account}:workgroup/{workgroup}"],
        ),
        *_kms_statements(kms_key_arn, write=True),
    )


# --- desired state --------------------------------------------------------------------------


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


def managed_policy_arn(name: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:policy/{name}"


# --- apply (boto3) --------------------------------------------------------------------------

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


# --- CLI ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runner-principal-arn",
        default=None,
        help=f"also create role {DAGSTER_RUNNER_ROLE} with the runner policy, "
        "assumable by this principal (the Dagster deployment's role or user ARN)",
    )
    parser.add_argument(
        "--github-repository",
        default=None,
        metavar="OWNER/REPO",
        help=f"also create role {GITHUB_ACTIONS_ROLE} with the runner policy for the CI "
        "workflow, assumable through GitHub's OIDC provider (created if missing) by this "
        "repository's workflows on --github-branch only",
    )
    parser.add_argument(
        "--github-branch",
        default="main",
        help="the one branch whose workflows may assume the CI role (default: %(default)s)",
    )
    parser.add_argument(
        "--landing-prefix",
        default=DEFAULT_LANDING_PREFIX,
        help="key prefix the CSV exports land under, which the runner may read "
        "(CAR_RENTAL_LANDING_PREFIX; default: %(default)s)",
    )


def run(args: argparse.Namespace, ctx: AwsContext, plan: Plan) -> None:
    iam = ctx.client("iam")
    policies, roles = desired_state(
        bucket=args.bucket,
        region=ctx.region,
        account=ctx.account_id,
        partition=ctx.partition,
        database=args.database,
        crawler_prefix=args.crawler_prefix,
        workgroup=args.workgroup,
        landing_prefix=args.landing_prefix,
        kms_key_arn=resolve_kms_key_arn(ctx, args.kms_key_id),
        runner_principal_arn=args.runner_principal_arn,
        github_repository=args.github_repository,
        github_branch=args.github_branch,
    )
    if args.github_repository:
        ensure_github_oidc_provider(iam, plan, account=ctx.account_id, partition=ctx.partition)
    for spec in policies:
        ensure_managed_policy(iam, plan, spec, account=ctx.account_id, partition=ctx.partition)
    for role in roles:
        ensure_role(iam, plan, role)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    add_common_arguments(parser)
    add_catalog_arguments(parser)
    add_kms_argument(parser)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, build_parser(), run)


if __name__ == "__main__":
    raise SystemExit(main())
