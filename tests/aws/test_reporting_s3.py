"""The job side of Pipes on EMR (``spark_jobs.reporting``), run as a job runs: its own process,
launched with the step's Pipes parameters, writing its messages to S3 (the moto server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dagster_pipes import (
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    encode_param,
)

from spark_jobs.driver_log import DRIVER_LOG_PARAM
from tests.aws.support import AwsEnv, object_bytes, object_keys

OTHER_REGION = "eu-west-1"
PREFIX = "dagster_pipes/run-1/x"
JOB = """
import os, sys, boto3
regions = []
make_client = boto3.client
def recording_client(*args, **kwargs):
    client = make_client(*args, **kwargs)
    regions.append(client.meta.region_name)
    return client
boto3.client = recording_client
from spark_jobs.reporting import open_reporter
with open_reporter() as reporter:
    reporter.report("kpi/daily_metrics", {"row_count": 3})
    os.write(sys.__stderr__.fileno(), b"Py4JJavaError: no rentals\\n")
    os.write(sys.__stdout__.fileno(), b"stage 3 of 7\\n")
print("S3 client regions:", regions)
"""
CONTEXT = {
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


def _run_job(aws_env: AwsEnv, **messages: Any) -> str:
    """The job in a fresh interpreter (Pipes' context is one per process), as on EMR."""
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    params = {"bucket": aws_env.bucket, "key_prefix": PREFIX, **messages}
    env = {
        **os.environ,
        DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param({"data": CONTEXT}),
        DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param(params),
    }
    done = subprocess.run(
        [sys.executable, "-c", JOB],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def _messages(bucket: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for key in object_keys(bucket, f"{PREFIX}/")
        for line in object_bytes(bucket, key).splitlines()
    ]


def test_the_jobs_s3_client_uses_the_region_the_runner_sends(aws_env: AwsEnv) -> None:
    """moto's default region is us-east-1, so a client without the sent region would differ."""
    out = _run_job(aws_env, region=OTHER_REGION)

    assert f"S3 client regions: ['{OTHER_REGION}']" in out
    methods = [message["method"] for message in _messages(aws_env.bucket)]
    assert "report_asset_materialization" in methods
    assert "log_external_stream" not in methods, "stdio only when the runner asks for it"


def test_the_drivers_stdout_and_stderr_travel_as_pipes_messages_when_asked(
    aws_env: AwsEnv,
) -> None:
    """EMR ships step logs to S3 minutes late; the driver's output comes with the messages."""
    _run_job(aws_env, region=aws_env.region, include_stdio_in_messages=True)

    streamed = {
        stream: "".join(
            m["params"]["text"]
            for m in _messages(aws_env.bucket)
            if m["method"] == "log_external_stream" and m["params"]["stream"] == stream
        )
        for stream in ("stdout", "stderr")
    }
    assert "Py4JJavaError: no rentals" in streamed["stderr"]
    assert "stage 3 of 7" in streamed["stdout"]


def test_spark_log_lines_travel_as_pipes_messages_when_the_runner_names_their_file(
    aws_env: AwsEnv, tmp_path: Path
) -> None:
    """The runner names the file its log4j2 appender writes (spark_jobs.driver_log)."""
    folder = tmp_path / "car-rental-driver-abc"
    folder.mkdir()
    line = "25/01/31 10:00:00 WARN TaskSetManager: Lost task 0.0 in stage 3.0"
    (folder / "driver.log").write_text(f"{line}\n")

    _run_job(aws_env, region=aws_env.region, **{DRIVER_LOG_PARAM: str(folder / "driver.log")})

    messages = _messages(aws_env.bucket)
    streamed = [m["params"]["text"] for m in messages if m["method"] == "log_external_stream"]
    assert streamed == [f"{line}\n"]
    assert {"message": line, "level": "WARNING"} in [
        m["params"] for m in messages if m["method"] == "log"
    ]
    assert not folder.exists()
