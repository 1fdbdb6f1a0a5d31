"""Names and settings shared by the code location's AWS resources and the set-up scripts.

The runtime (``car_rental_platform.resources.aws``) and ``infra_scripts`` must agree on role and
profile names, tags, crawler settings, the transient cluster's request and the Pipes prefix.
They live here, in the code location, so that ``infra_scripts`` depends on the code location and
never the other way round (tests/test_layering.py holds the code location to that).
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.client import BaseClient

from car_rental_platform.code_bundle import BOOTSTRAP_PYTHON, bootstrap_uri, wheels_uri
from spark_jobs.contract import DATABASE, Zone

# --- project, tags, roles ---------------------------------------------------------------

PROJECT = "car-rental"
"""Name prefix of every resource the project owns, and the value of the ``project`` tag."""
PROJECT_TAG_KEY = "project"
PROJECT_TAGS: dict[str, str] = {PROJECT_TAG_KEY: PROJECT}

EMR_SERVICE_ROLE = f"{PROJECT}-emr-service-role"
"""Role EMR assumes to launch and manage the cluster's EC2 resources (``ServiceRole``)."""
EMR_INSTANCE_ROLE = f"{PROJECT}-emr-ec2-role"
"""Role of the cluster's EC2 instances: what Spark steps may touch."""
EMR_INSTANCE_PROFILE = EMR_INSTANCE_ROLE
"""Instance profile wrapping ``EMR_INSTANCE_ROLE`` (``JobFlowRole`` of ``run_job_flow``).

Named like its role: EMR documents that a profile named otherwise fails at launch with
"invalid instance profile".
"""
LEGACY_INSTANCE_PROFILES = (f"{PROJECT}-emr-ec2-profile",)
"""Profile names earlier versions created for ``EMR_INSTANCE_ROLE``; a run removes them."""
GLUE_CRAWLER_ROLE = f"{PROJECT}-glue-crawler-role"

EMR_MANAGED_TAG = {"for-use-with-amazon-emr-managed-policies": "true"}

PIPES_PREFIX = "dagster_pipes"
"""Prefix where Dagster Pipes exchanges context and messages with EMR steps."""


