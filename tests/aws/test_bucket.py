"""bucket.py against moto: region handling, KMS encryption, lifecycle merge, TLS-only policy.

moto ignores the ``aws:SecureTransport`` condition of the TLS-only statement and treats it as a
deny of every object request; the policy itself is checked, and object-touching runs skip it.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from infra_scripts import bucket
from infra_scripts.common import Plan
from tests.aws.support import AwsEnv, changed_lines

NO_TLS = "--skip-tls-policy"


def _bucket_main(aws_env: AwsEnv, *extra: str, region: str | None = None) -> int:
    return bucket.main([*aws_env.cli_args(region), *extra])


def test_bucket_outside_us_east_1_gets_its_location_constraint(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bucket_main(aws_env, NO_TLS, region="eu-west-1") == 0
    assert _bucket_main(aws_env, NO_TLS, region="eu-west-1") == 0

    out = capsys.readouterr().out
    assert out.count("create           s3 bucket") == 1
    location = aws_env.client("s3").get_bucket_location(Bucket=aws_env.bucket)
    assert location["LocationConstraint"] == "eu-west-1"


def test_bucket_in_another_region_is_an_error(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)

    assert _bucket_main(aws_env, NO_TLS, region="eu-west-1") == 1
    assert "is in us-east-1, not eu-west-1" in capsys.readouterr().err


def test_kms_key_alias_gives_sse_kms_with_the_key_arn(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    kms = aws_env.client("kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/car-rental-lake", TargetKeyId=key_arn)

    for _ in range(2):
        assert _bucket_main(aws_env, NO_TLS, "--kms-key-id", "alias/car-rental-lake") == 0
    second = capsys.readouterr().out.split("change(s) made")[-1]

    assert "s3 default encryption" not in "".join(changed_lines(second))
    config = aws_env.client("s3").get_bucket_encryption(Bucket=aws_env.bucket)
    (rule,) = config["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    assert rule["BucketKeyEnabled"] is True


def test_lifecycle_keeps_other_rules_and_follows_the_days_option(aws_env: AwsEnv) -> None:
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket=aws_env.bucket)
    foreign = {"ID": "keep-me", "Filter": {"Prefix": "raw/"}, "Status": "Enabled"}
    s3.put_bucket_lifecycle_configuration(
        Bucket=aws_env.bucket,
        LifecycleConfiguration={"Rules": [foreign | {"Expiration": {"Days": 400}}]},
    )

    assert _bucket_main(aws_env, NO_TLS, "--athena-results-days", "7") == 0
    rules = {
        r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=aws_env.bucket)["Rules"]
    }
    assert set(rules) == {"keep-me", bucket.ATHENA_RESULTS_RULE_ID, bucket.ABORT_UPLOADS_RULE_ID}
    assert rules[bucket.ATHENA_RESULTS_RULE_ID]["Expiration"] == {"Days": 7}

    assert _bucket_main(aws_env, NO_TLS, "--athena-results-days", "0") == 0
    rules = {
        r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=aws_env.bucket)["Rules"]
    }
    assert set(rules) == {"keep-me", bucket.ABORT_UPLOADS_RULE_ID}


def test_versioning_is_turned_on_once(aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert _bucket_main(aws_env, NO_TLS, "--versioning") == 0
    assert _bucket_main(aws_env, NO_TLS, "--versioning") == 0

    assert capsys.readouterr().out.count("update           s3 versioning") == 1
    versioning = aws_env.client("s3").get_bucket_versioning(Bucket=aws_env.bucket)
    assert versioning["Status"] == "Enabled"


def test_tls_only_statement_is_merged_into_the_bucket_policy(aws_env: AwsEnv) -> None:
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket=aws_env.bucket)
    reader = {
        "Sid": "AnalyticsAccountReads",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{aws_env.bucket}/kpi/*",
    }
    s3.put_bucket_policy(
        Bucket=aws_env.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [reader]})
    )

    first, second = Plan(dry_run=False), Plan(dry_run=False)
    bucket.ensure_tls_policy(s3, first, aws_env.bucket, "aws", exists=True)
    bucket.ensure_tls_policy(s3, second, aws_env.bucket, "aws", exists=True)

    assert [a.verb for a in first.actions] == ["update"]
    assert second.changes == []
    statements = json.loads(s3.get_bucket_policy(Bucket=aws_env.bucket)["Policy"])["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert set(by_sid) == {"AnalyticsAccountReads", bucket.TLS_STATEMENT_SID}
    assert by_sid[bucket.TLS_STATEMENT_SID]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    # moto evaluates the Deny without its condition: even this signed request is refused.
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket=aws_env.bucket, Key="raw/x.csv", Body=b"x")
