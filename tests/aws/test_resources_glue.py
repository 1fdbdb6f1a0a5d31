"""GlueCrawlerCatalog against the moto server, with moto's crawls driven by the test.

moto's crawler starts and stops but never crawls: a crawl stays RUNNING, changes no table and
has no error message, and UpdateCrawler is not implemented. ``ThreadedMotoServer`` runs in this
process, so ``ScriptedCrawls`` plays the crawler inside moto (the resource has no test-only
code path; ``ScriptedCrawls`` and the ``crawls`` fixture are in support.py and conftest.py): it
wraps moto's GetCrawler response so that a crawl's first GetCrawler finds it
RUNNING and the second finds it ended as scripted, after applying the scripted changes to
moto's Glue tables (what a real crawl would have written), with the scripted ErrorMessage in
``LastCrawl``. moto names a successful crawl COMPLETED where Glue's LastCrawl says SUCCEEDED;
the resource treats any ended state other than FAILED / CANCELLED as success. A recording
UpdateCrawler is added to moto's Glue responses where drift is tested.
"""

from typing import Any

import dagster as dg
import pytest
from moto.glue import models as glue_models

from car_rental_platform.aws_names import crawler_settings
from car_rental_platform.resources.aws import (
    CrawlerError,
    CrawlerTimeoutError,
    GlueCrawlerCatalog,
    S3Lake,
)
from spark_jobs.contract import Zone
from tests.aws.support import AwsEnv, Crawl, ScriptedCrawls

ROLE = "arn:aws:iam::123456789012:role/car-rental-glue-crawler-role"
DATABASE = "car_rental_db"


def _catalog(aws_env: AwsEnv, **settings: Any) -> GlueCrawlerCatalog:
    return GlueCrawlerCatalog(
        region_name=aws_env.region,
        endpoint_url=aws_env.endpoint_url,
        poll_interval_seconds=0,
        **settings,
    )


def _lake(aws_env: AwsEnv) -> S3Lake:
    return S3Lake(
        bucket=aws_env.bucket, region_name=aws_env.region, endpoint_url=aws_env.endpoint_url
    )


def _table(bucket: str, zone: str, name: str, **columns: str) -> dict[str, Any]:
    return {
        "Name": name,
        "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": t} for c, t in columns.items()],
            "Location": f"s3://{bucket}/{zone}/{name}/",
        },
        "PartitionKeys": [],
    }


def _backend() -> Any:
    return glue_models.glue_backends["123456789012"]["us-east-1"]


LOG = dg.get_dagster_logger()


def test_first_crawl_creates_database_and_crawler_and_reports_new_tables(
    aws_env: AwsEnv, crawls: ScriptedCrawls
) -> None:
    bucket = aws_env.bucket

    def crawl(backend: Any, crawler: Any) -> None:
        daily = _table(bucket, "kpi", "daily_metrics", rental_date="date", total="bigint")
        backend.create_table(DATABASE, "daily_metrics", daily)
        backend.create_table(DATABASE, "users", _table(bucket, "processed", "users", id="string"))

    crawls.crawls.append(Crawl(crawl))

    result = _catalog(aws_env).crawl(zone=Zone.KPI, lake=_lake(aws_env), log=LOG)

    assert result.created == ["daily_metrics"]
    assert (result.updated, result.deleted, result.unchanged) == ([], [], [])
    assert result.columns == {"daily_metrics": {"rental_date": "date", "total": "bigint"}}
    glue = aws_env.client("glue")
    assert glue.get_database(Name=DATABASE)["Database"]["Name"] == DATABASE
    crawler = glue.get_crawler(Name="car-rental-kpi-crawler")["Crawler"]
    desired = crawler_settings(bucket, "kpi", role=ROLE)
    assert crawler["Role"] == ROLE
    assert crawler["Targets"]["S3Targets"] == desired["Targets"]["S3Targets"]
    assert crawler["SchemaChangePolicy"] == {
        "UpdateBehavior": "UPDATE_IN_DATABASE",
        "DeleteBehavior": "DEPRECATE_IN_DATABASE",
    }
    assert crawler["State"] == "READY"
    assert crawls.updates == []


