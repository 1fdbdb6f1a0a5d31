"""Command-line arguments shared by the jobs: lake root and zone names (DESIGN 3.4 defaults)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from pyspark.sql import SparkSession

from spark_jobs.contract import Zone, table_path
from spark_jobs.reporting import Reporter, open_reporter
from spark_jobs.session import build_spark


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--lake-root",
        required=True,
        help="Lake root: a local folder or s3://bucket (the same code reads and writes both).",
    )
    parser.add_argument("--raw-zone", default=Zone.RAW.value)
    parser.add_argument("--processed-zone", default=Zone.PROCESSED.value)
    parser.add_argument("--kpi-zone", default=Zone.KPI.value)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse known arguments: Dagster Pipes may append its own bootstrap arguments (EMR steps)."""
    args, _ = parser.parse_known_args(argv)
    return args


def table_list(value: str | None, valid: Sequence[str], what: str) -> list[str]:
    """Tables named by a comma-separated option, in ``valid``'s order; unknown names fail with
    the valid ones listed.

    No option means all; an empty list is refused rather than read as "all", so a caller with
    nothing selected can never rewrite every table by accident.
    """
    if value is None:
        return list(valid)
    requested = [name.strip() for name in value.split(",") if name.strip()]
    if not requested:
        raise SystemExit(f"{what}: no table named; valid: {list(valid)}")
    unknown = [name for name in requested if name not in valid]
    if unknown:
        raise SystemExit(f"{what}: unknown table(s) {unknown}; valid: {list(valid)}")
    return [name for name in valid if name in requested]


def lake_path(args: argparse.Namespace, zone_arg: str, table: str) -> str:
    return table_path(args.lake_root, getattr(args, zone_arg), table)


def run_job(
    app_name: str,
    parser: argparse.ArgumentParser,
    run: Callable[[SparkSession, argparse.Namespace, Reporter], None],
    argv: list[str] | None = None,
) -> None:
    """A job's ``main()``: parse arguments, open the session and the reporter, always stop."""
    args = parse(parser, argv)
    spark = build_spark(app_name)
    try:
        with open_reporter() as reporter:
            run(spark, args, reporter)
    finally:
        spark.stop()
