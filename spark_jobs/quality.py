"""Data-quality measurements behind the asset checks, computed on the written Parquet.

The jobs read back what they wrote, so a check speaks of the table as stored, and the same
code runs locally and on EMR. Results travel to Dagster as Pipes asset-check reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.contract import BLOCKING_CHECKS, LOCATIONS, USERS, VEHICLES, Check, KpiTable
from spark_jobs.markdown import markdown_table


@dataclass(frozen=True)
class CheckOutcome:
    """One check on one table, ready to report."""

    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "ERROR"


def duplicate_keys(df: DataFrame, key: tuple[str, ...] | list[str]) -> CheckOutcome:
    """Rows whose key value occurs more than once (null keys count as a value)."""
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(F.struct(*key)).alias("keys"),
    ).first()
    return unique_key_verdict(stats["rows"], stats["keys"], key)


def new_keys_unique(new: DataFrame, published: DataFrame, key: str) -> CheckOutcome:
    """``primary_key_unique`` of rows added beside a published table whose keys are unique
    (checked when they were published, and unchanged since): the new keys must be unique among
    themselves and absent from the published ones.

    One pass over the published keys, each probed against the new ones (a broadcast when the
    new rows are few, Spark's choice), instead of a distinct count over the whole table.
    """
    added = new.agg(
        F.count(F.lit(1)).alias("rows"), F.count_distinct(F.struct(key)).alias("keys")
    ).first()
    probe = new.select(key).distinct().withColumn("_new", F.lit(True))
    beside = (
        published.select(key)
        .join(probe, key, "left")
        .agg(F.count(F.lit(1)).alias("rows"), F.count("_new").alias("clashes"))
        .first()
    )
    rows = added["rows"] + beside["rows"]
    duplicates = added["rows"] - added["keys"] + beside["clashes"]
    return unique_key_verdict(rows, rows - duplicates, [key])


def unique_key_verdict(rows: int, keys: int, key: tuple[str, ...] | list[str]) -> CheckOutcome:
    """``primary_key_unique`` from its measures (by Spark, or by SQL for check-only runs)."""
    return CheckOutcome(
        passed=rows == keys,
        metadata={"rows": rows, "duplicate_rows": rows - keys, "key": ", ".join(key)},
    )


def conservation_verdict(rows_in: int, kept: int, rejected: int, source: str) -> CheckOutcome:
    """``rows_conserved``: records landed from the export = rows kept + rows rejected."""
    return CheckOutcome(
        passed=rows_in == kept + rejected,
        metadata={
            "raw_rows": rows_in,
            "kept_rows": kept,
            "rejected_rows": rejected,
            "difference": rows_in - kept - rejected,
            "source": source,
        },
    )


Problem = tuple[str, int, str]
"""(what failed, rows, example values) of rejected rows."""
PROBLEM_COLUMNS = ["problem", "rows", "examples"]


def reject_rate_verdict(
    rows_in: int, rejected_by_reason: Mapping[str, int], limit: float, problems: list[Problem]
) -> CheckOutcome:
    """``reject_rate_within_limit``: the share of the input's records rejected, against the
    limit, naming the most frequent problem (``problems`` most frequent first)."""
    rejected = sum(rejected_by_reason.values())
    rate = rejected / rows_in if rows_in else 0.0
    metadata: dict[str, Any] = {
        "rows_in": rows_in,
        "rows_rejected": rejected,
        "reject_rate": round(rate, 4),
        "max_reject_rate": limit,
        "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
    }
    if problems:
        message, rows, examples = problems[0]
        metadata["top_problem"] = f"{message}: {rows:,} of {rows_in:,} rows" + (
            f", e.g. {examples}" if examples else ""
        )
        metadata["problems"] = {
            "raw_value": markdown_table(problems, PROBLEM_COLUMNS),
            "type": "md",
        }
    return CheckOutcome(passed=rate <= limit, metadata=metadata)


UNKNOWN_REFERENCES = {
    "rentals_with_unknown_user": ("user_id", USERS.name, USERS.key),
    "rentals_with_unknown_vehicle": ("vehicle_id", VEHICLES.name, VEHICLES.key),
    "rentals_with_unknown_pickup_location": ("pickup_location", LOCATIONS.name, LOCATIONS.key),
    "rentals_with_unknown_dropoff_location": ("dropoff_location", LOCATIONS.name, LOCATIONS.key),
}
"""``references_known``'s counts: the rentals column, and the table and key it names."""


def unknown_references(
    rentals: DataFrame, vehicles: DataFrame, users: DataFrame, locations: DataFrame
) -> CheckOutcome:
    """Rentals pointing at a user, vehicle or location id absent from its table (a warning).

    One pass: each reference is left-joined to its table's ids with a marker column, and a
    single aggregate counts the rentals whose marker stayed null, the rentals with any unknown
    reference, and the first such rental_id of each kind (examples a user can look up).
    """
    tables = {USERS.name: users, VEHICLES.name: vehicles, LOCATIONS.name: locations}
    references = {
        name: (column, tables[table], key)
        for name, (column, table, key) in UNKNOWN_REFERENCES.items()
    }
    columns = dict.fromkeys(["rental_id", *(column for column, _, _ in references.values())])
    joined = rentals.select(*columns)
    for name, (column, table, key) in references.items():
        known = table.select(F.col(key).alias(column), F.lit(True).alias(name)).distinct()
        joined = joined.join(known, column, "left")
    unknown = [F.col(name).isNull() for name in references]
    any_unknown = unknown[0]
    for condition in unknown[1:]:
        any_unknown = any_unknown | condition
    row = joined.agg(
        *[F.count_if(F.col(name).isNull()).alias(name) for name in references],
        F.count_if(any_unknown).alias("total"),
        *[
            F.min(F.when(condition, F.col("rental_id"))).alias(f"example_{index}")
            for index, condition in enumerate(unknown)
        ],
    ).first()
    counts = {name: int(row[name]) for name in references}
    examples = {row[f"example_{i}"] for i in range(len(unknown))}
    return references_verdict(counts, int(row["total"]), examples)


def references_verdict(counts: Mapping[str, int], total: int, examples: set) -> CheckOutcome:
    """``references_known`` (a warning) from its counts and one example rental_id per kind."""
    return CheckOutcome(
        passed=not any(counts.values()),
        metadata={
            **counts,
            "rentals_with_unknown_references": total,
            "example_rental_ids": ", ".join(sorted(examples - {None})),
        },
        severity="WARN",
    )


@dataclass(frozen=True)
class RentalTotals:
    rentals: int
    revenue: Decimal


def rental_totals(rentals: DataFrame) -> RentalTotals:
    row = rentals.agg(F.count(F.lit(1)).alias("n"), F.sum("total_amount").alias("revenue")).first()
    return RentalTotals(rentals=row["n"], revenue=row["revenue"] or Decimal("0.00"))


def kpi_measures(kpi: DataFrame, table: KpiTable) -> KpiMeasures:
    """What the KPI checks measure on one KPI table (``kpi_verdicts`` judges them), in one
    pass over it."""
    row = kpi.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(F.struct(*table.key)).alias("keys"),
        F.sum(table.revenue_column).alias("revenue"),
        F.sum(table.count_column).alias("count"),
    ).first()
    return KpiMeasures(
        rows=row["rows"], keys=row["keys"], revenue=row["revenue"], count=row["count"]
    )


