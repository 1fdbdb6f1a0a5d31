"""The AWS catalog: one Glue crawler per lake zone, refreshed after the Spark steps that write it.

A crawl creates or updates the database and the zone's crawler (settings from ``aws_names``:
one table per folder, UPDATE_IN_DATABASE / DEPRECATE_IN_DATABASE), starts it (waiting for a
crawl already in progress instead of failing), waits until the crawler is READY again, fails
clearly on a FAILED or CANCELLED last crawl, and reports which of the zone's tables were
created, updated (schema or location changed), deleted (dropped or deprecated by the crawler)
or left unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg
from botocore.exceptions import ClientError
from pydantic import Field

from car_rental_platform.aws_names import (
    GLUE_CRAWLER_ROLE,
    PROJECT,
    PROJECT_TAGS,
    crawler_differences,
    crawler_name,
    crawler_settings,
    role_arn,
)
from car_rental_platform.resources.aws.clients import (
    AwsConnection,
    Deadline,
    Log,
    bucket_of,
    error_code,
)
from car_rental_platform.resources.aws.errors import CrawlerError, CrawlerTimeoutError
from car_rental_platform.resources.catalog import Catalog, CrawlResult
from car_rental_platform.resources.lake import LakeStorage
from spark_jobs.contract import Zone

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient


FAILED_CRAWLS = frozenset({"FAILED", "CANCELLED"})
NOT_FOUND = "EntityNotFoundException"
CRAWLER_RUNNING = "CrawlerRunningException"


@dataclass(frozen=True)
class TableShape:
    """What a crawl can change about a table: its columns (partition keys last), its place."""

    columns: tuple[tuple[str, str], ...]
    location: str
    deprecated: bool


class GlueCrawlerCatalog(Catalog, AwsConnection):
    """The Glue database, kept by one crawler per zone (``<prefix>-<zone>-crawler``)."""

    crawler_prefix: str = Field(
        default=PROJECT, description="Crawlers are named <prefix>-<zone>-crawler."
    )
    crawler_role_arn: str | None = Field(
        default=None,
        description="IAM role the crawlers run as; unset: the set-up scripts' car-rental-glue-"
        "crawler-role in the caller's account.",
    )
    manage_crawlers: bool = Field(
        default=True,
        description="Create the database and crawler when missing and update a crawler whose "
        "settings drifted; off: only start existing crawlers.",
    )
    poll_interval_seconds: int = Field(
        default=15, ge=0, description="Seconds (>= 0) between two GetCrawler calls."
    )
    timeout_seconds: int = Field(
        default=3600,
        gt=0,
        description="Seconds (> 0) to wait for a crawl, and for one already running before it.",
    )

    def get_client(self) -> GlueCrawlers:
        return GlueCrawlers(self, glue=self.aws_client("glue"))

    def crawler_name(self, *, zone: Zone | str) -> str:
        return crawler_name(Zone(zone).value, self.crawler_prefix)

    def crawl(self, *, zone: Zone, lake: LakeStorage, log: dg.DagsterLogManager) -> CrawlResult:
        crawlers = self.get_client()
        folder = lake.prefix(zone)
        target = f"{lake.root_uri.rstrip('/')}/{folder}/"
        name = self.crawler_name(zone=zone)
        if self.manage_crawlers:
            crawlers.ensure_database()
            crawlers.ensure_crawler(
                name=name, bucket=bucket_of(lake.root_uri), folder=folder, log=log
            )
        before = crawlers.tables_under(target=target)
        run = crawlers.start_and_wait(name=name, log=log)
        after = crawlers.tables_under(target=target)
        result = compare_tables(before, after)
        log.info(
            f"crawler {name} ({target}) finished in {run:.0f}s: created {result.created}, "
            f"updated {result.updated}, deleted {result.deleted}, "
            f"unchanged {len(result.unchanged)}"
        )
        return result


def compare_tables(before: dict[str, TableShape], after: dict[str, TableShape]) -> CrawlResult:
    """Sort the zone's tables into created / updated / deleted / unchanged."""
    live_before = {name for name, shape in before.items() if not shape.deprecated}
    live_after = {name for name, shape in after.items() if not shape.deprecated}
    result = CrawlResult()
    for table in sorted(live_after):
        result.columns[table] = dict(after[table].columns)
        if table not in live_before:
            result.created.append(table)
        elif (before[table].columns, before[table].location) != (
            after[table].columns,
            after[table].location,
        ):
            result.updated.append(table)
        else:
            result.unchanged.append(table)
    result.deleted.extend(sorted(live_before - live_after))
    return result


