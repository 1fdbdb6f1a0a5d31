"""KPI zone: the seven KPI tables of DESIGN 3.3, computed by one Spark application."""

from collections.abc import Mapping

import dagster as dg

from car_rental_platform.assets.common import (
    DAILY_FRESHNESS,
    LAKE_WRITERS_POOL,
    OWNERS,
    SPARK_CODE_VERSION,
    table_schema,
    with_path,
)
from car_rental_platform.assets.kpi_lineage import kpi_column_lineage
from car_rental_platform.assets.processed import processed_key
from car_rental_platform.assets.stored_checks import stored_kpi_checks
from car_rental_platform.dashboard.pages import KPI_PAGES
from car_rental_platform.partitions import SINGLE_RUN
from car_rental_platform.resources.dashboard import DashboardLinks
from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.query import QueryEngine
from car_rental_platform.resources.spark import SparkRunner, with_metadata
from spark_jobs.contract import (
    BLOCKING_CHECKS,
    BRAND_METRICS,
    CHECK_DESCRIPTIONS,
    KPI_BY_NAME,
    KPI_TABLES,
    LOCATION_METRICS,
    LOCATIONS,
    RENTALS,
    USER_METRICS,
    USERS,
    VEHICLE_TYPE_METRICS,
    VEHICLES,
    Check,
    KpiTable,
    Zone,
)

KPI_SCRIPT = "kpi_job.py"
KPI_CHECKS_PER_TABLE = (Check.TOTALS_MATCH_RENTALS, Check.NOT_EMPTY, Check.PRIMARY_KEY_UNIQUE)
EXTRA_INPUTS = {
    LOCATION_METRICS.name: [LOCATIONS.name],
    VEHICLE_TYPE_METRICS.name: [VEHICLES.name],
    BRAND_METRICS.name: [VEHICLES.name],
    USER_METRICS.name: [USERS.name],
}
"""Processed tables a KPI reads besides rentals (its lineage in the asset graph)."""


def kpi_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([Zone.KPI.value, table])


def _spec(table: KpiTable) -> dg.AssetSpec:
    inputs = [RENTALS.name, *EXTRA_INPUTS.get(table.name, [])]
    return dg.AssetSpec(
        kpi_key(table.name),
        description=table.description,
        deps=[processed_key(name) for name in inputs],
        group_name="kpi",
        kinds={"spark", "parquet"},
        code_version=SPARK_CODE_VERSION,
        owners=OWNERS,
        metadata={
            "dagster/column_schema": table_schema(table.columns),
            "dagster/column_lineage": kpi_column_lineage(table),
        },
        freshness_policy=DAILY_FRESHNESS,
        skippable=True,  # not published when a blocking check fails
    )


KPI_SPECS = [_spec(table) for table in KPI_TABLES]
KPI_CHECKS = [
    dg.AssetCheckSpec(
        check.value,
        asset=kpi_key(t.name),
        description=CHECK_DESCRIPTIONS[check],
        blocking=check in BLOCKING_CHECKS,
    )
    for t in KPI_TABLES
    for check in KPI_CHECKS_PER_TABLE
]


def headline_metadata(
    table: KpiTable, totals_check: Mapping[str, object] | None, dashboard: DashboardLinks
) -> dict[str, dg.MetadataValue]:
    """Total revenue and rentals of a KPI table (for the UI's Plots tab) and its dashboard page.

    The figures are the sums the Spark job measured for ``totals_match_rentals``: read from
    that check's report, so the job needs no second pass and no change.
    """
    figures: dict[str, dg.MetadataValue] = {"dashboard": dashboard.page_url(KPI_PAGES[table.name])}
    values = {k: getattr(v, "value", v) for k, v in (totals_check or {}).items()}
    revenue = values.get(f"table_{table.revenue_column}")
    rentals = values.get(f"table_{table.count_column}")
    if revenue is not None:  # a job that did not measure a figure just leaves it out
        figures["total_revenue"] = dg.MetadataValue.float(float(revenue))
    if rentals is not None:
        figures["total_rentals"] = dg.MetadataValue.int(int(rentals))
    return figures


@dg.multi_asset(
    specs=KPI_SPECS,
    check_specs=KPI_CHECKS,
    can_subset=True,
    name="kpi_tables",
    pool=LAKE_WRITERS_POOL,
    backfill_policy=SINGLE_RUN,  # in a run over rentals partitions: computed once
)
def kpi_tables(
    context: dg.AssetExecutionContext,
    spark: SparkRunner,
    lake: LakeStorage,
    dashboard: DashboardLinks,
    engine: QueryEngine,
):
    """Run the KPI job for the selected tables only, in one Spark application.

    Checks selected without their table (a check-only run) are measured on the stored table
    through the query engine: the KPI job, which writes, is not started for them.
    """
    selected_checks = set(context.selected_asset_check_keys)
    names = [t.name for t in KPI_TABLES if kpi_key(t.name) in context.selected_asset_keys]
    unwritten = [
        t
        for t in KPI_TABLES
        if t.name not in names and any(k.asset_key == kpi_key(t.name) for k in selected_checks)
    ]
    yield from stored_kpi_checks(context, engine, unwritten, selected_checks)
    if not names:  # an empty table list would mean "all" to the job
        return
    args = [*lake.spark_args(), "--tables", ",".join(names)]
    results = spark.run_job(context=context, script=KPI_SCRIPT, args=args)
    totals = {
        result.asset_key: result.metadata or {}
        for result in results
        if isinstance(result, dg.AssetCheckResult)
        and result.check_name == Check.TOTALS_MATCH_RENTALS.value
    }
    for result in results:
        if isinstance(result, dg.MaterializeResult):
            table = KPI_BY_NAME[result.asset_key.path[-1]]
            headline = headline_metadata(table, totals.get(result.asset_key), dashboard)
            yield with_metadata(with_path(result), headline)
        elif dg.AssetCheckKey(result.asset_key, result.check_name) in selected_checks:
            yield result
