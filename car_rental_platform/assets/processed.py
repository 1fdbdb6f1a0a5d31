"""Processed zone: typed, trimmed Parquet tables and the rows that could not be used."""

import dagster as dg
from pydantic import Field

from car_rental_platform.assets.common import (
    LAKE_WRITERS_POOL,
    OWNERS,
    SPARK_CODE_VERSION,
    table_schema,
    with_path,
)
from car_rental_platform.assets.raw import raw_key
from car_rental_platform.assets.stored_checks import (
    latest_landing,
    report_selected,
    stored_processed_outcomes,
)
from car_rental_platform.partitions import RENTAL_BATCHES, SINGLE_RUN, run_partition_keys
from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.query import QueryEngine
from car_rental_platform.resources.spark import SparkRunner
from spark_jobs.contract import (
    BLOCKING_CHECKS,
    CHECK_DESCRIPTIONS,
    DEFAULT_MAX_REJECT_RATE,
    PROCESSED_TABLES,
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
        skippable=True,  # not published when a blocking check fails
        partitions_def=RENTAL_BATCHES if table is RENTALS else None,
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
    *[_check(t.name, Check.REJECT_RATE) for t in SOURCE_TABLES],
    _check(RENTALS.name, Check.REFERENCES_KNOWN),
]


class TransformConfig(dg.Config):
    """Run configuration of the transform (the launchpad shows it with its default)."""

    max_reject_rate: float = Field(
        default=DEFAULT_MAX_REJECT_RATE,
        ge=0.0,
        le=1.0,
        description=(
            "Share of an input's rows that may be rejected: above it the input's "
            "reject_rate_within_limit check fails and no processed table is published."
        ),
    )


@dg.multi_asset(
    specs=PROCESSED_SPECS,
    check_specs=PROCESSED_CHECKS,
    can_subset=True,
    name="processed_tables",
    pool=LAKE_WRITERS_POOL,
    backfill_policy=SINGLE_RUN,
)
def processed_tables(
    context: dg.AssetExecutionContext,
    config: TransformConfig,
    spark: SparkRunner,
    lake: LakeStorage,
    engine: QueryEngine,
):
    """Run the transform job: one Spark application cleans, checks and publishes all inputs.

    Every check is computed by the job on what it staged, so the job can hold the tables back
    when a blocking check fails; the step then fails and Dagster skips what is downstream.
    The rentals are partitioned by export: the job rewrites the run's batches (and any
    batch whose kept copies they change), only in the ``rental_date=`` folders they touch.
    A subset of the tables cleans, checks and publishes only what is selected;
    checks selected with no table (a check-only run) are measured on the stored tables
    through the query engine, and the transform, which writes, is not started.
    """
    selected_checks = set(context.selected_asset_check_keys)
    names = [
        name for name in PROCESSED_TABLES if processed_key(name) in context.selected_asset_keys
    ]
    if not names:
        checked = [
            t
            for t in SOURCE_TABLES
            if any(k.asset_key == processed_key(t.name) for k in selected_checks)
        ]
        landed = {t.name: latest_landing(context, raw_key(t)) for t in checked}
        outcomes = stored_processed_outcomes(engine, checked, landed, config.max_reject_rate)
        yield from report_selected(context, Zone.PROCESSED, outcomes, selected_checks)
        return
    args = [*lake.spark_args(), "--max-reject-rate", str(config.max_reject_rate)]
    if len(names) < len(PROCESSED_TABLES):
        args += ["--tables", ",".join(names)]
    keys = run_partition_keys(context)
    if RENTALS.name in names and keys is not None:
        # The run's partitions: a backfill of many days is this one Spark application.
        args += ["--batches", ",".join(keys)]
    held_back = []
    for result in spark.run_job(context=context, script=TRANSFORM_SCRIPT, args=args):
        if isinstance(result, dg.MaterializeResult):
            yield with_path(result)
            continue
        key = dg.AssetCheckKey(result.asset_key, result.check_name)
        if key in selected_checks:
            yield result
        blocking = result.check_name in {c.value for c in BLOCKING_CHECKS}
        if blocking and not result.passed and result.severity == dg.AssetCheckSeverity.ERROR:
            held_back.append(f"{result.asset_key.to_user_string()} {result.check_name}")
    if held_back:
        # The job published nothing but the rejected rows: say why, in every run mode (a
        # Pipes session would otherwise fail on the tables it did not report).
        raise dg.Failure(
            description="Processed tables not published (they stay as they were): blocking "
            f"check(s) failed: {', '.join(held_back)}. See processed/rejected_rows."
        )
