"""KPI checks on the stored tables, for runs that execute checks without materializing.

"Execute" on a KPI check starts a run that selects the check and no asset. Rewriting the
tables to check them would be wrong (and on AWS it would start an EMR run), so the measures
are taken with SQL through the query engine, which serves both deployments (DuckDB locally,
Athena on AWS), and judged by the same rules as the Spark job's (``quality.kpi_verdicts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

import dagster as dg

from car_rental_platform.resources.query import QueryEngine, quote_identifier
from car_rental_platform.resources.spark import DagsterReporter
from spark_jobs.contract import RENTALS, KpiTable, Zone
from spark_jobs.quality import KpiMeasures, RentalTotals, kpi_verdicts


def _decimal(value: object) -> Decimal | None:
    """A sum cast to text by the engine, back as an exact Decimal (None for an empty table)."""
    return None if value is None or value != value else Decimal(str(value))


def stored_rental_totals(engine: QueryEngine) -> RentalTotals:
    """Rentals and their revenue in the catalog's processed ``rentals`` table."""
    row = engine.query(
        "SELECT count(*) AS n, CAST(sum(total_amount) AS VARCHAR) AS revenue "
        f"FROM {engine.table_name(RENTALS.name)}"
    ).iloc[0]
    return RentalTotals(rentals=int(row["n"]), revenue=_decimal(row["revenue"]) or Decimal("0"))


def stored_kpi_measures(engine: QueryEngine, table: KpiTable) -> KpiMeasures:
    """Rows, distinct keys and the invariant sums of one stored KPI table, in one statement.

    Distinct keys by GROUP BY, which both dialects share and which counts a null key as a
    value, as Spark's ``count_distinct(struct(...))`` does.
    """
    key = ", ".join(quote_identifier(c) for c in table.key)
    revenue = quote_identifier(table.revenue_column)
    count = quote_identifier(table.count_column)
    source = engine.table_name(table.name)
    row = engine.query(
        f"SELECT (SELECT count(*) FROM {source}) AS n, "
        f"(SELECT count(*) FROM (SELECT {key} FROM {source} GROUP BY {key}) AS k) AS keys, "
        f"(SELECT CAST(sum({revenue}) AS VARCHAR) FROM {source}) AS revenue, "
        f"(SELECT sum({count}) FROM {source}) AS total"
    ).iloc[0]
    total = row["total"]
    return KpiMeasures(
        rows=int(row["n"]),
        keys=int(row["keys"]),
        revenue=_decimal(row["revenue"]),
        count=None if total is None or total != total else int(total),
    )


def stored_kpi_checks(
    context: dg.AssetExecutionContext,
    engine: QueryEngine,
    tables: Iterable[KpiTable],
    selected: set[dg.AssetCheckKey],
) -> Iterator[dg.AssetCheckResult]:
    """The selected checks of ``tables``, measured on what is stored; nothing is written."""
    tables = list(tables)
    if not tables:
        return
    totals = stored_rental_totals(engine)
    reporter = DagsterReporter(context)
    for table in tables:
        asset_key = f"{Zone.KPI.value}/{table.name}"
        for check, outcome in kpi_verdicts(
            table, stored_kpi_measures(engine, table), totals
        ).items():
            reporter.check(asset_key, check.value, outcome)
    for result in reporter.results:
        if isinstance(result, dg.AssetCheckResult) and (
            dg.AssetCheckKey(result.asset_key, result.check_name) in selected
        ):
            yield result
