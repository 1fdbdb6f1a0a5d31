"""The lake bucket: encryption, public-access block, TLS-only policy, lifecycle, zone folders.

    python -m infra_scripts.bucket --region eu-west-1 --bucket my-lake [--kms-key-id alias/lake]
        [--versioning] [--athena-results-days 30] [--dry-run]

Versioning is only ever turned on (``--versioning``), never suspended: suspending it on a bucket
that someone versioned on purpose would be a silent loss of protection.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from car_rental_platform.code_bundle import s3_object_exists
from infra_scripts.common import (
    PROJECT,
    AwsContext,
    Plan,
    SetupError,
    add_common_arguments,
    add_kms_argument,
    cli_main,
    error_code,
    get_or_none,
    new_parser,
    resolve_kms_key_arn,
    same_policy,
)
from infra_scripts.iam_documents import bucket_arn
from spark_jobs.contract import Zone

ATHENA_RESULTS_RULE_ID = f"{PROJECT}-expire-athena-results"
ABORT_UPLOADS_RULE_ID = f"{PROJECT}-abort-incomplete-uploads"
ABORT_UPLOADS_AFTER_DAYS = 7
"""Spark on S3 writes big files in parts; a failed step leaves parts that are billed forever."""
TLS_STATEMENT_SID = "DenyInsecureTransport"


# --- desired settings (pure) ----------------------------------------------------------------


def zone_folder_keys() -> list[str]:
    """Zero-byte ``<zone>/`` keys, so that the layout is visible in the console from day one."""
    return [f"{zone.value}/" for zone in Zone]


def encryption_rule(kms_key_arn: str | None = None) -> dict[str, Any]:
    """SSE-S3, or SSE-KMS with an S3 Bucket Key (one KMS call per object would cost more)."""
    if kms_key_arn:
        return {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": kms_key_arn,
            },
            "BucketKeyEnabled": True,
        }
    return {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}


PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def lifecycle_rules(athena_results_days: int) -> list[dict[str, Any]]:
    """This script's lifecycle rules; rules with other IDs on the bucket are left alone."""
    rules: list[dict[str, Any]] = [
        {
            "ID": ABORT_UPLOADS_RULE_ID,
            "Filter": {},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_UPLOADS_AFTER_DAYS},
        }
    ]
    if athena_results_days > 0:
        # Athena writes one result file per query; nobody reads them after the run.
        rules.append(
            {
                "ID": ATHENA_RESULTS_RULE_ID,
                "Filter": {"Prefix": f"{Zone.ATHENA_RESULTS.value}/"},
                "Status": "Enabled",
                "Expiration": {"Days": athena_results_days},
            }
        )
    return rules


