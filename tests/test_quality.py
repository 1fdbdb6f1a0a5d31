"""The quality measurements of spark_jobs/quality.py on small frames (Spark)."""

from __future__ import annotations

from spark_jobs.quality import unknown_references


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
