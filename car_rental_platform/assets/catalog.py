"""Catalog zone: one catalog table per processed and KPI table (Glue on AWS, DuckDB locally).

Each zone's entries are refreshed by one crawl of that zone. They update eagerly when their
table is re-materialized, so a KPI asset materialized from the UI or the CLI reaches SQL users
with no further action (with the automation daemon running, as under ``dagster dev``), but not
while a blocking check of that table has failed (``REFRESH_OVER_CHECKED_DATA``).
"""

import dagster as dg

from car_rental_platform.assets.common import (
    DAILY_FRESHNESS,
    OWNERS,
    REFRESH_OVER_CHECKED_DATA,
    described_schema,
)
from car_rental_platform.partitions import SINGLE_RUN
from car_rental_platform.resources.catalog import Catalog, CatalogError
from car_rental_platform.resources.lake import LakeStorage
from spark_jobs.contract import KPI_TABLES, PROCESSED_TABLES, Zone

CATALOGED: dict[Zone, list[str]] = {
    Zone.PROCESSED: list(PROCESSED_TABLES),
    Zone.KPI: [t.name for t in KPI_TABLES],
}


def catalog_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["catalog", table])


def build_catalog_assets(zone: Zone, tables: list[str]) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            catalog_key(table),
            description=f"Catalog table {table} over the {zone.value} zone, for SQL users.",
            deps=[dg.AssetKey([zone.value, table])],
            group_name="catalog",
            kinds={"duckdb", "glue"},
            owners=OWNERS,
            automation_condition=REFRESH_OVER_CHECKED_DATA,
            freshness_policy=DAILY_FRESHNESS,
        )
        for table in tables
    ]

    @dg.multi_asset(
        specs=specs, can_subset=True, name=f"catalog_{zone.value}", backfill_policy=SINGLE_RUN
    )
    def _crawl(context: dg.AssetExecutionContext, catalog: Catalog, lake: LakeStorage):
        result = catalog.crawl(zone=zone, lake=lake, log=context.log)
        for key in sorted(context.selected_asset_keys):
            table = key.path[-1]
            status = result.status(table)
            if status in ("missing", "deleted"):
                raise CatalogError(
                    f"{catalog.database}.{table}: no Parquet data at "
                    f"{lake.table_uri(zone, table)} after crawling the {zone.value} zone"
                )
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "dagster/table_name": f"{catalog.database}.{table}",
                    "crawl_status": status,
                    "location": dg.MetadataValue.path(lake.table_uri(zone, table)),
                    "dagster/column_schema": described_schema(result.columns.get(table, {}), table),
                    "zone_tables_created": result.created,
                    "zone_tables_updated": result.updated,
                    "zone_tables_deleted": result.deleted,
                },
            )

    return _crawl


CATALOG_ASSETS = [build_catalog_assets(zone, tables) for zone, tables in CATALOGED.items()]
