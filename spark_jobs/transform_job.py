"""spark-submit job: raw CSVs -> processed Parquet tables and ``rejected_rows``.

    spark-submit spark_jobs/transform_job.py --lake-root LAKE_ROOT [--tables rentals,users]

Reads the canonical copies landing wrote in ``<root>/raw/<raw_name>/`` for each of the four
inputs (rentals: every ``batch=<key>/`` folder under it, DESIGN 3.5), stages the cleaned
tables, checks them, and publishes ``<root>/processed/<table>/`` only when every blocking
check passed (``<root>/processed/rejected_rows/`` always). A re-run is idempotent; rows in,
kept and rejected by reason are reported per table.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import cli, quality
from spark_jobs.cleaning import (
    REASON,
    Cleaned,
    Validation,
    clean,
    raw_alias,
    read_manifest,
    read_raw,
    read_raw_batches,
)
from spark_jobs.contract import (
    BATCH_FOLDER,
    DEFAULT_MAX_REJECT_RATE,
    LOCATIONS,
    PROCESSED_TABLES,
    REJECTED_ROWS_TABLE,
    RENTALS,
    SOURCE_TABLES,
    USERS,
    VEHICLES,
    Check,
    RejectReason,
    RentalBatch,
    SourceTable,
    Zone,
    batch_of_key,
    batch_order,
)
from spark_jobs.markdown import markdown_table
from spark_jobs.publish import publish, staging_path
from spark_jobs.quality import CheckOutcome, Problem
from spark_jobs.raw_format import MANIFEST, Manifest, combined
from spark_jobs.reporting import Reporter

PREVIEW_ROWS = 10
"""Rejected rows shown on ``processed/rejected_rows``: actual records with their reason."""
PARALLEL_TABLES = 4
"""The four inputs are cleaned at once: small tables' Spark jobs fill the cores left idle
between the big table's stages, and at small sizes job start-up latency overlaps."""


def clean_all(spark: SparkSession, args: argparse.Namespace) -> list[tuple[Cleaned, Manifest]]:
    """Read and clean every input (lazily; nothing is computed yet).

    Rentals are every landed batch (the full file and the daily exports) read as one input,
    so a key repeated across exports is decided by batch order, whatever order the exports
    landed or were processed in.
    """
    inputs = []
    for table in SOURCE_TABLES:
        folder = cli.lake_path(args, "raw_zone", table.raw_name)
        if table is RENTALS:
            batches = [(b, read_manifest(spark, path)) for b, path in landed_batches(spark, folder)]
            raw = read_raw_batches(spark, table, folder, batches)
            inputs.append((clean(table, raw), combined([m for _, m in batches])))
        else:
            manifest = read_manifest(spark, folder)
            inputs.append((clean(table, read_raw(spark, table, folder, manifest)), manifest))
    return inputs


def landed_batches(spark: SparkSession, folder: str) -> list[tuple[RentalBatch, str]]:
    """The rentals batches landed completely (with a manifest) under ``folder``, in batch
    order; a landing still copying is a hidden sibling folder, which the pattern skips."""
    jvm = spark.sparkContext._jvm
    pattern = jvm.org.apache.hadoop.fs.Path(f"{folder.rstrip('/')}/{BATCH_FOLDER}*")
    fs = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    found = {}
    for status in fs.globStatus(pattern) or []:
        path = status.getPath()
        if status.isDirectory() and fs.exists(jvm.org.apache.hadoop.fs.Path(path, MANIFEST)):
            found[batch_of_key(path.getName()[len(BATCH_FOLDER) :])] = path.toString()
    if not found:
        raise FileNotFoundError(
            f"no rentals export landed under {folder} ({BATCH_FOLDER}<key>/ with {MANIFEST}): "
            "materialize raw/rentals first"
        )
    return [(batch, found[batch]) for batch in batch_order(found)]