class GlueCrawlers:
    """The behaviour behind ``GlueCrawlerCatalog``: database, crawler, crawl, table snapshots."""

    def __init__(self, settings: GlueCrawlerCatalog, *, glue: GlueClient) -> None:
        self.settings = settings
        self.glue = glue

    @property
    def region(self) -> str:
        return self.glue.meta.region_name

    def console_url(self, *, name: str) -> str:
        return (
            f"https://{self.region}.console.aws.amazon.com/glue/home?region={self.region}"
            f"#/v2/data-catalog/crawlers/view/{name}"
        )

    def role(self) -> str:
        if self.settings.crawler_role_arn:
            return self.settings.crawler_role_arn
        sts = self.settings.aws_client("sts")
        account = sts.get_caller_identity()["Account"]
        partition = sts.meta.partition
        return role_arn(GLUE_CRAWLER_ROLE, account, partition)

    def ensure_database(self) -> None:
        database = self.settings.database
        try:
            self.glue.get_database(Name=database)
            return
        except ClientError as error:
            if error_code(error) != NOT_FOUND:
                raise
        try:
            self.glue.create_database(
                DatabaseInput={"Name": database, "Description": "Car-rental lake tables"},
                Tags=PROJECT_TAGS,
            )
        except ClientError as error:
            if error_code(error) != "AlreadyExistsException":
                raise

    def ensure_crawler(self, *, name: str, bucket: str, folder: str, log: Log) -> None:
        """Create the crawler, or update it when its managed settings differ."""
        desired = crawler_settings(
            bucket, folder, role=self.role(), database=self.settings.database
        )
        current = self._get_crawler(name)
        if current is None:
            self.glue.create_crawler(Name=name, Tags=PROJECT_TAGS, **desired)
            log.info(
                f"created Glue crawler {name} over {desired['Targets']['S3Targets'][0]['Path']}"
            )
            return
        differences = crawler_differences(current, desired)
        if not differences:
            return
        if current.get("State") != "READY":
            deadline = Deadline(self.settings.timeout_seconds)
            self.wait_until_ready(name=name, deadline=deadline, log=log)
        self.glue.update_crawler(Name=name, **desired)
        log.info(f"updated Glue crawler {name}: {', '.join(differences)}")

    def _get_crawler(self, name: str) -> dict[str, Any] | None:
        try:
            return self.glue.get_crawler(Name=name)["Crawler"]
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                return None
            raise

    def start_and_wait(self, *, name: str, log: Log) -> float:
        """Start a crawl and wait for it; a crawl already running is waited for first.

        Returns the seconds waited. The crawl is recognised by its LastCrawl MessagePrefix,
        which is new for every crawl, so a READY state left by the previous crawl never passes
        for the end of this one.
        """
        deadline = Deadline(self.settings.timeout_seconds)
        while True:
            previous = (self._require(name).get("LastCrawl") or {}).get("MessagePrefix")
            try:
                self.glue.start_crawler(Name=name)
                break
            except ClientError as error:
                if error_code(error) != CRAWLER_RUNNING:
                    raise
            log.info(f"Glue crawler {name} is already running: waiting for that crawl first")
            self.wait_until_ready(name=name, deadline=deadline, log=log)
        log.info(f"started Glue crawler {name}: {self.console_url(name=name)}")
        crawler = self.wait_until_ready(name=name, deadline=deadline, log=log, after_crawl=previous)
        last = crawler.get("LastCrawl") or {}
        if last.get("Status") in FAILED_CRAWLS:
            raise CrawlerError(
                f"Glue crawler {name} crawl {last['Status']} after {deadline.elapsed:.1f}s: "
                f"{last.get('ErrorMessage') or 'no error message'}. Logs: CloudWatch log group "
                f"{last.get('LogGroup', '?')}, stream {last.get('LogStream', '?')} "
                f"(messages {last.get('MessagePrefix', '?')}). {self.console_url(name=name)}"
            )
        return deadline.elapsed

    def wait_until_ready(
        self, *, name: str, deadline: Deadline, log: Log, after_crawl: str | None = None
    ) -> dict[str, Any]:
        """Poll until READY (and, with ``after_crawl``, a newer crawl than that one ended)."""
        last_state = None
        while True:
            crawler = self._require(name)
            state = crawler.get("State")
            last = crawler.get("LastCrawl") or {}
            if state != last_state:
                log.info(f"Glue crawler {name}: {state}")
                last_state = state
            newer = after_crawl is None or last.get("MessagePrefix") not in (None, after_crawl)
            if state == "READY" and newer:
                return crawler
            if deadline.expired:
                self._stop(name, log)
                raise CrawlerTimeoutError(
                    f"Glue crawler {name} still {state} after {deadline.describe()}; "
                    f"stopped it. {self.console_url(name=name)}"
                )
            time.sleep(self.settings.poll_interval_seconds)

    def _require(self, name: str) -> dict[str, Any]:
        crawler = self._get_crawler(name)
        if crawler is None:
            raise CrawlerError(
                f"Glue crawler {name} does not exist in {self.region} (run "
                "python -m infra_scripts.glue, or enable manage_crawlers)"
            )
        return crawler

    def _stop(self, name: str, log: Log) -> None:
        try:
            self.glue.stop_crawler(Name=name)
        except ClientError as error:
            log.warning(f"could not stop Glue crawler {name}: {error}")

    def tables_under(self, *, target: str) -> dict[str, TableShape]:
        """Tables of the database whose location is under ``target`` (one zone's tables)."""
        pages = self.glue.get_paginator("get_tables").paginate(DatabaseName=self.settings.database)
        try:
            tables = [table for page in pages for table in page["TableList"]]
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                return {}
            raise
        shapes = {}
        for table in tables:
            descriptor = table.get("StorageDescriptor") or {}
            location = _normalise_location(descriptor.get("Location", ""))
            if not location.startswith(_normalise_location(target)):
                continue
            columns = [*descriptor.get("Columns", []), *table.get("PartitionKeys", [])]
            shapes[table["Name"]] = TableShape(
                columns=tuple((c["Name"], c.get("Type", "")) for c in columns),
                location=location,
                deprecated=any(
                    key.upper().startswith("DEPRECATED") for key in table.get("Parameters", {})
                ),
            )
        return shapes


def _normalise_location(location: str) -> str:
    for scheme in ("s3n://", "s3a://"):
        if location.startswith(scheme):
            location = "s3://" + location[len(scheme) :]
    return location.rstrip("/") + "/"
