"""S3Lake and S3Landing against the moto server: the local lake's contract, in a bucket."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from car_rental_platform.resources.aws import S3Lake, S3Landing
from car_rental_platform.resources.landing import MissingSourceFileError
from spark_jobs.contract import Zone
from tests.aws.support import AwsEnv


def _parquet() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": ["0042"]}), buffer)
    return buffer.getvalue()


def _keys(aws_env: AwsEnv, prefix: str = "") -> list[str]:
    response = aws_env.client("s3").list_objects_v2(Bucket=aws_env.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


@pytest.fixture
def lake(aws_env: AwsEnv) -> S3Lake:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    return S3Lake(
        bucket=aws_env.bucket, region_name=aws_env.region, endpoint_url=aws_env.endpoint_url
    )


def test_root_and_spark_arguments_name_the_bucket(lake: S3Lake) -> None:
    assert lake.root_uri == f"s3://{lake.bucket}"
    assert lake.table_uri(Zone.KPI, "daily_metrics") == f"s3://{lake.bucket}/kpi/daily_metrics"
    assert lake.spark_args()[:2] == ["--lake-root", f"s3://{lake.bucket}"]


def test_put_files_replaces_the_table_folder(lake: S3Lake, aws_env: AwsEnv, tmp_path: Path) -> None:
    aws_env.client("s3").put_object(Bucket=lake.bucket, Key="raw/users/old.csv", Body=b"old")
    aws_env.client("s3").put_object(Bucket=lake.bucket, Key="raw/users_v2/keep.csv", Body=b"x")
    source = tmp_path / "users.csv"
    source.write_text("user_id\n0042\n")
    manifest = tmp_path / "landing.json"
    manifest.write_text("{}")

    uri = lake.put_files({"users.csv": source, "landing.json": manifest}, Zone.RAW, "users")

    assert uri == f"s3://{lake.bucket}/raw/users"
    assert _keys(aws_env, "raw/") == [
        "raw/users/landing.json",
        "raw/users/users.csv",
        "raw/users_v2/keep.csv",
    ]
    body = aws_env.client("s3").get_object(Bucket=lake.bucket, Key="raw/users/users.csv")["Body"]
    assert body.read() == b"user_id\n0042\n"


def test_write_bytes_and_delete_prefix_like_paths(lake: S3Lake, aws_env: AwsEnv) -> None:
    assert lake.write_bytes(b"a", "analyses/top/part-0.parquet") == (
        f"s3://{lake.bucket}/analyses/top/part-0.parquet"
    )
    lake.write_bytes(b"b", "analyses/top/d=2024-01-01/part-0.parquet")
    lake.write_bytes(b"c", "analyses/top_v2/part-0.parquet")
    lake.write_bytes(b"d", "analyses/top")

    lake.delete_prefix("analyses/top")

    assert _keys(aws_env) == ["analyses/top_v2/part-0.parquet"]
    lake.delete_prefix("analyses/top_v2/")
    assert _keys(aws_env) == []
    with pytest.raises(ValueError, match="whole lake"):
        lake.delete_prefix("/")


def test_delete_prefix_pages_through_more_than_a_thousand_objects(
    lake: S3Lake, aws_env: AwsEnv
) -> None:
    """1,005 objects: two list pages and two DeleteObjects batches.

    They are put straight into the in-process moto backend: 1,005 HTTP puts take 13 s.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for index in range(1005):
        backend.put_object(lake.bucket, f"processed/rentals/part-{index:05}.parquet", b"")
    assert len(aws_env.client("s3").list_objects_v2(Bucket=lake.bucket)["Contents"]) == 1000

    lake.delete_prefix("processed/rentals/")

    assert _keys(aws_env) == []


