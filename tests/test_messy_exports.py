"""Messy exports through landing and the transform job: nothing lost, bad data held back.

Tiny hand-written exports, landed with the real landing code and cleaned by the real job on a
real Spark session; expected figures are counted by hand in the comments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession

from spark_jobs import kpi_job, transform_job
from spark_jobs.contract import (
    LOCATIONS,
    RENTALS,
    USERS,
    VEHICLES,
    Check,
    RentalBatch,
    batch_folder,
)
from spark_jobs.raw_format import MANIFEST
from tests.spark_fixtures import RecordingReporter, land_lines, rows

PROJECT = Path(__file__).resolve().parents[1]
VEHICLE = (
    "1,LIC1,Reg,FHV,27-09-2026,P1,2018-01-09,2018,555,1 Base Rd,V1,15-03-2024 10:00:00,BMW,basic"
)
VEHICLE_HEADER = ",".join(VEHICLES.column_names)
USER_LINES = [",".join(USERS.column_names), "U1,Ann,Lee,a@x.com,p,A1,2027-01-31,2020-01-01,1"]
LOCATION_LINES = [
    ",".join(LOCATIONS.column_names),
    "1,Airport,1 Rd,Boston,MA,02128,42.36,-71.0",
    "2,Downtown,2 Rd,Boston,MA,02108,42.35,-71.06",
]
RENTAL_HEADER = ",".join(RENTALS.column_names)


def rental(n: int, start: str = "2024-03-10 10:00:00", amount: str = "10.00") -> str:
    end = start.replace("10:00", "11:00") if "10:00" in start else start
    return f"R{n},U1,V1,{start},{end},1,2,{amount}"


GOOD_RENTALS = [RENTAL_HEADER, rental(1), rental(2), rental(3, amount="20.50")]


def land_all(lake: Path, **lines: list[str]) -> None:
    """Land the four exports (defaults: one vehicle, one user, two locations, 3 rentals)."""
    exports = {
        VEHICLES: lines.get("vehicles", [VEHICLE_HEADER, VEHICLE]),
        USERS: lines.get("users", USER_LINES),
        LOCATIONS: lines.get("locations", LOCATION_LINES),
        RENTALS: lines.get("rentals", GOOD_RENTALS),
    }
    for table, content in exports.items():
        land_lines(lake, table, content)


def transform(spark: SparkSession, lake: Path, *extra: str) -> RecordingReporter:
    reporter = RecordingReporter()
    transform_job.run(spark, transform_job.parse_args(["--lake-root", str(lake), *extra]), reporter)
    return reporter


def read(spark: SparkSession, lake: Path, table: str) -> list[dict]:
    return rows(spark.read.parquet(str(lake / "processed" / table)))


def files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_a_quoted_address_spanning_lines_is_kept_whole(spark, tmp_path: Path) -> None:
    land_all(
        tmp_path,
        locations=[
            LOCATION_LINES[0],
            '1,Airport,"Terminal 1\r\nGate 5",Boston,MA,02128,42.36,-71.0',
            LOCATION_LINES[2],
        ],
    )
    reporter = transform(spark, tmp_path)
    kept = {r["location_id"]: r["address"] for r in read(spark, tmp_path, "locations")}
    assert kept == {1: "Terminal 1\nGate 5", 2: "2 Rd"}
    conserved = reporter.checks[("processed/locations", Check.ROWS_CONSERVED)]
    assert conserved.passed
    assert conserved.metadata["raw_rows"] == 2  # two records on three lines


def test_junk_lines_become_rejected_rows_with_their_line_and_reason(spark, tmp_path: Path) -> None:
    users = [*USER_LINES, "\x00", "   ", "", "U2,Bo,Li,b@x.com,p,B1,2027-01-31,2020-01-01,0\x1a"]
    land_all(tmp_path, users=users)
    reporter = transform(spark, tmp_path, "--max-reject-rate", "1")
    assert sorted(r["user_id"] for r in read(spark, tmp_path, "users")) == ["U1", "U2"]
    rejected = [r for r in read(spark, tmp_path, "rejected_rows") if r["source_table"] == "users"]
    assert sorted((r["line"], r["reason"], r["detail"], r["record"]) for r in rejected) == [
        (
            3,
            "malformed_line",
            "the line holds only spaces or control characters",
            '{"line":"\\u0000"}',
        ),
        (4, "malformed_line", "the line holds only spaces or control characters", '{"line":"   "}'),
    ]
    conserved = reporter.checks[("processed/users", Check.ROWS_CONSERVED)]
    assert conserved.passed
    assert (conserved.metadata["raw_rows"], conserved.metadata["kept_rows"]) == (4, 2)


def test_whole_numbers_written_as_floats_are_accepted_and_halves_are_not(
    spark, tmp_path: Path
) -> None:
    pandas_vehicle = VEHICLE.replace(",2018,", ",2018.0,").replace("1,LIC1", "1.00,LIC1")
    half = VEHICLE.replace(",2018,", ",2018.5,").replace(",V1,", ",V2,")
    rentals = [RENTAL_HEADER, rental(1).replace(",1,2,", ",1.0,2.00,")]
    land_all(tmp_path, vehicles=[VEHICLE_HEADER, pandas_vehicle, half], rentals=rentals)
    transform(spark, tmp_path, "--max-reject-rate", "1")
    vehicles = read(spark, tmp_path, "vehicles")
    assert [(v["vehicle_id"], v["vehicle_year"], v["active"]) for v in vehicles] == [
        ("V1", 2018, 1)
    ]
    rentals_kept = read(spark, tmp_path, "rentals")
    assert [(r["pickup_location"], r["dropoff_location"]) for r in rentals_kept] == [(1, 2)]
    rejected = read(spark, tmp_path, "rejected_rows")
    assert [(r["line"], r["reason"], r["detail"]) for r in rejected] == [
        (3, "unparseable_value", "vehicle_year is not a valid int")
    ]


def test_numbers_beyond_their_range_are_rejected_and_the_kpis_still_run(
    spark, tmp_path: Path
) -> None:
    rentals = [
        RENTAL_HEADER,
        rental(1),
        rental(2, amount="1234567890123456"),  # 16 digits: fits decimal(18,2), not the contract
        rental(3, amount="1e30"),  # does not fit decimal(18,2) at all
        rental(4).replace(",1,2,", ",99999999999,2,"),  # beyond int
        rental(5, amount="9999999.99"),  # the largest amount kept
        rental(6, amount="NaN"),  # not a number at all: unparseable, not out of range
        rental(7, amount="abc"),
    ]
    land_all(tmp_path, rentals=rentals)
    transform(spark, tmp_path, "--max-reject-rate", "1")
    assert sorted(r["rental_id"] for r in read(spark, tmp_path, "rentals")) == ["R1", "R5"]
    rejected = sorted(
        (r["line"], r["reason"], r["detail"]) for r in read(spark, tmp_path, "rejected_rows")
    )
    amount = "total_amount is out of range for decimal(18,2) (at most 9999999.99)"
    assert rejected == [
        (3, "value_out_of_range", amount),
        (4, "value_out_of_range", amount),
        (5, "value_out_of_range", "pickup_location is out of range for int"),
        (7, "unparseable_value", "total_amount is not a valid decimal(18,2)"),
        (8, "unparseable_value", "total_amount is not a valid decimal(18,2)"),
    ]
    kpis = RecordingReporter()
    kpi_job.run(spark, kpi_job.parse_args(["--lake-root", str(tmp_path)]), kpis)
    totals = kpis.checks[("kpi/daily_metrics", Check.TOTALS_MATCH_RENTALS)]
    assert totals.passed
    assert totals.metadata["rentals_revenue"] == 10_000_009.99  # 10.00 + 9,999,999.99


def test_a_column_in_another_format_fails_the_reject_rate_and_publishes_nothing(
    spark, tmp_path: Path
) -> None:
    land_all(tmp_path)
    transform(spark, tmp_path)
    published = files(tmp_path / "processed" / "rentals")

    # Re-saved by a spreadsheet: M/D/YYYY H:MM, so every rental's start fails to parse.
    resaved = [RENTAL_HEADER] + [
        f"R{n},U1,V1,3/{n}/2024 10:00,2024-03-10 11:00:00,1,2,10.00" for n in (1, 2, 3, 4)
    ]
    land_all(tmp_path, rentals=resaved)
    reporter = transform(spark, tmp_path)

    rate = reporter.checks[("processed/rentals", Check.REJECT_RATE)]
    assert not rate.passed
    assert rate.severity == "ERROR"
    assert (rate.metadata["rows_in"], rate.metadata["rows_rejected"]) == (4, 4)
    assert (rate.metadata["reject_rate"], rate.metadata["max_reject_rate"]) == (1.0, 0.1)
    top = rate.metadata["top_problem"]
    assert top.startswith(
        "rental_start_time is not a valid timestamp (yyyy-MM-dd HH:mm:ss): 4 of 4 rows, e.g. "
    )
    assert top.endswith("e.g. '3/1/2024 10:00', '3/4/2024 10:00'")  # the smallest and largest
    for table in ("vehicles", "users", "locations"):
        assert reporter.checks[(f"processed/{table}", Check.REJECT_RATE)].passed
    # Held back: yesterday's tables stay, none is reported; the rejected rows explain why.
    assert files(tmp_path / "processed" / "rentals") == published
    assert [key for key in reporter.reports] == ["processed/rejected_rows"]
    assert reporter.reports["processed/rejected_rows"]["row_count"] == 4
    assert any("Not published" in line and "rentals reject_rate" in line for line in reporter.logs)


def test_records_lost_between_landing_and_the_job_fail_conservation(spark, tmp_path: Path) -> None:
    land_all(tmp_path)
    manifest = tmp_path / "raw" / RENTALS.raw_name / batch_folder(RentalBatch(None)) / MANIFEST
    landed = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**landed, "records": landed["records"] + 1}))
    reporter = transform(spark, tmp_path)
    conserved = reporter.checks[("processed/rentals", Check.ROWS_CONSERVED)]
    assert not conserved.passed
    assert conserved.severity == "ERROR"
    assert {k: conserved.metadata[k] for k in ("raw_rows", "kept_rows", "difference")} == {
        "raw_rows": 4,
        "kept_rows": 3,
        "difference": 1,
    }
    assert not (tmp_path / "processed" / "rentals").exists()  # never published


def test_a_killed_transform_leaves_the_published_tables_whole(spark, tmp_path: Path) -> None:
    """SIGKILL a spark-submit-style run (python + its JVM) once it is writing, then re-run."""
    land_all(tmp_path)
    transform(spark, tmp_path)
    before = {t: files(tmp_path / "processed" / t) for t in ("users", "rentals", "rejected_rows")}

    land_all(tmp_path, rentals=[*GOOD_RENTALS, rental(4), rental(5)])
    staging = tmp_path / "_staging" / "processed"
    job = subprocess.Popen(
        [
            sys.executable,
            str(PROJECT / "spark_jobs" / "transform_job.py"),
            "--lake-root",
            str(tmp_path),
        ],
        cwd=PROJECT,
        env={  # the test's own PySpark (4.x, or 3.5 under make test-spark35)
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")]),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(staging.rglob("*.parquet")):  # the first staged file: it is writing
            assert job.poll() is None, "the job ended before it wrote anything"
            assert time.monotonic() < deadline, "the job never started writing"
            time.sleep(0.05)
        os.killpg(job.pid, signal.SIGKILL)
    finally:
        job.wait()
    assert {t: files(tmp_path / "processed" / t) for t in before} == before

    reporter = transform(spark, tmp_path)  # the re-run replaces leftovers and publishes
    assert reporter.reports["processed/rentals"]["row_count"] == 5
    assert sorted(r["rental_id"] for r in read(spark, tmp_path, "rentals")) == [
        "R1", "R2", "R3", "R4", "R5",
    ]  # fmt: skip
    assert not list((tmp_path / "processed").glob("*replaced*"))


def test_every_processed_check_is_reported_for_every_input(spark, tmp_path: Path) -> None:
    land_all(tmp_path)
    reporter = transform(spark, tmp_path)
    for table in ("vehicles", "users", "locations", "rentals"):
        for check in (Check.ROWS_CONSERVED, Check.PRIMARY_KEY_UNIQUE, Check.REJECT_RATE):
            outcome = reporter.checks[(f"processed/{table}", check)]
            assert (outcome.passed, outcome.severity) == (True, "ERROR"), (table, check)


def test_a_subset_cleans_and_publishes_only_the_tables_named(spark, tmp_path: Path) -> None:
    land_all(tmp_path)
    reporter = transform(spark, tmp_path, "--tables", "rentals")
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == ["rentals"]
    assert sorted(r["rental_id"] for r in read(spark, tmp_path, "rentals")) == ["R1", "R2", "R3"]
    assert list(reporter.reports) == ["processed/rentals"]
    assert {key for key, _ in reporter.checks} == {"processed/rentals"}
    assert not any(line.startswith("users:") for line in reporter.logs)  # not cleaned
    # The snapshots were never published: the references cannot be checked yet (a warning).
    outcome = reporter.checks[("processed/rentals", "references_known")]
    assert (outcome.passed, outcome.severity) == (False, "WARN")
    assert "not all processed yet" in outcome.metadata["reason"]