def test_crawl_reports_created_updated_deleted_and_unchanged_tables(
    aws_env: AwsEnv, crawls: ScriptedCrawls
) -> None:
    bucket = aws_env.bucket
    glue = aws_env.client("glue")
    glue.create_database(DatabaseInput={"Name": DATABASE})
    for name in ("daily_metrics", "brand_metrics", "hourly_metrics", "old_metrics"):
        glue.create_table(DatabaseName=DATABASE, TableInput=_table(bucket, "kpi", name, a="int"))
    glue.create_table(DatabaseName=DATABASE, TableInput=_table(bucket, "analyses", "top", a="int"))

    def crawl(backend: Any, crawler: Any) -> None:
        new = _table(bucket, "kpi", "user_metrics", user_id="string")
        backend.create_table(DATABASE, "user_metrics", new)
        wider = _table(bucket, "kpi", "daily_metrics", a="int", b="double")
        backend.update_table(DATABASE, "daily_metrics", wider)
        backend.delete_table(DATABASE, "hourly_metrics")
        deprecated = _table(bucket, "kpi", "old_metrics", a="int")
        deprecated["Parameters"] = {"DEPRECATED_BY_CRAWLER": "1"}
        backend.update_table(DATABASE, "old_metrics", deprecated)
        backend.delete_table(DATABASE, "top")

    crawls.crawls.append(Crawl(crawl))

    result = _catalog(aws_env, crawler_role_arn=ROLE).crawl(
        zone=Zone.KPI, lake=_lake(aws_env), log=LOG
    )

    assert result.created == ["user_metrics"]
    assert result.updated == ["daily_metrics"]
    assert result.deleted == ["hourly_metrics", "old_metrics"]
    assert result.unchanged == ["brand_metrics"]
    assert result.columns["daily_metrics"] == {"a": "int", "b": "double"}
    assert sorted(result.columns) == ["brand_metrics", "daily_metrics", "user_metrics"]


def test_a_crawl_already_running_is_waited_for_then_ours_starts(
    aws_env: AwsEnv, crawls: ScriptedCrawls
) -> None:
    catalog = _catalog(aws_env, crawler_role_arn=ROLE)
    crawls.crawls.append(Crawl())
    catalog.crawl(zone=Zone.PROCESSED, lake=_lake(aws_env), log=LOG)
    aws_env.client("glue").start_crawler(Name="car-rental-processed-crawler")
    bucket = aws_env.bucket

    def ours(backend: Any, crawler: Any) -> None:
        backend.create_table(DATABASE, "users", _table(bucket, "processed", "users", id="string"))

    crawls.crawls += [Crawl(), Crawl(ours)]

    result = catalog.crawl(zone=Zone.PROCESSED, lake=_lake(aws_env), log=LOG)

    assert result.created == ["users"]
    assert len(_backend().crawlers["car-rental-processed-crawler"].crawls) == 3
    assert crawls.crawls == []


def test_failed_crawl_raises_with_the_message_and_the_logs(
    aws_env: AwsEnv, crawls: ScriptedCrawls
) -> None:
    crawls.crawls.append(Crawl(status="FAILED", error_message="Insufficient Lake Formation perms"))

    with pytest.raises(CrawlerError) as raised:
        _catalog(aws_env, crawler_role_arn=ROLE).crawl(zone=Zone.KPI, lake=_lake(aws_env), log=LOG)

    message = str(raised.value)
    assert "Glue crawler car-rental-kpi-crawler crawl FAILED after" in message
    assert "Insufficient Lake Formation perms" in message
    assert "log group /aws-glue/crawlers, stream car-rental-kpi-crawler" in message


def test_crawl_timeout_stops_the_crawler_and_says_how_long(
    aws_env: AwsEnv, crawls: ScriptedCrawls
) -> None:
    catalog = _catalog(aws_env, crawler_role_arn=ROLE, timeout_seconds=1)

    with pytest.raises(CrawlerTimeoutError) as raised:
        catalog.crawl(zone=Zone.KPI, lake=_lake(aws_env), log=LOG)

    message = str(raised.value)
    assert "Glue crawler car-rental-kpi-crawler still RUNNING after" in message
    assert "s (timeout 1s); stopped it" in message
    assert _backend().crawlers["car-rental-kpi-crawler"].crawls[-1].status == "STOPPING"


def test_drifted_crawler_is_updated_to_the_desired_settings(
    aws_env: AwsEnv, crawls: ScriptedCrawls
) -> None:
    drifted = crawler_settings("another-bucket", "kpi", role=ROLE)
    aws_env.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    aws_env.client("glue").create_crawler(Name="car-rental-kpi-crawler", **drifted)
    crawls.crawls.append(Crawl())

    _catalog(aws_env, crawler_role_arn=ROLE).crawl(zone=Zone.KPI, lake=_lake(aws_env), log=LOG)

    (update,) = crawls.updates
    assert update["Name"] == "car-rental-kpi-crawler"
    assert update["Targets"]["S3Targets"][0]["Path"] == f"s3://{aws_env.bucket}/kpi/"


def test_unmanaged_crawler_must_exist(aws_env: AwsEnv, crawls: ScriptedCrawls) -> None:
    catalog = _catalog(aws_env, manage_crawlers=False, crawler_prefix="acme")
    with pytest.raises(CrawlerError, match="Glue crawler acme-kpi-crawler does not exist"):
        catalog.crawl(zone=Zone.KPI, lake=_lake(aws_env), log=LOG)
