"""spark-submit job: raw CSVs -> processed Parquet tables and ``rejected_rows``.

    spark-submit spark_jobs/transform_job.py --lake-root LAKE_ROOT

Reads ``<root>/raw/<raw_name>/`` for each of the four inputs, writes
``<root>/processed/<table>/`` and ``<root>/processed/rejected_rows/`` (overwritten, so a re-run
is idempotent), and reports per table rows in, kept and rejected by reason.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession

from spark_jobs import cli, quality
from spark_jobs.cleaning import Cleaned, clean, read_raw
from spark_jobs.contract import (
    LOCATIONS,
    REJECTED_ROWS_TABLE,
    RENTALS,
    SOURCE_TABLES,
    USERS,
    VEHICLES,
    Check,
    SourceTable,
    Zone,
)
from spark_jobs.markdown import markdown_table
from spark_jobs.reporting import Reporter

PREVIEW_ROWS = 10
"""Rejected rows shown on ``processed/rejected_rows``: actual records with their reason."""
PARALLEL_TABLES = 4
"""The four inputs are cleaned at once: small tables' Spark jobs fill the cores left idle
between the big table's stages, and at small sizes job start-up latency overlaps."""


def clean_all(spark: SparkSession, args: argparse.Namespace) -> list[Cleaned]:
    """Read and clean every input (lazily; nothing is computed yet)."""
    return [
        clean(table, read_raw(spark, table, cli.lake_path(args, "raw_zone", table.raw_name)))
        for table in SOURCE_TABLES
    ]


@dataclass(frozen=True)
class Written:
    """One input after its kept rows are written; ``rejected`` is cached (it is small)."""

    table: SourceTable
    path: str
    kept: int
    rejected: DataFrame
    rejected_by_reason: dict[str, int]


def write_table(spark: SparkSession, item: Cleaned, path: str) -> Written:
    """Write the kept rows, then collect the rejected ones: three passes over the input.

    Finding repeated keys is one grouped pass (cached, it is small); writing the kept rows
    and selecting the failing ones are one pass each. Nothing wide is cached, so memory stays
    flat as inputs grow. The failing rows are cached before their detail and JSON record are
    built, so those wide expressions run on them alone, in a stage of their own.
    """
    repeated = item.repeated_keys.cache()
    item.kept.write.mode("overwrite").parquet(path)
    kept = spark.read.parquet(path).count()
    failing = item.failing().cache()
    rejected = failing.rejected.cache()
    counts = {row["reason"]: row["count"] for row in rejected.groupBy("reason").count().collect()}
    failing.annotated.unpersist()
    repeated.unpersist()
    return Written(item.table, path, kept, rejected, dict(sorted(counts.items())))


def run(spark: SparkSession, args: argparse.Namespace, reporter: Reporter) -> None:
    cleaned = clean_all(spark, args)
    paths = [cli.lake_path(args, "processed_zone", c.table.name) for c in cleaned]
    with ThreadPoolExecutor(max_workers=PARALLEL_TABLES) as pool:
        written = list(pool.map(lambda c, p: write_table(spark, c, p), cleaned, paths))
    for item in written:
        name, rejected = item.table.name, sum(item.rejected_by_reason.values())
        rows_in = item.kept + rejected
        reporter.log(
            f"{name}: {rows_in} rows in, {item.kept} kept, {rejected} rejected -> {item.path}"
        )
        reporter.report(
            f"{Zone.PROCESSED}/{name}",
            {
                "row_count": item.kept,
                "rows_in": rows_in,
                "rows_rejected": rejected,
                "rejected_by_reason": item.rejected_by_reason,
                "path": item.path,
            },
        )
    path = cli.lake_path(args, "processed_zone", REJECTED_ROWS_TABLE)
    union = reduce(DataFrame.unionByName, (w.rejected for w in written))
    union.coalesce(1).write.mode("overwrite").parquet(path)
    rejected_by_table = {w.table.name: w.rejected_by_reason for w in written}
    total = sum(sum(r.values()) for r in rejected_by_table.values())
    preview = markdown_table(union.limit(PREVIEW_ROWS).collect(), union.columns)
    reporter.report(
        f"{Zone.PROCESSED}/{REJECTED_ROWS_TABLE}",
        {
            "row_count": total,
            "rejected_by_table": rejected_by_table,
            "path": path,
            "preview": {"raw_value": preview, "type": "md"},
        },
    )
    for item in written:
        item.rejected.unpersist()
    report_checks(spark, args, reporter)


def report_checks(spark: SparkSession, args: argparse.Namespace, reporter: Reporter) -> None:
    """Key uniqueness of every processed table and unknown references of rentals, as stored."""
    stored = {
        t.name: spark.read.parquet(cli.lake_path(args, "processed_zone", t.name))
        for t in SOURCE_TABLES
    }
    for table in SOURCE_TABLES:
        outcome = quality.duplicate_keys(stored[table.name], [table.key])
        reporter.check(f"{Zone.PROCESSED}/{table.name}", Check.PRIMARY_KEY_UNIQUE, outcome)
    outcome = quality.unknown_references(
        stored[RENTALS.name], stored[VEHICLES.name], stored[USERS.name], stored[LOCATIONS.name]
    )
    reporter.check(f"{Zone.PROCESSED}/{RENTALS.name}", Check.REFERENCES_KNOWN, outcome)


def parser() -> argparse.ArgumentParser:
    return cli.base_parser(__doc__.splitlines()[0])


def parse_args(argv: list[str]) -> argparse.Namespace:
    return cli.parse(parser(), argv)


def main(argv: list[str] | None = None) -> None:
    cli.run_job("car-rental-transform", parser(), run, argv)


if __name__ == "__main__":
    main()