def tls_only_statement(bucket: str, partition: str = "aws") -> dict[str, Any]:
    """Deny any request over plain HTTP (AWS Security Hub control S3.5)."""
    arn = bucket_arn(bucket, partition)
    return {
        "Sid": TLS_STATEMENT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _rule_signature(rule: dict[str, Any]) -> tuple[Any, ...]:
    """The parts of a lifecycle rule we set; AWS may echo ``{}`` or ``{"Prefix": ""}`` alike."""
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
    return (
        rule.get("ID"),
        rule.get("Status"),
        prefix,
        rule.get("Expiration", {}).get("Days"),
        rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
    )


def merged_lifecycle(
    current: list[dict[str, Any]], athena_results_days: int
) -> list[dict[str, Any]] | None:
    """The full rule list to put, or None when ours are already in place."""
    ours = lifecycle_rules(athena_results_days)
    owned_ids = {ABORT_UPLOADS_RULE_ID, ATHENA_RESULTS_RULE_ID}
    current_ours = sorted(
        (_rule_signature(r) for r in current if r.get("ID") in owned_ids), key=str
    )
    if current_ours == sorted((_rule_signature(r) for r in ours), key=str):
        return None
    return [r for r in current if r.get("ID") not in owned_ids] + ours


# --- apply (boto3) --------------------------------------------------------------------------


def ensure_bucket(s3: BaseClient, plan: Plan, *, bucket: str, region: str) -> bool:
    """Create the bucket if missing; return whether it exists now (False on a dry run)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error_code(error) in {"403", "AccessDenied"}:
            raise SetupError(
                f"bucket {bucket} exists but is not accessible (another account?)"
            ) from error
        if error_code(error) not in {"404", "NoSuchBucket"}:
            raise
        config = {} if region == "us-east-1" else {"LocationConstraint": region}
        plan.change(
            "create",
            "s3 bucket",
            bucket,
            lambda: s3.create_bucket(
                Bucket=bucket, **({"CreateBucketConfiguration": config} if config else {})
            ),
            detail=region,
        )
        return not plan.dry_run
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    if location != region:
        raise SetupError(f"bucket {bucket} is in {location}, not {region}")
    plan.ok("s3 bucket", bucket, region)
    return True


def ensure_encryption(
    s3: BaseClient, plan: Plan, bucket: str, kms_key_arn: str | None, *, exists: bool
) -> None:
    desired = encryption_rule(kms_key_arn)
    label = "SSE-KMS" if kms_key_arn else "SSE-S3"
    missing = "ServerSideEncryptionConfigurationNotFoundError"
    found = get_or_none(s3.get_bucket_encryption, {missing}, Bucket=bucket) if exists else None
    rules = found["ServerSideEncryptionConfiguration"]["Rules"] if found else []
    current = rules[0] if rules else {}
    if current.get("ApplyServerSideEncryptionByDefault") == desired[
        "ApplyServerSideEncryptionByDefault"
    ] and current.get("BucketKeyEnabled", False) == desired.get("BucketKeyEnabled", False):
        plan.ok("s3 default encryption", bucket, label)
        return
    plan.change(
        "update" if current else "create",
        "s3 default encryption",
        bucket,
        lambda: s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [desired]}
        ),
        detail=label,
    )


def ensure_public_access_block(s3: BaseClient, plan: Plan, bucket: str, *, exists: bool) -> None:
    found = (
        get_or_none(
            s3.get_public_access_block, {"NoSuchPublicAccessBlockConfiguration"}, Bucket=bucket
        )
        if exists
        else None
    )
    if found and found["PublicAccessBlockConfiguration"] == PUBLIC_ACCESS_BLOCK:
        plan.ok("s3 public access block", bucket)
        return
    plan.change(
        "update" if found else "create",
        "s3 public access block",
        bucket,
        lambda: s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
        ),
        detail="all four blocks on",
    )


def ensure_tls_policy(
    s3: BaseClient, plan: Plan, bucket: str, partition: str, *, exists: bool
) -> None:
    """Add the TLS-only statement to the bucket policy, keeping any other statements."""
    found = (
        get_or_none(s3.get_bucket_policy, {"NoSuchBucketPolicy"}, Bucket=bucket) if exists else None
    )
    document = json.loads(found["Policy"]) if found else {"Version": "2012-10-17", "Statement": []}
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    desired = tls_only_statement(bucket, partition)
    current = next((s for s in statements if s.get("Sid") == TLS_STATEMENT_SID), None)
    if current is not None and same_policy(current, desired):
        plan.ok("s3 bucket policy", bucket, TLS_STATEMENT_SID)
        return
    document["Statement"] = [s for s in statements if s.get("Sid") != TLS_STATEMENT_SID]
    document["Statement"].append(desired)
    plan.change(
        "update" if found else "create",
        "s3 bucket policy",
        bucket,
        lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document)),
        detail=TLS_STATEMENT_SID,
    )


def ensure_versioning(s3: BaseClient, plan: Plan, bucket: str, *, exists: bool) -> None:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status") if exists else None
    if status == "Enabled":
        plan.ok("s3 versioning", bucket, "Enabled")
        return
    plan.change(
        "update",
        "s3 versioning",
        bucket,
        lambda: s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        ),
        detail="Enabled",
    )


def ensure_lifecycle(
    s3: BaseClient, plan: Plan, bucket: str, athena_results_days: int, *, exists: bool
) -> None:
    found = (
        get_or_none(
            s3.get_bucket_lifecycle_configuration, {"NoSuchLifecycleConfiguration"}, Bucket=bucket
        )
        if exists
        else None
    )
    rules = merged_lifecycle(found["Rules"] if found else [], athena_results_days)
    detail = (
        f"{Zone.ATHENA_RESULTS.value}/ expire after {athena_results_days} days"
        if athena_results_days > 0
        else "no expiry of athena results"
    )
    if rules is None:
        plan.ok("s3 lifecycle", bucket, detail)
        return
    plan.change(
        "update" if found else "create",
        "s3 lifecycle",
        bucket,
        lambda: s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules}
        ),
        detail=detail,
    )


def ensure_zone_folders(s3: BaseClient, plan: Plan, bucket: str, *, exists: bool) -> None:
    for key in zone_folder_keys():
        uri = f"s3://{bucket}/{key}"
        if exists and s3_object_exists(s3, bucket, key):
            plan.ok("s3 folder", uri)
        else:
            plan.change(
                "create",
                "s3 folder",
                uri,
                lambda key=key: s3.put_object(Bucket=bucket, Key=key, Body=b""),
            )


# --- CLI ------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--versioning", action="store_true", help="turn on object versioning (never turned off)"
    )
    parser.add_argument(
        "--athena-results-days",
        type=int,
        default=30,
        help="expire athena_results/ objects after this many days; 0 keeps them (default: 30)",
    )
    parser.add_argument(
        "--skip-tls-policy",
        action="store_true",
        help="do not add the bucket policy that denies plain-HTTP requests (moto cannot "
        "evaluate its aws:SecureTransport condition and would deny every object request)",
    )


def run(args: argparse.Namespace, ctx: AwsContext, plan: Plan) -> None:
    s3 = ctx.client("s3")
    bucket = args.bucket
    exists = ensure_bucket(s3, plan, bucket=bucket, region=ctx.region)
    ensure_encryption(s3, plan, bucket, resolve_kms_key_arn(ctx, args.kms_key_id), exists=exists)
    ensure_public_access_block(s3, plan, bucket, exists=exists)
    if not args.skip_tls_policy:
        ensure_tls_policy(s3, plan, bucket, ctx.partition, exists=exists)
    if args.versioning:
        ensure_versioning(s3, plan, bucket, exists=exists)
    ensure_lifecycle(s3, plan, bucket, args.athena_results_days, exists=exists)
    ensure_zone_folders(s3, plan, bucket, exists=exists)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(__doc__)
    add_common_arguments(parser)
    add_kms_argument(parser)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, build_parser(), run)


if __name__ == "__main__":
    raise SystemExit(main())
