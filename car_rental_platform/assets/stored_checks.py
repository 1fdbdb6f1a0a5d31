"""Checks on the stored tables, for runs that execute checks without materializing.

"Execute" on a check starts a run that selects the check and no asset. Rewriting the tables
to check them would be wrong (and on AWS it would start an EMR run), so the measures are
taken with SQL through the query engine, which serves both deployments (DuckDB locally,
Athena on AWS), and judged by the same rules as the Spark jobs' (the ``*_verdict`` functions
of ``spark_jobs.quality``). Processed conservation counts the records of the latest landed
export, as its raw materialization recorded them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

import dagster as dg

from car_rental_platform.resources.query import QueryEngine, quote_identifier
from car_rental_platform.resources.spark import DagsterReporter
from spark_jobs import quality
from spark_jobs.contract import (
    REJECTED_ROWS_TABLE,
    RENTALS,
    Check,
    KpiTable,
    SourceTable,
    Zone,
)
from spark_jobs.quality import CheckOutcome, KpiMeasures, RentalTotals, kpi_verdicts


def require_cataloged(engine: QueryEngine, tables: Iterable[str]) -> None:
    """Fail naming the catalog entries to materialize when a table to measure has none.

    A check-only run reads the tables through the catalog, which may not have them yet (a
    new lake, or a table materialized while the automation was off).
    """
    database = engine.database.replace("'", "''")
    present = set(
        engine.query(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{database}'"
        )["table_name"]
    )
    missing = sorted(set(tables) - present)
    if missing:
        raise dg.Failure(
            description=(
                f"Cannot measure the stored table(s) {', '.join(missing)}: "
                f"{engine.database} has no such table. Materialize "
                f"{', '.join(f'catalog/{name}' for name in missing)} (or the tables themselves)."
            )
        )


def _null(value: object) -> bool:
    """SQL NULL as pandas returns it: None, or NaN in a numeric column (NaN != NaN)."""
    return value is None or value != value


def _decimal(value: object) -> Decimal | None:
    """A sum cast to text by the engine, back as an exact Decimal (None for an empty table)."""
    return None if _null(value) else Decimal(str(value))


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
    revenue = quote_identifier(table.revenue_column)
    count = quote_identifier(table.count_column)
    source = engine.table_name(table.name)
    row = engine.query(
        f"SELECT {_rows_and_keys(source, table.key)}, "
        f"(SELECT CAST(sum({revenue}) AS VARCHAR) FROM {source}) AS revenue, "
        f"(SELECT sum({count}) FROM {source}) AS total"
    ).iloc[0]
    total = row["total"]
    return KpiMeasures(
        rows=int(row["n"]),
        keys=int(row["keys"]),
        revenue=_decimal(row["revenue"]),
        count=None if _null(total) else int(total),
    )


def _rows_and_keys(source: str, key: Iterable[str]) -> str:
    """Select items ``n`` (rows) and ``keys`` (distinct values of ``key``) of ``source``."""
    columns = ", ".join(quote_identifier(c) for c in key)
    return (
        f"(SELECT count(*) FROM {source}) AS n, "
        f"(SELECT count(*) FROM (SELECT {columns} FROM {source} GROUP BY {columns}) AS k) AS keys"
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
    require_cataloged(engine, [RENTALS.name, *(table.name for table in tables)])
    totals = stored_rental_totals(engine)
    outcomes = {
        table.name: kpi_verdicts(table, stored_kpi_measures(engine, table), totals)
        for table in tables
    }
    yield from report_selected(context, Zone.KPI, outcomes, selected)


def stored_rows_and_keys(engine: QueryEngine, table: str, key: Iterable[str]) -> tuple[int, int]:
    """Rows and distinct keys of a stored table (a null key counts as a value, as in Spark)."""
    row = engine.query(f"SELECT {_rows_and_keys(engine.table_name(table), key)}").iloc[0]
    return int(row["n"]), int(row["keys"])


def stored_rejections(engine: QueryEngine) -> dict[str, dict[str, tuple[int, str]]]:
    """Per source table and reason: rejected rows and the first one's detail (an example)."""
    frame = engine.query(
        "SELECT source_table, reason, count(*) AS n, min(detail) AS example "
        f"FROM {engine.table_name(REJECTED_ROWS_TABLE)} GROUP BY source_table, reason"
    )
    found: dict[str, dict[str, tuple[int, str]]] = {}
    for row in frame.itertuples(index=False):
        found.setdefault(row.source_table, {})[row.reason] = (int(row.n), row.example or "")
    return found


