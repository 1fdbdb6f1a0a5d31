"""spark-submit job: processed Parquet -> the KPI tables (all seven, or those named).

    spark-submit spark_jobs/kpi_job.py --lake-root LAKE_ROOT [--tables daily_metrics,user_metrics]

One Spark application computes every requested table from the processed tables (read, not
cached: each KPI reads only the Parquet columns it needs, which measured faster than building
an in-memory cache of rentals), stages them, checks them, and publishes ``<root>/kpi/<table>/``
when no blocking check failed (replaced, so a re-run is idempotent). With the groupings'
partials kept by the last run and only rentals batches added since, it aggregates just the
added rows and merges them in (``kpi_state``); those rows, and the earlier ones sharing a
vehicle or user with them, are then the only rentals cached.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import cli, kpi_state, quality
from spark_jobs.contract import (
    KPI_BY_NAME,
    LOCATIONS,
    RENTALS,
    SOURCES_BY_NAME,
    USER_METRICS,
    USERS,
    VEHICLES,
    Check,
    Zone,
)
from spark_jobs.kpis import KPI_FUNCTIONS, Aggregation, KpiInputs
from spark_jobs.markdown import markdown_table
from spark_jobs.publish import publish, staging_path
from spark_jobs.reporting import Reporter

WRITE_THREADS = 4
"""KPI tables are small: writing several at once keeps the cores busy between tiny jobs."""
BUILT_FIRST = USER_METRICS.name
"""One row per renting user: its chain (partials merged, percent_rank over every user, the
table written and read back for its checks) is the longest, so it starts first and the six
small tables are built beside it, not before it."""
PREVIEW_ROWS = 10
"""Previews show the tables' top rows by revenue, the figure a reader looks for first."""


@dataclass(frozen=True)
class Built:
    """One KPI table staged: its rows, its preview and its checks' outcomes."""

    name: str
    rows: int
    preview: str
    checks: dict[Check, quality.CheckOutcome]


def parse_tables(value: str | None) -> list[str]:
    """Requested KPI names in contract order (no ``--tables``: all seven)."""
    return cli.table_list(value, list(KPI_BY_NAME), "--tables")


def build_order(names: list[str]) -> list[str]:
    """The requested tables as they are built: ``BUILT_FIRST`` first, then contract order."""
    return sorted(names, key=lambda name: name != BUILT_FIRST)


def read_inputs(spark: SparkSession, args: argparse.Namespace) -> KpiInputs:
    def read(name: str) -> DataFrame:
        # Partition columns come last from a Hive-partitioned folder: contract order again.
        columns = [c.name for c in SOURCES_BY_NAME[name].processed_columns]
        return spark.read.parquet(cli.lake_path(args, "processed_zone", name)).select(*columns)

    return KpiInputs(
        rentals=read(RENTALS.name),
        vehicles=read(VEHICLES.name),
        users=read(USERS.name),
        locations=read(LOCATIONS.name),
    )


def run(spark: SparkSession, args: argparse.Namespace, reporter: Reporter) -> None:
    """Stage every requested table, check them, then publish them together or not at all.

    With the partials kept by the last run, and only rentals batches added since, the tables
    are the kept partials merged with the added rows' (``kpi_state``); otherwise every rental
    is aggregated. Either way the partials are staged, and kept with the tables.
    """
    names = parse_tables(args.tables)
    inputs = read_inputs(spark, args)
    plan = kpi_state.plan(spark, args, names, inputs.vehicles)
    aggregation = Aggregation()
    if plan.added is not None:
        aggregation = kpi_state.appending(spark, args, inputs.rentals, plan)
    inputs = replace(inputs, aggregation=aggregation, stage=kpi_state.stage(spark, args))
    reporter.log(f"computing {len(names)} KPI table(s), {plan.summary}: {', '.join(names)}")

    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        totals = pool.submit(quality.rental_totals, inputs.rentals)

        def build(name: str) -> Built:
            """Stage the table, then read it back (not cached: user_metrics is one row per
            user) for its preview and its checks, whose pass also counts its rows."""
            kpi, staged = KPI_BY_NAME[name], staging_path(args, "kpi_zone", name)
            KPI_FUNCTIONS[name](inputs).coalesce(1).write.mode("overwrite").parquet(staged)
            table = spark.read.parquet(staged)
            by_revenue = table.orderBy(F.col(kpi.revenue_column).desc_nulls_last())
            preview = markdown_table(by_revenue.limit(PREVIEW_ROWS).collect(), table.columns)
            measures = quality.kpi_measures(table, kpi)
            checks = quality.kpi_verdicts(kpi, measures, totals.result())
            return Built(name, measures.rows, preview, checks)

        by_name = {b.name: b for b in pool.map(build, build_order(names))}
    built = [by_name[name] for name in names]
    outcomes = {item.name: item.checks for item in built}
    failures = quality.blocking_failures(outcomes)
    if failures:
        reporter.log(
            "Not published (the KPI tables stay as they were): blocking check(s) failed: "
            + ", ".join(failures)
        )
    else:
        kpi_state.start_publishing(spark, args)
        for item in built:
            path = publish(spark, args, "kpi_zone", item.name)
            reporter.log(f"{item.name}: {item.rows} rows -> {path}")
            reporter.report(
                f"{Zone.KPI}/{item.name}",
                {
                    "row_count": item.rows,
                    "path": path,
                    "aggregated": plan.summary,
                    "preview": {"raw_value": item.preview, "type": "md"},
                },
            )
        kpi_state.publish(spark, args, plan)
    for name, checks in outcomes.items():
        for check, outcome in checks.items():
            reporter.check(f"{Zone.KPI}/{name}", check, outcome)


def parser() -> argparse.ArgumentParser:
    parser = cli.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--tables", help="Comma-separated KPI table names (default: all seven).")
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    return cli.parse(parser(), argv)


def main(argv: list[str] | None = None) -> None:
    cli.run_job("car-rental-kpis", parser(), run, argv)


if __name__ == "__main__":
    main()