@dataclass(frozen=True)
class Written:
    """One input after its kept rows are staged; ``rejected`` is cached (it is small)."""

    table: SourceTable
    manifest: Manifest
    staged: str
    kept: int
    rejected: DataFrame
    rejected_by_reason: dict[str, int]
    problems: list[Problem]
    """(what failed, rows, example values) of the rejected rows, most frequent first."""

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def write_table(spark: SparkSession, item: Cleaned, manifest: Manifest, staged: str) -> Written:
    """Stage the kept rows, then collect the rejected ones: three passes over the input.

    Finding repeated keys is one grouped pass (cached, it is small); writing the kept rows
    and selecting the failing ones are one pass each. Nothing wide is cached, so memory stays
    flat as inputs grow. The failing rows are cached before their detail and JSON record are
    built, so those wide expressions run on them alone, in a stage of their own.
    """
    repeated = item.repeated_keys.cache()
    partition_by = item.table.partition_by
    item.kept.write.mode("overwrite").partitionBy(*partition_by).parquet(staged)
    kept = spark.read.schema(item.kept.schema).parquet(staged).count()
    if partition_by and not kept:
        # No rows, no partition folder, no file: readers would find no schema. One empty file
        # holding every column keeps an empty table readable (0 rows, not an error).
        spark.createDataFrame([], item.kept.schema).write.mode("overwrite").parquet(staged)
    failing = item.failing().cache()
    rejected = failing.rejected.cache()
    counts = {row["reason"]: row["count"] for row in rejected.groupBy("reason").count().collect()}
    problems = reject_problems(failing, counts) if counts else []
    failing.annotated.unpersist()
    repeated.unpersist()
    return Written(
        item.table, manifest, staged, kept, rejected, dict(sorted(counts.items())), problems
    )


COLUMN_REASONS = (
    RejectReason.MISSING_REQUIRED_VALUE,
    RejectReason.UNPARSEABLE_VALUE,
    RejectReason.VALUE_OUT_OF_RANGE,
)


def reject_problems(failing: Cleaned, counts: dict[str, int]) -> list[Problem]:
    """What made rows fail, per column (with example values) and per other reason.

    One aggregate over the (cached) failing rows: per column check, the rows it failed and
    the smallest and largest offending raw values as examples. A row failing on two columns
    counts under both.
    """
    checks = Validation.of(failing.table, raw_alias)
    rejected_for_a_value = F.col(REASON).isin([reason.value for reason in COLUMN_REASONS])
    column_checks = [
        (rejected_for_a_value & condition, message, raw_alias(message.split(" ", 1)[0]))
        for condition, message in (*checks.missing, *checks.unparseable, *checks.out_of_range)
    ]
    row = failing.annotated.agg(
        *[
            aggregate(F.when(condition, value)).alias(f"_{i}_{name}")
            for i, (condition, _, column) in enumerate(column_checks)
            for name, aggregate, value in (
                ("n", F.count, F.lit(1)),
                ("low", F.min, F.col(column)),
                ("high", F.max, F.col(column)),
            )
        ]
    ).first()
    problems = []
    for i, (_, message, _) in enumerate(column_checks):
        if row[f"_{i}_n"]:
            examples = dict.fromkeys((row[f"_{i}_low"], row[f"_{i}_high"]))
            problems.append((message, int(row[f"_{i}_n"]), ", ".join(map(repr, examples))))
    for reason, rows in counts.items():
        if reason not in COLUMN_REASONS:
            problems.append((reason, rows, ""))
    return sorted(problems, key=lambda item: -item[1])


def reject_rate(item: Written, limit: float) -> CheckOutcome:
    return quality.reject_rate_verdict(
        item.manifest.records, item.rejected_by_reason, limit, item.problems
    )


def conservation(item: Written) -> CheckOutcome:
    return quality.conservation_verdict(
        item.manifest.records, item.kept, item.rows_rejected, item.manifest.source
    )


def table_checks(
    spark: SparkSession, written: list[Written], limit: float
) -> dict[str, dict[Check, CheckOutcome]]:
    """Every processed check, on the staged tables (what would be published)."""
    staged = {w.table.name: spark.read.parquet(w.staged) for w in written}
    outcomes: dict[str, dict[Check, CheckOutcome]] = {}
    for item in written:
        outcomes[item.table.name] = {
            Check.ROWS_CONSERVED: conservation(item),
            Check.PRIMARY_KEY_UNIQUE: quality.duplicate_keys(
                staged[item.table.name], [item.table.key]
            ),
            Check.REJECT_RATE: reject_rate(item, limit),
        }
    outcomes[RENTALS.name][Check.REFERENCES_KNOWN] = quality.unknown_references(
        staged[RENTALS.name], staged[VEHICLES.name], staged[USERS.name], staged[LOCATIONS.name]
    )
    return outcomes


