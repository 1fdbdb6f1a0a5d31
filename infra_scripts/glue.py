"""Glue database, one crawler per crawled lake zone, and the Athena workgroup.

    python -m infra_scripts.glue --region eu-west-1 --bucket my-lake [--crawler-prefix car-rental]
        [--database car_rental_db] [--workgroup car-rental] [--dry-run]

Crawlers and the workgroup are compared field by field with what this script wants and updated
only where they differ. Crawlers have no schedule: the Dagster catalog assets start them after
the Spark steps that write their zone, so tables are refreshed exactly when data changes.
"""

from __future__ import annotations

import argparse
from typing import Any

from botocore.client import BaseClient

from car_rental_platform.aws_names import (
    GLUE_CRAWLER_ROLE,
    PROJECT_TAGS,
    crawler_differences,
    crawler_names,
    crawler_settings,
    role_arn,
)
from infra_scripts.common import (
    AwsContext,
    Plan,
    add_catalog_arguments,
    add_common_arguments,
    add_kms_argument,
    cli_main,
    get_or_none,
    new_parser,
    resolve_kms_key_arn,
    retry_while_iam_propagates,
)
from spark_jobs.contract import Zone


def workgroup_settings(bucket: str, kms_key_arn: str | None = None) -> dict[str, Any]:
    """Workgroup configuration; enforced, so no client can send results elsewhere."""
    encryption: dict[str, str] = (
        {"EncryptionOption": "SSE_KMS", "KmsKey": kms_key_arn}
        if kms_key_arn
        else {"EncryptionOption": "SSE_S3"}
    )
    return {
        "ResultConfiguration": {
            "OutputLocation": f"s3://{bucket}/{Zone.ATHENA_RESULTS.value}/",
            "EncryptionConfiguration": encryption,
        },
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
    }


def workgroup_differences(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    """Names of the managed configuration fields where the workgroup differs."""
    differences = []
    current_results = current.get("ResultConfiguration", {})
    for key in ("OutputLocation", "EncryptionConfiguration"):
        if current_results.get(key) != desired["ResultConfiguration"][key]:
            differences.append(key)
    for key in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled"):
        if current.get(key) != desired[key]:
            differences.append(key)
    return differences


# --- apply (boto3) --------------------------------------------------------------------------


def ensure_database(glue: BaseClient, plan: Plan, database: str) -> None:
    if get_or_none(glue.get_database, {"EntityNotFoundException"}, Name=database):
        plan.ok("glue database", database)
        return
    plan.change(
        "create",
        "glue database",
        database,
        lambda: glue.create_database(
            DatabaseInput={
                "Name": database,
                "Description": "Car-rental lake tables (DESIGN.md 3.4), created by the crawlers",
            },
            Tags=PROJECT_TAGS,
        ),
    )


def ensure_crawler(glue: BaseClient, plan: Plan, name: str, desired: dict[str, Any]) -> None:
    found = get_or_none(glue.get_crawler, {"EntityNotFoundException"}, Name=name)
    target = desired["Targets"]["S3Targets"][0]["Path"]
    if found is None:
        plan.change(
            "create",
            "glue crawler",
            name,
            lambda: retry_while_iam_propagates(
                lambda: glue.create_crawler(Name=name, Tags=PROJECT_TAGS, **desired)
            ),
            detail=target,
        )
        return
    differences = crawler_differences(found["Crawler"], desired)
    if not differences:
        plan.ok("glue crawler", name, target)
        return
    plan.change(
        "update",
        "glue crawler",
        name,
        lambda: retry_while_iam_propagates(lambda: glue.update_crawler(Name=name, **desired)),
        detail=", ".join(differences),
    )


def workgroup_exists(athena: BaseClient, name: str) -> bool:
    """Looked up by listing: a missing workgroup is an InvalidRequestException, like any typo."""
    kwargs: dict[str, str] = {}
    while True:
        page = athena.list_work_groups(**kwargs)
        if any(group["Name"] == name for group in page.get("WorkGroups", [])):
            return True
        if not page.get("NextToken"):
            return False
        kwargs["NextToken"] = page["NextToken"]


def ensure_workgroup(athena: BaseClient, plan: Plan, name: str, desired: dict[str, Any]) -> None:
    location = desired["ResultConfiguration"]["OutputLocation"]
    if not workgroup_exists(athena, name):
        plan.change(
            "create",
            "athena workgroup",
            name,
            lambda: athena.create_work_group(
                Name=name,
                Configuration=desired,
                Description="Car-rental queries; results go to the lake's athena_results/",
                Tags=[{"Key": key, "Value": value} for key, value in PROJECT_TAGS.items()],
            ),
            detail=location,
        )
        return
    current = athena.get_work_group(WorkGroup=name)["WorkGroup"].get("Configuration", {})
    differences = workgroup_differences(current, desired)
    if not differences:
        plan.ok("athena workgroup", name, location)
        return
    plan.change(
        "update",
        "athena workgroup",
        name,
        lambda: athena.update_work_group(
            WorkGroup=name,
            ConfigurationUpdates={
                "ResultConfigurationUpdates": desired["ResultConfiguration"],
                "EnforceWorkGroupConfiguration": desired["EnforceWorkGroupConfiguration"],
                "PublishCloudWatchMetricsEnabled": desired["PublishCloudWatchMetricsEnabled"],
            },
        ),
        detail=", ".join(differences),
    )


# --- CLI ------------------------------------------------------------------------------------


def run(args: argparse.Namespace, ctx: AwsContext, plan: Plan) -> None:
    glue = ctx.client("glue")
    ensure_database(glue, plan, args.database)
    role = role_arn(GLUE_CRAWLER_ROLE, ctx.account_id, ctx.partition)
    for zone, name in crawler_names(args.crawler_prefix).items():
        settings = crawler_settings(args.bucket, zone.value, role=role, database=args.database)
        ensure_crawler(glue, plan, name, settings)
    kms_key_arn = resolve_kms_key_arn(ctx, args.kms_key_id)
    ensure_workgroup(
        ctx.client("athena"), plan, args.workgroup, workgroup_settings(args.bucket, kms_key_arn)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    add_common_arguments(parser)
    add_catalog_arguments(parser)
    add_kms_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, build_parser(), run)


if __name__ == "__main__":
    raise SystemExit(main())
