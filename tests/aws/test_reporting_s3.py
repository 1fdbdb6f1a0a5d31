"""The job side of Pipes on EMR: messages go to S3 with a client in the runner's region."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from dagster_pipes import (
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    encode_param,
)

from spark_jobs import reporting
from tests.aws.support import AwsEnv, object_bytes, object_keys

OTHER_REGION = "eu-west-1"


def test_the_jobs_s3_client_uses_the_region_the_runner_sends(
    aws_env: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's default region is us-east-1, so a client without the sent region would differ."""
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    context = {
        "asset_keys": ["kpi/daily_metrics"],
        "code_version_by_asset_key": None,
        "provenance_by_asset_key": None,
        "partition_key": None,
        "partition_key_range": None,
        "partition_time_window": None,
        "run_id": "run-1",
        "job_name": None,
        "retry_number": 0,
        "extras": {},
    }
    messages = {
        "bucket": aws_env.bucket,
        "key_prefix": "dagster_pipes/run-1/x",
        "region": OTHER_REGION,
    }
    monkeypatch.setenv(DAGSTER_PIPES_CONTEXT_ENV_VAR, encode_param({"data": context}))
    monkeypatch.setenv(DAGSTER_PIPES_MESSAGES_ENV_VAR, encode_param(messages))
    regions: list[str] = []
    client = boto3.client

    def recording_client(*args: Any, **kwargs: Any) -> Any:
        made = client(*args, **kwargs)
        regions.append(made.meta.region_name)
        return made

    monkeypatch.setattr(boto3, "client", recording_client)

    with reporting.open_reporter() as reporter:
        reporter.report("kpi/daily_metrics", {"row_count": 3})

    assert regions == [OTHER_REGION]
    (key,) = object_keys(aws_env.bucket, "dagster_pipes/run-1/x/")
    methods = [
        json.loads(line)["method"] for line in object_bytes(aws_env.bucket, key).splitlines()
    ]
    assert "report_asset_materialization" in methods
