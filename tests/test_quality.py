"""The quality measurements of spark_jobs/quality.py on small frames (Spark)."""

from __future__ import annotations

from decimal import Decimal

from spark_jobs.contract import BLOCKING_CHECKS, KPI_BY_NAME, Check
from spark_jobs.quality import (
    KpiMeasures,
    RentalTotals,
    duplicate_keys,
    kpi_verdicts,
    new_keys_unique,
    unknown_references,
)


def test_unknown_references_warn_with_a_total_and_example_rental_ids(spark) -> None:
    rentals = spark.createDataFrame(
        [
            ("r1", "u1", "v1", 1, 1),
            ("r2", "u9", "v1", 1, 1),  # unknown user
            ("r3", "u1", "v9", 9, 1),  # unknown vehicle and pick-up location
            ("r4", "u1", "v1", 1, 9),  # unknown drop-off location
            ("r5", "u8", "v1", 1, 1),  # unknown user
        ],
        "rental_id string, user_id string, vehicle_id string, "
        "pickup_location int, dropoff_location int",
    )
    users = spark.createDataFrame([("u1",)], "user_id string")
    vehicles = spark.createDataFrame([("v1",)], "vehicle_id string")
    locations = spark.createDataFrame([(1,)], "location_id int")

    outcome = unknown_references(rentals, vehicles, users, locations)

    assert not outcome.passed
    assert outcome.severity == "WARN"
    assert dict(outcome.metadata) == {
        "rentals_with_unknown_user": 2,
        "rentals_with_unknown_vehicle": 1,
        "rentals_with_unknown_pickup_location": 1,
        "rentals_with_unknown_dropoff_location": 1,
        "rentals_with_unknown_references": 4,
        "example_rental_ids": "r2, r3, r4",
    }


def test_known_references_pass(spark) -> None:
    rentals = spark.createDataFrame(
        [("r1", "u1", "v1", 1, 1)],
        "rental_id string, user_id string, vehicle_id string, "
        "pickup_location int, dropoff_location int",
    )
    outcome = unknown_references(
        rentals,
        spark.createDataFrame([("v1",)], "vehicle_id string"),
        spark.createDataFrame([("u1",)], "user_id string"),
        spark.createDataFrame([(1,)], "location_id int"),
    )
    assert outcome.passed
    assert outcome.metadata["rentals_with_unknown_references"] == 0
    assert outcome.metadata["example_rental_ids"] == ""


def test_a_repeated_key_fails_primary_key_unique_a_blocking_error(spark) -> None:
    table = spark.createDataFrame(
        [("u1", "a"), ("u2", "b"), ("u1", "c"), (None, "d"), (None, "e")],
        "user_id string, x string",
    )
    outcome = duplicate_keys(table, ["user_id"])
    assert (outcome.passed, outcome.severity) == (False, "ERROR")
    # 5 rows, 3 distinct keys (u1, u2 and null, which counts as a value): 2 duplicates
    assert dict(outcome.metadata) == {"rows": 5, "duplicate_rows": 2, "key": "user_id"}
    assert Check.PRIMARY_KEY_UNIQUE in BLOCKING_CHECKS
    assert duplicate_keys(table.where("x in ('a', 'b', 'd')"), ["user_id"]).passed


def test_new_keys_must_be_unique_and_absent_from_the_published_ones(spark) -> None:
    published = spark.createDataFrame([("R1",), ("R2",), ("R3",)], "rental_id string")
    new = spark.createDataFrame([("R4",), ("R5",)], "rental_id string")
    outcome = new_keys_unique(new, published, "rental_id")
    assert outcome.passed
    assert dict(outcome.metadata) == {"rows": 5, "duplicate_rows": 0, "key": "rental_id"}
    # R2 again (published) and R6 twice (among the new): 2 duplicates in 6 + 3 rows
    clashing = spark.createDataFrame(
        [("R2",), ("R6",), ("R6",), ("R7",)], "rental_id string"
    ).unionByName(new)
    outcome = new_keys_unique(clashing, published, "rental_id")
    assert not outcome.passed
    assert dict(outcome.metadata) == {"rows": 9, "duplicate_rows": 2, "key": "rental_id"}


def test_kpi_totals_off_by_a_cent_fail_totals_match_rentals() -> None:
    table = KPI_BY_NAME["daily_metrics"]
    totals = RentalTotals(rentals=3, revenue=Decimal("30.50"))
    off = KpiMeasures(rows=2, keys=2, revenue=Decimal("30.49"), count=3)
    verdict = kpi_verdicts(table, off, totals)[Check.TOTALS_MATCH_RENTALS]
    assert (verdict.passed, verdict.severity) == (False, "ERROR")
    assert dict(verdict.metadata) == {
        "table_total_revenue": 30.49,
        "rentals_revenue": 30.5,
        "table_total_transactions": 3,
        "rentals_count": 3,
    }
    exact = KpiMeasures(rows=2, keys=2, revenue=Decimal("30.50"), count=3)
    assert kpi_verdicts(table, exact, totals)[Check.TOTALS_MATCH_RENTALS].passed