@dataclass(frozen=True)
class KpiMeasures:
    """What the KPI checks measure on a stored table (by Spark, or by SQL for check-only runs)."""

    rows: int
    keys: int
    """Distinct values of the table's key (a null key counts as a value)."""
    revenue: Decimal | None
    count: int | None


def kpi_verdicts(
    table: KpiTable, measures: KpiMeasures, totals: RentalTotals
) -> dict[Check, CheckOutcome]:
    """The KPI checks' outcomes from their measures: one home for the rules and metadata keys."""
    revenue = measures.revenue or Decimal("0.00")
    count = measures.count or 0
    return {
        Check.TOTALS_MATCH_RENTALS: CheckOutcome(
            passed=revenue == totals.revenue and count == totals.rentals,
            metadata={
                f"table_{table.revenue_column}": float(revenue),
                "rentals_revenue": float(totals.revenue),
                f"table_{table.count_column}": int(count),
                "rentals_count": totals.rentals,
            },
        ),
        Check.NOT_EMPTY: CheckOutcome(
            passed=measures.rows > 0 or totals.rentals == 0,
            metadata={"rows": measures.rows, "rentals_count": totals.rentals},
        ),
        Check.PRIMARY_KEY_UNIQUE: CheckOutcome(
            passed=measures.rows == measures.keys,
            metadata={
                "rows": measures.rows,
                "duplicate_rows": measures.rows - measures.keys,
                "key": ", ".join(table.key),
            },
        ),
    }


def blocking_failures(outcomes: Mapping[str, Mapping[Check, CheckOutcome]]) -> list[str]:
    """``"<table> <check>"`` for each failed blocking check of severity ERROR: what holds a
    job's tables back from publication."""
    return [
        f"{table} {check}"
        for table, checks in outcomes.items()
        for check, outcome in checks.items()
        if check in BLOCKING_CHECKS and not outcome.passed and outcome.severity == "ERROR"
    ]
