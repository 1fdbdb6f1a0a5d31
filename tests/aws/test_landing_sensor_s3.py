"""The landing sensor on an S3 prefix (S3Landing against the moto server).

The sensor's cursor holds each contract object's size and version at the last tick, which on
S3 is the object's ETag and last-modified time, and the version last requested of each. Once
the three snapshots and a rentals export are present and unchanged over one tick, each new or
changed object is requested on its own: a snapshot with what is built from it, a rentals
export as its partition (registered by the same tick) with everything downstream. A new
version waits one tick the same way; anything else under the prefix (other CSVs, files in
sub-folders, other extensions) or outside it is ignored. Each tick is one ListObjectsV2 call,
checked against the runner IAM policy like the graph's calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from car_rental_platform.resources.aws import S3Landing
from tests.aws.runner_permissions import Where, denied
from tests.aws.support import AwsCalls, AwsEnv
from tests.test_automation import (
    A_RENTALS_EXPORT,
    DAY_1,
    DAY_2,
    RENTALS_RUN,
    SNAPSHOT_FILES,
    SNAPSHOT_RUNS,
    SensorDaemon,
    added_partitions,
    runs,
)

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


@pytest.fixture
def daemon(landing: S3Landing) -> Iterator[SensorDaemon]:
    with dg.instance_for_test() as instance:
        yield SensorDaemon(landing, instance)


def _put(aws_env: AwsEnv, key: str, body: bytes) -> None:
    aws_env.client("s3").put_object(Bucket=aws_env.bucket, Key=key, Body=body)


def _listing(tick: Any) -> dict[str, str]:
    return json.loads(tick.cursor)["listing"]


def _run_key(tick: Any, name: str, key: str | None = None) -> str:
    """The run key of the object's version the tick listed."""
    return f"{key or name}:{_listing(tick)[name]}"


def test_new_changed_and_unrelated_objects(
    aws_env: AwsEnv, daemon: SensorDaemon, aws_calls: AwsCalls
) -> None:
    bucket = aws_env.bucket

    # Nothing landed yet: skip, naming what is missing.
    first = daemon.tick()
    assert first.run_requests == []
    assert f"Nothing requested from s3://{bucket}/landing/ until" in first.skip_message
    assert f"still missing: {[*SNAPSHOT_FILES, A_RENTALS_EXPORT]}" in first.skip_message

    # The snapshots and a day land: wait one tick for them to stop changing, then one run per
    # object, the day's as its partition.
    for name in [*SNAPSHOT_FILES, DAY_1]:
        _put(aws_env, f"landing/{name}", f"header\n{name}\n".encode())
    landed = daemon.tick()
    assert landed.run_requests == []
    assert f"waiting for {sorted([*SNAPSHOT_FILES, DAY_1])} to stop changing" in (
        landed.skip_message
    )
    stable = daemon.tick()
    assert runs(stable) == [
        *(
            (None, _run_key(stable, name), SNAPSHOT_RUNS[name], name)
            for name in ("vehicles.csv", "users.csv", "locations.csv")
        ),
        ("2024-01-01", _run_key(stable, DAY_1, "2024-01-01"), RENTALS_RUN, DAY_1),
    ]
    assert added_partitions(stable) == ["2024-01-01"]
    versions = json.loads(stable.cursor)["requested"]
    assert _listing(stable) == versions
    assert sorted(versions) == sorted([*SNAPSHOT_FILES, DAY_1])
    head = aws_env.client("s3").head_object(Bucket=bucket, Key="landing/users.csv")
    size, version = versions["users.csv"].split(":", 1)
    assert int(size) == head["ContentLength"]
    assert version.startswith(head["ETag"].strip('"') + "@")

    # Unchanged: skip, and the cursor stays.
    unchanged = daemon.tick()
    assert unchanged.run_requests == []
    assert "(the 4 contract files are unchanged since their runs were requested)" in (
        unchanged.skip_message
    )
    assert unchanged.cursor == stable.cursor

    # The next day lands: its partition alone, once.
    _put(aws_env, f"landing/{DAY_2}", b"header\nday 2\n")
    assert daemon.tick().run_requests == []
    next_day = daemon.tick()
    assert runs(next_day) == [
        ("2024-01-02", _run_key(next_day, DAY_2, "2024-01-02"), RENTALS_RUN, DAY_2)
    ]
    assert added_partitions(next_day) == ["2024-01-02"]
    assert daemon.partitions == ["2024-01-01", "2024-01-02"]

    # users.csv overwritten with new content (a new ETag): one tick of waiting, then its own
    # run, no rentals partition.
    _put(aws_env, "landing/users.csv", b"header\nusers.csv, corrected\n")
    overwritten = daemon.tick()
    assert overwritten.run_requests == []
    assert "waiting for ['users.csv'] to stop changing" in overwritten.skip_message
    settled = daemon.tick()
    assert runs(settled) == [
        (None, _run_key(settled, "users.csv"), SNAPSHOT_RUNS["users.csv"], "users.csv")
    ]
    new_versions = json.loads(settled.cursor)["requested"]
    assert new_versions["users.csv"] != versions["users.csv"]

    # The first day re-landed (same size, new ETag): that partition again, under a new key.
    _put(aws_env, f"landing/{DAY_1}", f"HEADER\n{DAY_1}\n".encode())
    assert daemon.tick().run_requests == []
    relanded = daemon.tick()
    assert runs(relanded) == [
        ("2024-01-01", _run_key(relanded, DAY_1, "2024-01-01"), RENTALS_RUN, DAY_1)
    ]
    assert relanded.run_requests[0].run_key != stable.run_requests[-1].run_key
    assert added_partitions(relanded) == []

    # Unrelated keys: another CSV (noted), a sub-folder, another extension, another prefix.
    _put(aws_env, "landing/notes.csv", b"x\n")
    _put(aws_env, "landing/archive/users.csv", b"old\n")
    _put(aws_env, "landing/README.txt", b"x\n")
    _put(aws_env, "landing_old/users.csv", b"x\n")
    _put(aws_env, "raw/users/users.csv", b"x\n")
    ignored = daemon.tick()
    assert ignored.run_requests == []
    assert "ignored (not part of the contract): ['notes.csv']" in ignored.skip_message
    assert ignored.cursor == relanded.cursor

    # Each tick listed the prefix once; the runner policy allows it.
    assert [c.name for c in aws_calls.calls] == ["s3:ListObjectsV2"] * 11
    assert {c.params["Prefix"] for c in aws_calls.calls} == {"landing/"}
    where = Where(bucket, aws_env.region, ACCOUNT)
    assert denied([(c.name, c.params) for c in aws_calls.calls], where) == []


def test_a_deleted_snapshot_holds_every_request_back(aws_env: AwsEnv, daemon: SensorDaemon) -> None:
    for name in [*SNAPSHOT_FILES, DAY_1]:
        _put(aws_env, f"landing/{name}", b"header\n1\n")
    daemon.tick()
    assert len(daemon.tick().run_requests) == 4
    aws_env.client("s3").delete_object(Bucket=aws_env.bucket, Key="landing/vehicles.csv")
    _put(aws_env, f"landing/{DAY_2}", b"header\n2\n")

    for _ in range(2):
        after = daemon.tick()
        assert after.run_requests == []
        assert "still missing: ['vehicles.csv']" in after.skip_message
        assert "vehicles.csv" not in _listing(after)
    assert daemon.partitions == ["2024-01-01"]
