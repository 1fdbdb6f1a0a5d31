"""The landing sensor on an S3 prefix (S3Landing against the moto server).

The sensor's cursor holds each expected CSV's size and version at the last tick, which on S3
is the object's ETag and last-modified time, and the versions of the last requested set: once
all four objects are present and unchanged over one tick, a full refresh is requested naming
the objects changed since the last request; a new version waits one tick the same way; anything
else under the prefix (other CSVs, files in sub-folders, other extensions) or outside it is
ignored. Each tick is one ListObjectsV2 call,
checked against the runner IAM policy like the graph's calls.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
import pytest

from car_rental_platform.automation import landing_sensor
from car_rental_platform.resources.aws import S3Landing
from spark_jobs.contract import SOURCE_TABLES
from tests.aws.runner_permissions import Where, denied
from tests.aws.support import AwsCalls, AwsEnv

FILES = sorted(t.file_name for t in SOURCE_TABLES)
ACCOUNT = "123456789012"  # moto's


@pytest.fixture
def landing(aws_env: AwsEnv) -> S3Landing:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    return S3Landing(
        bucket=aws_env.bucket,
        prefix="landing/",
        region_name=aws_env.region,
        endpoint_url=aws_env.endpoint_url,
    )


def _put(aws_env: AwsEnv, key: str, body: bytes) -> None:
    aws_env.client("s3").put_object(Bucket=aws_env.bucket, Key=key, Body=body)


def _tick(landing: S3Landing, cursor: str | None) -> Any:
    context = dg.build_sensor_context(cursor=cursor, resources={"landing": landing})
    return landing_sensor.evaluate_tick(context)


def _changed(tick: Any) -> list[str]:
    (request,) = tick.run_requests
    return request.tags["car_rental/changed_files"].split(",")


def test_new_changed_and_unrelated_objects(
    aws_env: AwsEnv, landing: S3Landing, aws_calls: AwsCalls
) -> None:
    bucket = aws_env.bucket

    # Nothing landed yet: skip, naming what is missing.
    first = _tick(landing, None)
    assert first.run_requests == []
    assert f"No complete, stable set of CSV files in s3://{bucket}/landing/" in first.skip_message
    assert f"still missing: {FILES}" in first.skip_message

    # The four exports land: wait one tick for them to stop changing, then one run request
    # naming all of them.
    for name in FILES:
        _put(aws_env, f"landing/{name}", f"header\n{name}\n".encode())
    landed = _tick(landing, first.cursor)
    assert landed.run_requests == []
    assert f"waiting for {FILES} to stop changing" in landed.skip_message
    stable = _tick(landing, landed.cursor)
    assert _changed(stable) == FILES
    versions = json.loads(stable.cursor)["requested"]
    assert json.loads(stable.cursor)["listing"] == versions
    assert sorted(versions) == FILES
    head = aws_env.client("s3").head_object(Bucket=bucket, Key="landing/users.csv")
    size, version = versions["users.csv"].split(":", 1)
    assert int(size) == head["ContentLength"]
    assert version.startswith(head["ETag"].strip('"') + "@")

    # Unchanged: skip, and the cursor stays.
    unchanged = _tick(landing, stable.cursor)
    assert unchanged.run_requests == []
    assert "(the 4 files are unchanged since their run was requested)" in unchanged.skip_message
    assert unchanged.cursor == stable.cursor

    # users.csv overwritten with new content (a new ETag): one tick of waiting, then a run
    # request naming that file.
    _put(aws_env, "landing/users.csv", b"header\nusers.csv, corrected\n")
    overwritten = _tick(landing, unchanged.cursor)
    assert overwritten.run_requests == []
    assert "waiting for ['users.csv'] to stop changing" in overwritten.skip_message
    settled = _tick(landing, overwritten.cursor)
    assert _changed(settled) == ["users.csv"]
    new_versions = json.loads(settled.cursor)["requested"]
    assert new_versions["users.csv"] != versions["users.csv"]
    assert {k: v for k, v in new_versions.items() if k != "users.csv"} == {
        k: v for k, v in versions.items() if k != "users.csv"
    }
    (request,) = settled.run_requests
    assert request.run_key != stable.run_requests[0].run_key

    # Unrelated keys: another CSV (noted), a sub-folder, another extension, another prefix.
    _put(aws_env, "landing/notes.csv", b"x\n")
    _put(aws_env, "landing/archive/users.csv", b"old\n")
    _put(aws_env, "landing/README.txt", b"x\n")
    _put(aws_env, "landing_old/users.csv", b"x\n")
    _put(aws_env, "raw/users/users.csv", b"x\n")
    ignored = _tick(landing, settled.cursor)
    assert ignored.run_requests == []
    assert "ignored (not part of the contract): ['notes.csv']" in ignored.skip_message
    assert ignored.cursor == settled.cursor

    # Each tick listed the prefix once; the runner policy allows it.
    assert [c.name for c in aws_calls.calls] == ["s3:ListObjectsV2"] * 7
    assert {c.params["Prefix"] for c in aws_calls.calls} == {"landing/"}
    where = Where(bucket, aws_env.region, ACCOUNT)
    assert denied([(c.name, c.params) for c in aws_calls.calls], where) == []


def test_a_deleted_export_requests_nothing(aws_env: AwsEnv, landing: S3Landing) -> None:
    for name in FILES:
        _put(aws_env, f"landing/{name}", b"header\n1\n")
    landed = _tick(landing, _tick(landing, None).cursor)
    assert len(landed.run_requests) == 1
    aws_env.client("s3").delete_object(Bucket=aws_env.bucket, Key="landing/vehicles.csv")

    after = _tick(landing, landed.cursor)

    assert after.run_requests == []
    assert "still missing: ['vehicles.csv']" in after.skip_message
    assert "vehicles.csv" not in json.loads(after.cursor)["listing"]
