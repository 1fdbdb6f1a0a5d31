"""The catalog of lake tables: what a Glue crawler does on AWS, a DuckDB file does locally."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import dagster as dg
from pydantic import Field

from car_rental_platform.resources.lake import LakeStorage
from spark_jobs.contract import DATABASE, Zone


@dataclass(frozen=True)
class CrawlResult:
    """What one crawl of a zone changed, table by table."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    """Column name -> SQL type, per table present after the crawl."""

    def status(self, table: str) -> str:
        for status in ("created", "updated", "deleted", "unchanged"):
            if table in getattr(self, status):
                return status
        return "missing"


class CatalogError(RuntimeError):
    """A crawl failed or did not finish: the message says which zone and why."""


class Catalog(dg.ConfigurableResource, ABC):
    """Keeps one catalog table per lake table of a zone, like a crawler."""

    database: str = Field(default=DATABASE, description="Catalog database (Glue) or schema.")

    @abstractmethod
    def crawl(self, *, zone: Zone, lake: LakeStorage, log: dg.DagsterLogManager) -> CrawlResult:
        """Rescan the zone; create, update or drop tables to match; report what changed."""
