"""Processed zone: typed, trimmed Parquet tables and the rows that could not be used."""

import dagster as dg

from car_rental_platform.assets.common import (
    OWNERS,
    SPARK_CODE_VERSION,
    plain_metadata,
    table_schema,
    with_path,
)
from car_rental_platform.assets.raw import raw_key
from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.spark import SparkRunner
from spark_jobs.contract import (
    BLOCKING_CHECKS,
    CHECK_DESCRIPTIONS,
    REJECTED_ROWS_COLUMNS,
    REJECTED_ROWS_TABLE,
    RENTALS,
    SOURCE_TABLES,
    Check,
    SourceTable,
    Zone,
)

TRANSFORM_SCRIPT = "transform_job.py"


def processed_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([Zone.PROCESSED.value, table])


def _spec(table: SourceTable) -> dg.AssetSpec:
    return dg.AssetSpec(
        processed_key(table.name),
        description=table.description,
        deps=[raw_key(table)],
        group_name="processed",
        kinds={"spark", "parquet"},
        code_version=SPARK_CODE_VERSION,
        owners=OWNERS,
        metadata={"dagster/column_schema": table_schema(table.processed_columns)},
    )


PROCESSED_SPECS = [
    *[_spec(table) for table in SOURCE_TABLES],
    dg.AssetSpec(
        processed_key(REJECTED_ROWS_TABLE),
        description="Raw rows that could not be used, with their source, values and reason.",
        deps=[raw_key(table) for table in SOURCE_TABLES],
        group_name="processed",
        kinds={"spark", "parquet"},
        code_version=SPARK_CODE_VERSION,
        owners=OWNERS,
        metadata={"dagster/column_schema": table_schema(REJECTED_ROWS_COLUMNS)},
    ),
]


def _check(table: str, check: Check) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        check.value,
        asset=processed_key(table),
        description=CHECK_DESCRIPTIONS[check],
        blocking=check in BLOCKING_CHECKS,
    )


PROCESSED_CHECKS = [
    *[_check(t.name, Check.ROWS_CONSERVED) for t in SOURCE_TABLES],
    *[_check(t.name, Check.PRIMARY_KEY_UNIQUE) for t in SOURCE_TABLES],
    _check(RENTALS.name, Check.REFERENCES_KNOWN),
]


def conservation(
    table: SourceTable, raw_rows: int | None, processed: dict[str, object]
) -> dg.AssetCheckResult:
    """Rows counted in the raw file = rows the transform kept + rows it rejected."""
    kept = int(processed.get("row_count", 0))
    rejected = int(processed.get("rows_rejected", 0))
    return dg.AssetCheckResult(
        asset_key=processed_key(table.name),
        check_name=Check.ROWS_CONSERVED.value,
        passed=raw_rows is not None and raw_rows == kept + rejected,
        metadata={
            "raw_rows": raw_rows if raw_rows is not None else "raw file never materialized",
            "kept_rows": kept,
            "rejected_rows": rejected,
            "difference": (raw_rows or 0) - kept - rejected,
        },
    )


def latest_row_count(context: dg.AssetExecutionContext, key: dg.AssetKey) -> int | None:
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("row_count")
    return None if value is None else int(value.value)


@dg.multi_asset(specs=PROCESSED_SPECS, check_specs=PROCESSED_CHECKS, name="processed_tables")
def processed_tables(context: dg.AssetExecutionContext, spark: SparkRunner, lake: LakeStorage):
    """Run the transform job: one Spark application cleans all four inputs."""
    results = spark.run_job(context=context, script=TRANSFORM_SCRIPT, args=lake.spark_args())
    reported: dict[dg.AssetKey, dict[str, object]] = {}
    for result in results:
        if isinstance(result, dg.MaterializeResult):
            reported[result.asset_key] = plain_metadata(result)
            yield with_path(result)
        else:
            yield result
    for table in SOURCE_TABLES:
        raw_rows = latest_row_count(context, raw_key(table))
        yield conservation(table, raw_rows, reported.get(processed_key(table.name), {}))