def role_arn(name: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{name}"


# --- Glue crawlers ---------------------------------------------------------------------

CRAWLED_ZONES: tuple[Zone, ...] = (Zone.PROCESSED, Zone.KPI)
"""Zones whose tables are catalogued. Raw CSVs are read by Spark only; analyses are SQL results."""

SPARK_BOOKKEEPING_EXCLUSIONS = ["**/_SUCCESS", "**/_temporary/**", "**_$folder$"]
"""Marker and scratch files of Spark/EMRFS commits: not data, and they confuse classifiers."""

SCHEMA_CHANGE_POLICY = {
    # Columns added by a new job version reach Athena without a manual step.
    "UpdateBehavior": "UPDATE_IN_DATABASE",
    # A table whose folder vanished (e.g. a failed overwrite) is only marked deprecated: deleting
    # it would break every query and view on it, and the next good run restores it.
    "DeleteBehavior": "DEPRECATE_IN_DATABASE",
}
RECRAWL_POLICY = {"RecrawlBehavior": "CRAWL_EVERYTHING"}
"""Jobs overwrite whole tables, so "new folders only" would miss changed files."""


def crawler_name(zone: str, prefix: str = PROJECT) -> str:
    """``<prefix>-<zone>-crawler``, e.g. ``car-rental-processed-crawler``."""
    return f"{prefix}-{zone}-crawler"


def crawler_names(prefix: str = PROJECT) -> dict[Zone, str]:
    """Crawler name per crawled zone: what the Dagster catalog assets start."""
    return {zone: crawler_name(zone.value, prefix) for zone in CRAWLED_ZONES}


def crawler_configuration(zone: str) -> dict[str, Any]:
    """The crawler's ``Configuration`` JSON (as a dict).

    ``TableLevelConfiguration`` pins tables to ``<zone>/<table>/`` (level 1 is the zone folder):
    without it a crawler merges sibling folders with similar schemas into one table with a
    partition column, which CombineCompatibleSchemas makes even more likely. Within a table,
    CombineCompatibleSchemas then keeps partition folders with slightly different files together.
    """
    return {
        "Version": 1.0,
        "Grouping": {
            "TableGroupingPolicy": "CombineCompatibleSchemas",
            "TableLevelConfiguration": len(zone.strip("/").split("/")) + 1,
        },
        "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
    }


def crawler_settings(
    bucket: str, zone: str, *, role: str, database: str = DATABASE
) -> dict[str, Any]:
    """Everything of a crawler that this script manages, as ``create_crawler`` arguments."""
    return {
        "Role": role,
        "DatabaseName": database,
        "Description": f"Catalogues s3://{bucket}/{zone}/ into {database}, one table per folder",
        "Targets": {
            "S3Targets": [
                {"Path": f"s3://{bucket}/{zone}/", "Exclusions": SPARK_BOOKKEEPING_EXCLUSIONS}
            ]
        },
        "SchemaChangePolicy": SCHEMA_CHANGE_POLICY,
        "RecrawlPolicy": RECRAWL_POLICY,
        "Configuration": json.dumps(crawler_configuration(zone)),
        "TablePrefix": "",
    }


def _role_name(role: str) -> str:
    """Glue may echo a role as a name, a path or an ARN; they name the same role."""
    return role.rsplit("/", 1)[-1]


def crawler_differences(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """Names of the managed fields where the crawler differs from ``desired``."""
    differences = []
    if _role_name(current.get("Role", "")) != _role_name(desired["Role"]):
        differences.append("Role")
    for key in ("DatabaseName", "Description", "SchemaChangePolicy", "RecrawlPolicy"):
        if current.get(key) != desired[key]:
            differences.append(key)
    if current.get("TablePrefix", "") != desired["TablePrefix"]:
        differences.append("TablePrefix")
    current_targets = [
        (t.get("Path"), sorted(t.get("Exclusions", [])))
        for t in current.get("Targets", {}).get("S3Targets", [])
    ]
    desired_targets = [
        (t["Path"], sorted(t["Exclusions"])) for t in desired["Targets"]["S3Targets"]
    ]
    if current_targets != desired_targets:
        differences.append("Targets")
    current_config = json.loads(current.get("Configuration") or "{}")
    if current_config != json.loads(desired["Configuration"]):
        differences.append("Configuration")
    return differences


# --- EMR clusters ----------------------------------------------------------------------

DEFAULT_RELEASE_LABEL = "emr-7.5.0"
ACTIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
DEFAULT_PYSPARK_PYTHON = f"/usr/bin/python{BOOTSTRAP_PYTHON}"
"""EMR 7's default ``python3`` is 3.9; dagster-pipes and ``contract.py`` (StrEnum) need 3.10+."""
SYSTEM_PYTHON = re.compile(r"/usr/bin/python(?P<version>3\.\d+)")
"""An interpreter the bootstrap action can install: Amazon Linux's ``python3.X`` package."""


def cluster_tags() -> list[dict[str, str]]:
    """The project tag (the runner policy only operates tagged clusters) and the EMR v2 tag."""
    return [{"Key": k, "Value": v} for k, v in {**PROJECT_TAGS, **EMR_MANAGED_TAG}.items()]


def log_uri(bucket: str) -> str:
    return f"s3://{bucket}/{Zone.LOGS.value}/emr/"


def console_url(region: str, cluster_id: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/emr/home?region={region}"
        f"#/clusterDetails/{cluster_id}"
    )


def python_bootstrap_action(
    bucket: str,
    pyspark_python: str | None,
    scripts_prefix: str = Zone.SCRIPTS.value,
    region: str | None = None,
) -> dict[str, Any] | None:
    """The bootstrap action installing ``pyspark_python`` on every node, if it is a system one.

    Its arguments: the Python version, the S3 folder of the pinned wheels it installs offline
    and, when known, the bucket's region (for the node's ``aws s3 cp``, which must not depend on
    a default region or a redirect through another region's endpoint in a private subnet).
    None when PySpark keeps EMR's own interpreter, or is pointed at one the package manager
    cannot provide (e.g. a custom image's): there is nothing the script could install.
    """
    match = SYSTEM_PYTHON.fullmatch(pyspark_python or "")
    if match is None:
        return None
    version = match["version"]
    args = [version, wheels_uri(bucket, scripts_prefix), *([region] if region else [])]
    return {
        "Name": f"install-python{version}",
        "ScriptBootstrapAction": {"Path": bootstrap_uri(bucket, scripts_prefix), "Args": args},
    }


def run_job_flow_request(
    *,
    name: str,
    bucket: str,
    release_label: str = DEFAULT_RELEASE_LABEL,
    master_instance_type: str = "m5.xlarge",
    core_instance_type: str = "m5.xlarge",
    core_count: int = 2,
    step_concurrency: int = 2,
    subnet_id: str | None = None,
    key_name: str | None = None,
    pyspark_python: str | None = DEFAULT_PYSPARK_PYTHON,
    idle_timeout_minutes: int = 0,
    install_python: bool = True,
    scripts_prefix: str = Zone.SCRIPTS.value,
    region: str | None = None,
) -> dict[str, Any]:
    """``run_job_flow`` arguments of the long-running cluster (pure, so tests can read them).

    With ``install_python`` (the default) every node first runs ``emr_bootstrap.sh`` from
    ``s3://<bucket>/<scripts_prefix>/bootstrap/<digest>/`` to install ``pyspark_python`` and the
    pinned wheels beside it; the folder must be uploaded before the cluster starts
    (``upload_code``, or ``create``). ``region`` is the bucket's (and the cluster's).
    """
    instances: dict[str, Any] = {
        "InstanceGroups": [
            {
                "Name": "primary",
                "InstanceRole": "MASTER",
                "Market": "ON_DEMAND",
                "InstanceType": master_instance_type,
                "InstanceCount": 1,
            },
            {
                "Name": "core",
                "InstanceRole": "CORE",
                "Market": "ON_DEMAND",
                "InstanceType": core_instance_type,
                "InstanceCount": core_count,
            },
        ],
        # Long-running: the cluster waits for the next Dagster run instead of ending.
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    if subnet_id:
        instances["Ec2SubnetId"] = subnet_id
    if key_name:
        instances["Ec2KeyName"] = key_name
    request: dict[str, Any] = {
        "Name": name,
        "ReleaseLabel": release_label,
        "LogUri": log_uri(bucket),
        "Applications": [{"Name": "Spark"}],
        "Instances": instances,
        "ServiceRole": EMR_SERVICE_ROLE,
        "JobFlowRole": EMR_INSTANCE_PROFILE,
        # Independent assets (e.g. several KPI tables) run as parallel steps.
        "StepConcurrencyLevel": step_concurrency,
        "VisibleToAllUsers": True,
        "Tags": cluster_tags(),
    }
    if pyspark_python:
        python_env = {"PYSPARK_PYTHON": pyspark_python, "PYSPARK_DRIVER_PYTHON": pyspark_python}
        request["Configurations"] = [
            {
                "Classification": "spark-env",
                "Configurations": [{"Classification": "export", "Properties": python_env}],
            }
        ]
    bootstrap = python_bootstrap_action(bucket, pyspark_python, scripts_prefix, region)
    if install_python and bootstrap is not None:
        request["BootstrapActions"] = [bootstrap]
    if idle_timeout_minutes > 0:
        request["AutoTerminationPolicy"] = auto_termination_policy(idle_timeout_minutes)
    return request


def auto_termination_policy(idle_timeout_minutes: int) -> dict[str, int]:
    """EMR's ``AutoTerminationPolicy``: end the cluster after this long without work."""
    return {"IdleTimeout": idle_timeout_minutes * 60}


def active_clusters(emr: BaseClient, name: str) -> list[str]:
    """Ids of clusters called ``name`` that are starting, running or waiting (newest first)."""
    pages = emr.get_paginator("list_clusters").paginate(ClusterStates=list(ACTIVE_STATES))
    clusters = [c for page in pages for c in page["Clusters"] if c["Name"] == name]
    clusters.sort(key=lambda c: c["Status"]["Timeline"]["CreationDateTime"], reverse=True)
    return [c["Id"] for c in clusters]
