"""What every asset shares: owners, the contract's schemas as Dagster table schemas, the
daily refresh and the freshness it promises, the standard metadata of Spark-written tables."""

from datetime import timedelta

import dagster as dg

from car_rental_platform.code_bundle import bundle_digest, package_sources
from car_rental_platform.resources.spark import with_metadata
from spark_jobs.contract import (
    COLUMN_DESCRIPTIONS,
    KPI_TABLES,
    REJECTED_ROWS_COLUMNS,
    REJECTED_ROWS_TABLE,
    SOURCE_TABLES,
    Column,
    column_description,
)

OWNERS = ["team:data-platform"]

SPARK_CODE_VERSION = bundle_digest(package_sources("spark_jobs"))
"""Code version of the Spark-built assets: the digest of the spark_jobs bundle that EMR runs
(the same bytes run locally), so a change to the jobs marks their tables as changed code."""

DAILY_REFRESH_CRON = "0 3 * * *"
"""When ``daily_refresh`` rebuilds everything (UTC)."""
DAILY_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 5 * * *", lower_bound_delta=timedelta(hours=2), timezone="UTC"
)
"""KPI and catalog tables are due by 05:00 UTC with data from 03:00 on: the daily refresh
plus two hours for the run (an EMR cluster's start included). A table the refresh missed is
flagged in the UI from 05:00 on."""

REFRESH_OVER_CHECKED_DATA = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager over checked data")
"""Catalog entries and analyses follow their tables eagerly, but never over data whose blocking
checks (``BLOCKING_CHECKS``) failed or have not run on its latest materialization: SQL users
would otherwise query a table the checks reject. Fixing the data and passing the checks lets
the pending refresh through."""


def table_schema(columns: tuple[Column, ...]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=column_description(c)) for c in columns]
    )


CONTRACT_COLUMNS: dict[str, tuple[Column, ...]] = {
    **{t.name: t.processed_columns for t in SOURCE_TABLES},
    REJECTED_ROWS_TABLE: REJECTED_ROWS_COLUMNS,
    **{t.name: t.columns for t in KPI_TABLES},
}
"""The contract's columns of each processed and KPI table, by table name."""


def described_schema(columns: dict[str, str], table: str) -> dg.TableSchema:
    """A schema of column -> type (as stored) with each column's meaning from the contract.

    A column of ``table``'s contract keeps its own description; any other takes the one its
    name has everywhere (``COLUMN_DESCRIPTIONS``).
    """
    own = {c.name: column_description(c) for c in CONTRACT_COLUMNS.get(table, ())}
    known = {**COLUMN_DESCRIPTIONS, **own}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, kind, description=known.get(name) or None)
            for name, kind in columns.items()
        ]
    )


def plain_metadata(result: dg.MaterializeResult) -> dict[str, object]:
    """A materialization's metadata as plain Python values (Pipes sends typed values)."""
    return {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}


def with_path(result: dg.MaterializeResult) -> dg.MaterializeResult:
    """A Pipes-reported materialization with Dagster's standard, typed metadata.

    The jobs send ``path`` as text and ``row_count`` as a plain number (Pipes metadata is
    untyped JSON): here ``path`` becomes a path value and ``row_count`` is also given as
    ``dagster/row_count``, which the UI shows as the table's row count.
    """
    plain = plain_metadata(result)
    typed: dict[str, dg.MetadataValue] = {"path": dg.MetadataValue.path(str(plain["path"]))}
    if plain.get("row_count") is not None:
        typed["dagster/row_count"] = dg.MetadataValue.int(int(plain["row_count"]))
    return with_metadata(result, typed)


LAKE_WRITERS_POOL = "lake_table_writers"
"""Dagster concurrency pool of the steps that replace lake tables (landing, transform, KPIs):
the shipped instance allows one at a time, so two runs (the schedule, the sensor, `make run`)
never stage or swap the same table folders at once."""
