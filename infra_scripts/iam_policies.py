"""The project's least-privilege permission policies: EMR instances, Glue crawlers, Dagster runner.

The hand-built set-up granted ``s3:*``, ``glue:*`` and ``iam:*``. Here every statement names its
actions, scopes S3 to the lake bucket's prefixes and Glue to the ``car_rental_db`` database, and
carries a ``Sid``; the comment above each statement says why it is needed.
"""

from __future__ import annotations

from typing import Any

from car_rental_platform.aws_names import (
    EMR_INSTANCE_ROLE,
    EMR_SERVICE_ROLE,
    GLUE_CRAWLER_ROLE,
    PIPES_PREFIX,
    PROJECT,
    PROJECT_TAG_KEY,
    role_arn,
)
from infra_scripts.common import SetupError
from infra_scripts.iam_documents import (
    allow,
    bucket_arn,
    emr_cleanup_role_arn,
    glue_catalog_arns,
    list_prefix_condition,
    policy,
    prefix_arns,
)
from spark_jobs.contract import DATABASE, Zone

EMR_SERVICE_NAMES = ("elasticmapreduce.amazonaws.com", "elasticmapreduce.amazonaws.com.cn")

INSTANCE_READ_PREFIXES = (Zone.SCRIPTS.value, Zone.RAW.value)
INSTANCE_WRITE_PREFIXES = (
    Zone.PROCESSED.value,
    Zone.KPI.value,
    Zone.STAGING.value,  # tables written aside, checked, then moved into place
    Zone.LOGS.value,
    PIPES_PREFIX,
)
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
        # Steps stage and publish processed and KPI Parquet, EMR pushes its logs, Pipes
        # exchanges messages.
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
        # Steps are submitted, watched, cancelled; clusters priced, given their idle
        # auto-termination policy right after launch, and terminated: this project's only.
        allow(
            "OperateProjectClusters",
            [
                "elasticmapreduce:AddJobFlowSteps",
                "elasticmapreduce:DescribeCluster",
                "elasticmapreduce:ListInstanceGroups",
                "elasticmapreduce:DescribeStep",
                "elasticmapreduce:CancelSteps",
                "elasticmapreduce:PutAutoTerminationPolicy",
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