def run(spark: SparkSession, args: argparse.Namespace, reporter: Reporter) -> None:
    """Stage, check, then publish the four tables together, or none of them.

    The rejected rows are published either way: when a check stops the tables, they are
    what explains it. ``--tables`` narrows what is published (a subset of the assets
    materialized from the UI); every input is still cleaned and checked, since the checks
    span the four tables.
    """
    chosen = set(published_tables(args.tables))
    inputs = clean_all(spark, args)
    staged = [staging_path(args, "processed_zone", c.table.name) for c, _ in inputs]
    with ThreadPoolExecutor(max_workers=PARALLEL_TABLES) as pool:
        written = list(pool.map(lambda i, p: write_table(spark, i[0], i[1], p), inputs, staged))
    outcomes = table_checks(spark, written, args.max_reject_rate)
    failures = quality.blocking_failures(outcomes)
    for item in written:
        reporter.log(
            f"{item.table.name}: {item.manifest.records} records in, {item.kept} kept, "
            f"{item.rows_rejected} rejected ({item.manifest.source})"
        )
    if REJECTED_ROWS_TABLE in chosen:
        publish_rejected_rows(spark, args, reporter, written)
    else:
        for item in written:
            item.rejected.unpersist()
    if failures:
        reporter.log(
            "Not published (the processed tables stay as they were): blocking check(s) "
            f"failed: {', '.join(failures)}"
        )
    else:
        for item in (w for w in written if w.table.name in chosen):
            path = publish(spark, args, "processed_zone", item.table.name)
            reporter.report(
                f"{Zone.PROCESSED}/{item.table.name}",
                {
                    "row_count": item.kept,
                    "rows_in": item.manifest.records,
                    "rows_rejected": item.rows_rejected,
                    "rejected_by_reason": item.rejected_by_reason,
                    "source": item.manifest.source,
                    "encoding": item.manifest.encoding,
                    "path": path,
                },
            )
    for table, checks in outcomes.items():
        if table in chosen:  # Pipes accepts checks of the step's assets only
            for check, outcome in checks.items():
                reporter.check(f"{Zone.PROCESSED}/{table}", check, outcome)


def publish_rejected_rows(
    spark: SparkSession, args: argparse.Namespace, reporter: Reporter, written: list[Written]
) -> None:
    staged = staging_path(args, "processed_zone", REJECTED_ROWS_TABLE)
    union = reduce(DataFrame.unionByName, (w.rejected for w in written))
    union.coalesce(1).write.mode("overwrite").parquet(staged)
    rejected_by_table = {w.table.name: w.rejected_by_reason for w in written}
    total = sum(w.rows_rejected for w in written)
    preview = markdown_table(union.limit(PREVIEW_ROWS).collect(), union.columns)
    for item in written:
        item.rejected.unpersist()
    path = publish(spark, args, "processed_zone", REJECTED_ROWS_TABLE)
    reporter.report(
        f"{Zone.PROCESSED}/{REJECTED_ROWS_TABLE}",
        {
            "row_count": total,
            "rejected_by_table": rejected_by_table,
            "path": path,
            "preview": {"raw_value": preview, "type": "md"},
        },
    )


def published_tables(value: str | None) -> list[str]:
    """Processed tables to publish, in contract order (no ``--tables``: all five)."""
    return cli.table_list(value, PROCESSED_TABLES, "--tables")


def parser() -> argparse.ArgumentParser:
    parser = cli.base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", help="Comma-separated processed tables to publish (default: all five)."
    )
    parser.add_argument(
        "--max-reject-rate",
        type=float,
        default=DEFAULT_MAX_REJECT_RATE,
        help="Share of an input's rows that may be rejected before the tables are held back.",
    )
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    return cli.parse(parser(), argv)


def main(argv: list[str] | None = None) -> None:
    cli.run_job("car-rental-transform", parser(), run, argv)


if __name__ == "__main__":
    main()