def test_list_tables_finds_folders_with_parquet_in_any_depth(lake: S3Lake, aws_env: AwsEnv) -> None:
    s3 = aws_env.client("s3")
    for key in (
        "kpi/daily_metrics/part-0.parquet",
        "kpi/daily_metrics/_SUCCESS",
        "kpi/user_metrics/rental_date=2024-01-01/part-0.parquet",
        "kpi/empty_table/_SUCCESS",
        "kpi/empty_table_$folder$",
        "kpi/loose.parquet",
        "processed/users/part-0.parquet",
    ):
        s3.put_object(Bucket=lake.bucket, Key=key, Body=_parquet())

    assert lake.list_tables(Zone.KPI) == ["daily_metrics", "user_metrics"]
    assert lake.list_tables("analyses") == []


def test_zone_prefixes_are_settings(aws_env: AwsEnv) -> None:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    lake = S3Lake(
        bucket=aws_env.bucket,
        endpoint_url=aws_env.endpoint_url,
        kpi_prefix="gold",
        region_name="us-east-1",
    )
    lake.write_bytes(_parquet(), "gold/daily_metrics/part-0.parquet")
    assert lake.list_tables(Zone.KPI) == ["daily_metrics"]
    assert lake.table_uri(Zone.KPI, "x") == f"s3://{aws_env.bucket}/gold/x"


@pytest.fixture
def landing(aws_env: AwsEnv) -> S3Landing:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    return S3Landing(
        bucket=aws_env.bucket,
        prefix="landing",
        region_name=aws_env.region,
        endpoint_url=aws_env.endpoint_url,
    )


def test_landing_lists_csv_directly_under_the_prefix(landing: S3Landing, aws_env: AwsEnv) -> None:
    s3 = aws_env.client("s3")
    s3.put_object(Bucket=landing.bucket, Key="landing/vehicles.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket=landing.bucket, Key="landing/users.csv", Body=b"u\n")
    s3.put_object(Bucket=landing.bucket, Key="landing/readme.txt", Body=b"x")
    s3.put_object(Bucket=landing.bucket, Key="landing/archive/old.csv", Body=b"x")
    s3.put_object(Bucket=landing.bucket, Key="landing_other/x.csv", Body=b"x")

    files = landing.list_csv()

    assert landing.location == f"s3://{landing.bucket}/landing/"
    assert [(f.name, f.size) for f in files] == [("users.csv", 2), ("vehicles.csv", 8)]
    head = s3.head_object(Bucket=landing.bucket, Key="landing/vehicles.csv")
    assert files[1].version == (f"{head['ETag'].strip(chr(34))}@{head['LastModified'].isoformat()}")


def test_landing_version_changes_when_the_object_is_replaced(
    landing: S3Landing, aws_env: AwsEnv
) -> None:
    s3 = aws_env.client("s3")
    s3.put_object(Bucket=landing.bucket, Key="landing/users.csv", Body=b"u\n1\n")
    before = landing.list_csv()[0].version
    s3.put_object(Bucket=landing.bucket, Key="landing/users.csv", Body=b"u\n2\n")
    assert landing.list_csv()[0].version != before


def test_landing_fetch_downloads_and_names_a_missing_object(
    landing: S3Landing, aws_env: AwsEnv, tmp_path: Path
) -> None:
    aws_env.client("s3").put_object(
        Bucket=landing.bucket, Key="landing/users.csv", Body=b"user_id\n0042\n"
    )
    target = landing.fetch("users.csv", tmp_path / "users.csv")
    assert target.read_bytes() == b"user_id\n0042\n"

    with pytest.raises(MissingSourceFileError) as error:
        landing.fetch("locations.csv", tmp_path / "locations.csv")
    assert f"s3://{landing.bucket}/landing/locations.csv" in str(error.value)


def test_landing_at_the_bucket_root(aws_env: AwsEnv) -> None:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    aws_env.client("s3").put_object(Bucket=aws_env.bucket, Key="users.csv", Body=b"u\n")
    root = S3Landing(bucket=aws_env.bucket, prefix="", endpoint_url=aws_env.endpoint_url)
    assert root.location == f"s3://{aws_env.bucket}/"
    assert [f.name for f in root.list_csv()] == ["users.csv"]
