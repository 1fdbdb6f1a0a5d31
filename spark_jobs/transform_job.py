"""spark-submit job: raw CSVs -> processed Parquet tables and ``rejected_rows``.

    spark-submit spark_jobs/transform_job.py --lake-root LAKE_ROOT

Reads ``<root>/raw/<raw_name>/`` for each of the four inputs, writes
``<root>/processed/<table>/`` and ``<root>/processed/rejected_rows/`` (overwritten, so a re-run
is idempotent), and reports per table rows in, kept and rejected by reason.
"""

from __future__ import annotations

import argparse
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
    Zone,
)
from spark_jobs.reporting import Reporter


def clean_all(spark: SparkSession, args: argparse.Namespace) -> list[Cleaned]:
    """Read and clean every input (lazily; nothing is computed yet)."""
    return [
        clean(table, read_raw(spark, table, cli.lake_path(args, "raw_zone", table.raw_name)))
        for table in SOURCE_TABLES
    ]


def all_rejected(cleaned: list[Cleaned]) -> DataFrame:
    return reduce(DataFrame.unionByName, (c.rejected for c in cleaned))


def run(spark: SparkSession, args: argparse.Namespace, reporter: Reporter) -> None:
    cleaned = [c.cache() for c in clean_all(spark, args)]
    rejected_by_table: dict[str, dict[str, int]] = {}
    for item in cleaned:
        table = item.table
        counts = item.counts()
        kept = counts.pop(None, 0)
        rejected_by_table[table.name] = dict(sorted(counts.items()))
        path = cli.lake_path(args, "processed_zone", table.name)
        item.kept.write.mode("overwrite").parquet(path)
        rows_in = kept + sum(counts.values())
        reporter.log(
            f"{table.name}: {rows_in} rows in, {kept} kept, {rows_in - kept} rejected -> {path}"
        )
        reporter.report(
            f"{Zone.PROCESSED}/{table.name}",
            {
                "row_count": kept,
                "rows_in": rows_in,
                "rows_rejected": rows_in - kept,
                "rejected_by_reason": rejected_by_table[table.name],
                "path": path,
            },
        )
    path = cli.lake_path(args, "processed_zone", REJECTED_ROWS_TABLE)
    all_rejected(cleaned).coalesce(1).write.mode("overwrite").parquet(path)
    total = sum(sum(r.values()) for r in rejected_by_table.values())
    reporter.report(
        f"{Zone.PROCESSED}/{REJECTED_ROWS_TABLE}",
        {"row_count": total, "rejected_by_table": rejected_by_table, "path": path},
    )
    for item in cleaned:
        item.annotated.unpersist()
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


def main(argv: list[str] | None = None) -> None:
    cli.run_job("car-rental-transform", cli.base_parser(__doc__.splitlines()[0]), run, argv)


if __name__ == "__main__":
    main()