def stored_unknown_references(engine: QueryEngine) -> CheckOutcome:
    """``references_known`` on the stored rentals: one left join per reference, as in Spark."""
    joins, counts, examples = [], [], []
    for index, (name, (column, table, key)) in enumerate(quality.UNKNOWN_REFERENCES.items()):
        alias = f"k{index}"
        joins.append(
            f"LEFT JOIN (SELECT DISTINCT {quote_identifier(key)} AS id "
            f"FROM {engine.table_name(table)}) AS {alias} "
            f"ON r.{quote_identifier(column)} = {alias}.id"
        )
        counts.append(f"sum(CASE WHEN {alias}.id IS NULL THEN 1 ELSE 0 END) AS {name}")
        examples.append(f"min(CASE WHEN {alias}.id IS NULL THEN r.rental_id END) AS e{index}")
    unknown = " OR ".join(f"k{i}.id IS NULL" for i in range(len(joins)))
    row = engine.query(
        f"SELECT {', '.join(counts)}, {', '.join(examples)}, "
        f"sum(CASE WHEN {unknown} THEN 1 ELSE 0 END) AS total "
        f"FROM {engine.table_name(RENTALS.name)} AS r {' '.join(joins)}"
    ).iloc[0]
    return quality.references_verdict(
        {name: _count(row[name]) for name in quality.UNKNOWN_REFERENCES},
        _count(row["total"]),
        {None if _null(v) else v for v in (row[f"e{i}"] for i in range(len(joins)))},
    )


def _count(value: object) -> int:
    """A SQL sum over no rows is NULL (NaN once in pandas): zero rows counted."""
    return 0 if _null(value) else int(value)


@dataclass(frozen=True)
class Landed:
    """What the latest raw materialization of an input recorded: its records and source."""

    records: int | None
    source: str


def stored_processed_outcomes(
    engine: QueryEngine,
    tables: Iterable[SourceTable],
    landed: Mapping[str, Landed],
    max_reject_rate: float,
) -> dict[str, dict[Check, CheckOutcome]]:
    """Every processed check of ``tables``, measured on what is stored."""
    tables = list(tables)
    references = (
        [name for _, name, _ in quality.UNKNOWN_REFERENCES.values()]
        if any(table.name == RENTALS.name for table in tables)
        else []
    )
    needed = [REJECTED_ROWS_TABLE, *(table.name for table in tables), *references]
    require_cataloged(engine, dict.fromkeys(needed))
    rejections = stored_rejections(engine)
    outcomes: dict[str, dict[Check, CheckOutcome]] = {}
    for table in tables:
        rows, keys = stored_rows_and_keys(engine, table.name, [table.key])
        by_reason = rejections.get(table.name, {})
        counts = {reason: n for reason, (n, _) in by_reason.items()}
        problems = sorted(
            (
                (reason, n, repr(example) if example else "")
                for reason, (n, example) in by_reason.items()
            ),
            key=lambda problem: (-problem[1], problem[0]),
        )
        source = landed[table.name]
        if source.records is None:
            conserved = CheckOutcome(
                passed=False,
                metadata={
                    "problem": f"no landing of {table.file_name} is recorded: materialize "
                    f"{Zone.RAW.value}/{table.name} first"
                },
            )
            rate = conserved
        else:
            conserved = quality.conservation_verdict(
                source.records, rows, sum(counts.values()), source.source
            )
            rate = quality.reject_rate_verdict(source.records, counts, max_reject_rate, problems)
        outcomes[table.name] = {
            Check.ROWS_CONSERVED: conserved,
            Check.PRIMARY_KEY_UNIQUE: quality.unique_key_verdict(rows, keys, [table.key]),
            Check.REJECT_RATE: rate,
        }
        if table.name == RENTALS.name:
            outcomes[table.name][Check.REFERENCES_KNOWN] = stored_unknown_references(engine)
    return outcomes


def latest_landing(context: dg.AssetExecutionContext, key: dg.AssetKey) -> Landed:
    """Records and source of the input's latest raw materialization on this instance."""
    event = context.instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event else None
    if materialization is None:
        return Landed(records=None, source="")
    metadata = materialization.metadata
    records = metadata.get("dagster/row_count") or metadata.get("row_count")
    source = metadata.get("source")
    return Landed(
        records=None if records is None else int(records.value),
        source=str(source.value) if source is not None else "",
    )


def report_selected(
    context: dg.AssetExecutionContext,
    zone: Zone,
    outcomes: Mapping[str, Mapping[Check, CheckOutcome]],
    selected: set[dg.AssetCheckKey],
) -> Iterator[dg.AssetCheckResult]:
    """The selected checks among ``outcomes``, typed the way the jobs' reports are."""
    reporter = DagsterReporter(context)
    for table, checks in outcomes.items():
        for check, outcome in checks.items():
            reporter.check(f"{zone.value}/{table}", check.value, outcome)
    for result in reporter.results:
        if isinstance(result, dg.AssetCheckResult) and (
            dg.AssetCheckKey(result.asset_key, result.check_name) in selected
        ):
            yield result
