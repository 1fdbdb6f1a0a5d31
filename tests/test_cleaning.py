"""Cleaning raw CSVs (DESIGN 3.1-3.2): every reject reason and its precedence, duplicates,
ids kept as strings, trimming, header checks, and the transform job end to end.

Each fixture file below is tiny and commented line by line with its expected outcome; the
expected counts are those comments added up by hand.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from spark_jobs import transform_job
from spark_jobs.contract import (
    LOCATIONS,
    REJECTED_ROWS_COLUMNS,
    RENTALS,
    SOURCE_TABLES,
    USERS,
    VEHICLES,
    RawSchemaError,
    SourceTable,
)
from tests.spark_fixtures import (
    RecordingReporter,
    clean_file,
    contract_dtypes,
    csv_line,
    land_export,
    land_lines,
    rows,
    write_lines,
)

MALFORMED = "malformed_line"
MISSING = "missing_required_value"
UNPARSEABLE = "unparseable_value"
END_NOT_AFTER_START = "end_not_after_start"
NEGATIVE = "negative_amount"
OUT_OF_RANGE = "coordinates_out_of_range"
DUPLICATE = "duplicate_key"

# --- Fixture files ---------------------------------------------------------------------------

RENTAL_LINES = [
    ",".join(RENTALS.column_names),
    # kept: 50.005 rounds half up to 50.01; 1h20m; starts 23:30 on 2024-03-10
    "R1,U1,V1,2024-03-10 23:30:00,2024-03-11 00:50:00,1,2,50.005",
    # kept: ids that look numeric stay strings; every value trimmed; amount 0 allowed; 7m30s
    " 0042 ,6e61610976,1e5, 2024-01-01 10:00:00 ,2024-01-01 10:07:30, 7 ,8,  0.00 ",
    # missing_required_value (user_id empty) beats unparseable_value (amount abc)
    "R3,,V1,2024-01-01 10:00:00,2024-01-01 11:00:00,1,1,abc",
    # missing_required_value: whitespace only
    "R4,U1,   ,2024-01-01 10:00:00,2024-01-01 11:00:00,1,1,5.00",
    # unparseable_value: there is no 30 February
    "R5,U1,V1,2024-02-30 10:00:00,2024-03-01 10:00:00,1,1,5.00",
    # unparseable_value: a quoted "12,50" is one field, not a malformed line
    'R6,U1,V1,2024-01-02 10:00:00,2024-01-02 11:00:00,1,1,"12,50"',
    # unparseable_value (pickup x) beats end_not_after_start
    "R7,U1,V1,2024-01-02 10:00:00,2024-01-02 09:00:00,x,1,5.00",
    # end_not_after_start: end == start
    "R8,U1,V1,2024-01-02 10:00:00,2024-01-02 10:00:00,1,1,5.00",
    # end_not_after_start beats negative_amount
    "R9,U1,V1,2024-01-02 10:00:00,2024-01-02 09:59:59,1,1,-5.00",
    # negative_amount
    "R10,U1,V1,2024-01-02 10:00:00,2024-01-02 11:00:00,1,1,-0.01",
    # malformed_line: 3 fields
    "R11,U1,V1",
    # malformed_line (9 fields) beats missing_required_value
    "R12,,V1,2024-01-02 10:00:00,2024-01-02 11:00:00,1,1,5.00,extra",
    # duplicate_key of R1 (the first R1 is kept)
    "R1,U2,V2,2024-01-03 10:00:00,2024-01-03 11:00:00,1,1,7.00",
    # duplicate_key of R1 once trimmed
    " R1 ,U2,V2,2024-01-03 10:00:00,2024-01-03 11:00:00,1,1,7.00",
    # kept: the earlier R3 was rejected, so this is no duplicate
    "R3,U3,V3,2024-01-04 10:00:00,2024-01-04 12:00:00,3,4,20.00",
    # end_not_after_start, not duplicate_key (the earlier R5 was rejected too)
    "R5,U1,V1,2024-01-05 10:00:00,2024-01-05 09:00:00,1,1,5.00",
    # kept: one second long; 0.015 rounds half up to 0.02
    "R13,U1,V1,2024-01-06 00:00:00,2024-01-06 00:00:01,1,1,0.015",
]
RENTAL_COUNTS = {
    None: 4,  # R1, 0042, second R3, R13
    MISSING: 2,  # R3, R4
    UNPARSEABLE: 3,  # R5, R6, R7
    END_NOT_AFTER_START: 3,  # R8, R9, second R5
    NEGATIVE: 1,  # R10
    MALFORMED: 2,  # R11, R12
    DUPLICATE: 2,  # R1, " R1 "
}  # 4 + 2 + 3 + 3 + 1 + 2 + 2 = 17 data lines

LOCATION_LINES = [
    ",".join(LOCATIONS.column_names),
    # kept: bounds 90 / 180 are in range; quoted address with a comma; ZIP keeps its 0
    '1,Airport,"1 Main St, Suite 2",Boston,MA,02128,90,180',
    # kept: location_id is an int, 0042 -> 42; bounds -90 / -180 in range
    "0042,Downtown,2 Elm St,Boston,MA,02108,-90,-180",
    # kept: optional values empty -> null
    "3,Harbor,,Salem,MA,01970,,",
    # coordinates_out_of_range: latitude just above 90
    "4,North,4 Rd,X,MA,1,90.000001,0",
    # coordinates_out_of_range: longitude below -180
    "5,West,5 Rd,X,MA,1,0,-180.5",
    # unparseable_value: NaN is no coordinate
    "6,Nan,6 Rd,X,MA,1,NaN,0",
    # unparseable_value: nor is Infinity
    "7,Inf,7 Rd,X,MA,1,0,Infinity",
    # unparseable_value: 12.5 is not an int
    "12.5,Half,8 Rd,X,MA,1,0,0",
    # missing_required_value beats unparseable_value (latitude north)
    ",Blank,9 Rd,X,MA,1,north,0",
    # duplicate_key of 0042 (both are 42)
    " 42 ,Dup,10 Rd,X,MA,1,0,0",
    # unparseable_value (longitude abc) beats coordinates_out_of_range (latitude 95)
    "9,Bad,11 Rd,X,MA,1,95,abc",
]
LOCATION_COUNTS = {
    None: 3,  # 1, 42, 3
    OUT_OF_RANGE: 2,  # 4, 5
    UNPARSEABLE: 4,  # 6, 7, 12.5, 9
    MISSING: 1,  # blank id
    DUPLICATE: 1,  # " 42 "
}  # 3 + 2 + 4 + 1 + 1 = 11 data lines

# The vehicles file lists its columns in another order than the contract: vehicle_id first,
# then the others reversed.
VEHICLE_HEADER = ["vehicle_id", *reversed([c for c in VEHICLES.column_names if c != "vehicle_id"])]
VALID_VEHICLE = {
    "active": "1",
    "vehicle_license_number": "5012345",
    "registration_name": "ACME LLC",
    "license_type": "LIVERY",
    "expiration_date": "27-09-2026",
    "permit_license_number": "AB123",
    "certification_date": "2020-05-01",
    "vehicle_year": "2019",
    "base_telephone_number": "+1-212-555-0100",
    "base_address": "1 Main St, New York",  # written quoted: it holds a comma
    "vehicle_id": "V1",
    "last_update_timestamp": "15-03-2024 13:45:00",
    "brand": "Toyota",
    "vehicle_type": "basic",
}


def vehicle_line(**changes: str) -> str:
    values = {**VALID_VEHICLE, **changes}
    return csv_line([values[name] for name in VEHICLE_HEADER])


VEHICLE_LINES = [
    ",".join(VEHICLE_HEADER),
    vehicle_line(vehicle_id="0042"),  # kept
    vehicle_line(vehicle_id="42", active="0"),  # kept: "42" is not "0042"; inactive is kept
    vehicle_line(vehicle_id="6e61610976"),  # kept
    vehicle_line(vehicle_id="1e5", brand="  Tesla  "),  # kept, brand trimmed
    vehicle_line(vehicle_id="V5", active="2"),  # unparseable_value: flags are 0/1
    vehicle_line(vehicle_id="V6", vehicle_year="2018.5"),  # unparseable_value
    vehicle_line(vehicle_id="V7", expiration_date="2026-09-27"),  # unparseable: dd-MM-yyyy
    vehicle_line(vehicle_id="V8", last_update_timestamp="15-03-2024 25:00:00"),  # unparseable
    vehicle_line(vehicle_id=""),  # missing_required_value
    vehicle_line(vehicle_id="0042", active="0"),  # duplicate_key of the first line
    vehicle_line(vehicle_id="V11", active="", vehicle_year=""),  # kept, nulls
]
VEHICLE_COUNTS = {
    None: 5,  # 0042, 42, 6e61610976, 1e5, V11
    UNPARSEABLE: 4,  # V5, V6, V7, V8
    MISSING: 1,
    DUPLICATE: 1,
}  # 5 + 4 + 1 + 1 = 11 data lines

USER_LINES = [
    ",".join(USERS.column_names),
    "U1,Ann,Lee,ann@x.com,+1-212-555-0101,A1234567,2027-01-31,2020-02-29,1",  # kept (leap day)
    '0042,"Doe, Jr.",Roe,bob@x.com,p,B1,2026-06-30,2021-01-01,0',  # kept: quoted comma
    "U3,Cy,Poe,cy@x.com,p,C1,2026-13-01,2021-01-01,1",  # unparseable_value: month 13
    "U4,Di,Moe,di@x.com,p,D1,2026-01-01,31/01/2023,1",  # unparseable_value: not yyyy-MM-dd
    "U5,Ed,Noe,ed@x.com,p,E1,2026-01-01,2021-01-01,true",  # unparseable_value: flag
    "U6,Fa,Ko,fa@x.com,p,F1,2026-01-01,2021-01-01,1.5",  # unparseable_value: flag
    "   ,Gi,Jo,gi@x.com,p,G1,2026-01-01,2021-01-01,2",  # missing beats unparseable flag
    "U1,Ann,Lee,new@x.com,p,A1,2027-01-31,2020-02-29,0",  # duplicate_key of the first U1
    "U9,Ha,Lo,ha@x.com,p,H1,2026-01-01,2021-01-01",  # malformed_line: 8 fields
    "U10,  Ivy  ,Lu,,,,,,  ",  # kept: trimmed; empty optional values -> null
]
USER_COUNTS = {
    None: 3,  # U1, 0042, U10
    UNPARSEABLE: 4,  # U3, U4, U5, U6
    MISSING: 1,
    DUPLICATE: 1,
    MALFORMED: 1,
}  # 3 + 4 + 1 + 1 + 1 = 10 data lines

FIXTURES: dict[str, tuple[SourceTable, list[str], dict[str | None, int]]] = {
    RENTALS.name: (RENTALS, RENTAL_LINES, RENTAL_COUNTS),
    LOCATIONS.name: (LOCATIONS, LOCATION_LINES, LOCATION_COUNTS),
    VEHICLES.name: (VEHICLES, VEHICLE_LINES, VEHICLE_COUNTS),
    USERS.name: (USERS, USER_LINES, USER_COUNTS),
}


@dataclass(frozen=True)
class Result:
    """One fixture file cleaned, collected once."""

    kept: list[dict[str, Any]]
    kept_dtypes: list[tuple[str, str]]
    rejected: list[dict[str, Any]]
    rejected_dtypes: list[tuple[str, str]]
    counts: dict[str | None, int]

    def kept_by(self, key: str) -> dict[Any, dict[str, Any]]:
        return {row[key]: row for row in self.kept}

    def rejected_by_record(self, key: str) -> list[tuple[str, str]]:
        """(raw key value, or the whole line of a malformed one; reason) per rejected row.

        An empty key reads as "" whether the record holds it as "" or leaves it out."""
        out = []
        for row in self.rejected:
            record = json.loads(row["record"])
            out.append((record.get(key) or record.get("line") or "", row["reason"]))
        return out


@pytest.fixture(scope="module")
def cleaned(spark, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    folder = tmp_path_factory.mktemp("raw")
    results = {}
    for name, (table, lines, _) in FIXTURES.items():
        result = clean_file(spark, table, write_lines(folder / table.file_name, lines)).cache()
        results[name] = Result(
            kept=rows(result.kept),
            kept_dtypes=result.kept.dtypes,
            rejected=rows(result.rejected),
            rejected_dtypes=result.rejected.dtypes,
            counts=result.counts(),
        )
        result.annotated.unpersist()
    return results


# --- Reasons, precedence, duplicates -------------------------------------------------------


@pytest.mark.parametrize("name", list(FIXTURES))
def test_counts_by_reason_and_conservation(cleaned: dict[str, Result], name: str) -> None:
    _, lines, expected = FIXTURES[name]
    result = cleaned[name]
    assert result.counts == expected
    data_lines = len(lines) - 1
    assert sum(result.counts.values()) == data_lines
    assert len(result.kept) + len(result.rejected) == data_lines
    assert len(result.kept) == expected[None]


def test_rentals_each_row_gets_its_first_matching_reason(cleaned: dict[str, Result]) -> None:
    assert Counter(cleaned["rentals"].rejected_by_record("rental_id")) == Counter(
        [
            ("R3", MISSING),
            ("R4", MISSING),
            ("R5", UNPARSEABLE),
            ("R6", UNPARSEABLE),
            ("R7", UNPARSEABLE),
            ("R8", END_NOT_AFTER_START),
            ("R9", END_NOT_AFTER_START),
            ("R10", NEGATIVE),
            ("R11,U1,V1", MALFORMED),
            ("R12,,V1,2024-01-02 10:00:00,2024-01-02 11:00:00,1,1,5.00,extra", MALFORMED),
            ("R1", DUPLICATE),
            (" R1 ", DUPLICATE),
            ("R5", END_NOT_AFTER_START),
        ]
    )


def test_locations_each_row_gets_its_first_matching_reason(cleaned: dict[str, Result]) -> None:
    assert Counter(cleaned["locations"].rejected_by_record("location_id")) == Counter(
        [
            ("4", OUT_OF_RANGE),
            ("5", OUT_OF_RANGE),
            ("6", UNPARSEABLE),
            ("7", UNPARSEABLE),
            ("12.5", UNPARSEABLE),
            ("9", UNPARSEABLE),
            ("", MISSING),
            (" 42 ", DUPLICATE),
        ]
    )


def test_vehicles_and_users_reasons(cleaned: dict[str, Result]) -> None:
    assert Counter(cleaned["vehicles"].rejected_by_record("vehicle_id")) == Counter(
        [
            ("V5", UNPARSEABLE),
            ("V6", UNPARSEABLE),
            ("V7", UNPARSEABLE),
            ("V8", UNPARSEABLE),
            ("", MISSING),
            ("0042", DUPLICATE),
        ]
    )
    assert Counter(cleaned["users"].rejected_by_record("user_id")) == Counter(
        [
            ("U3", UNPARSEABLE),
            ("U4", UNPARSEABLE),
            ("U5", UNPARSEABLE),
            ("U6", UNPARSEABLE),
            ("   ", MISSING),
            ("U1", DUPLICATE),
            ("U9,Ha,Lo,ha@x.com,p,H1,2026-01-01,2021-01-01", MALFORMED),
        ]
    )


def test_first_occurrence_of_a_duplicate_is_the_one_kept(cleaned: dict[str, Result]) -> None:
    rentals = cleaned["rentals"].kept_by("rental_id")
    assert rentals["R1"]["user_id"] == "U1"  # not U2 of the later copies
    assert rentals["R3"]["user_id"] == "U3"  # the valid R3 after a rejected one
    vehicles = cleaned["vehicles"].kept_by("vehicle_id")
    assert vehicles["0042"]["active"] == 1  # the later copy has active 0
    users = cleaned["users"].kept_by("user_id")
    assert users["U1"]["email"] == "ann@x.com"  # not new@x.com
    locations = cleaned["locations"].kept_by("location_id")
    assert locations[42]["location_name"] == "Downtown"  # not Dup


# --- Kept values ------------------------------------------------------------------------------


def test_rentals_kept_values_are_typed_trimmed_and_derived(cleaned: dict[str, Result]) -> None:
    assert cleaned["rentals"].kept_by("rental_id") == {
        "R1": {
            "rental_id": "R1",
            "user_id": "U1",
            "vehicle_id": "V1",
            "rental_start_time": "2024-03-10 23:30:00",
            "rental_end_time": "2024-03-11 00:50:00",
            "pickup_location": 1,
            "dropoff_location": 2,
            "total_amount": Decimal("50.01"),  # 50.005 half up
            "rental_duration_hours": 1.3333333333333333,  # 80 min / 60, not rounded
            "rental_date": date(2024, 3, 10),  # date of the start, not of the end
            "rental_hour": 23,
        },
        "0042": {
            "rental_id": "0042",
            "user_id": "6e61610976",
            "vehicle_id": "1e5",
            "rental_start_time": "2024-01-01 10:00:00",
            "rental_end_time": "2024-01-01 10:07:30",
            "pickup_location": 7,
            "dropoff_location": 8,
            "total_amount": Decimal("0.00"),
            "rental_duration_hours": 0.125,  # 450 s / 3600
            "rental_date": date(2024, 1, 1),
            "rental_hour": 10,
        },
        "R3": {
            "rental_id": "R3",
            "user_id": "U3",
            "vehicle_id": "V3",
            "rental_start_time": "2024-01-04 10:00:00",
            "rental_end_time": "2024-01-04 12:00:00",
            "pickup_location": 3,
            "dropoff_location": 4,
            "total_amount": Decimal("20.00"),
            "rental_duration_hours": 2.0,
            "rental_date": date(2024, 1, 4),
            "rental_hour": 10,
        },
        "R13": {
            "rental_id": "R13",
            "user_id": "U1",
            "vehicle_id": "V1",
            "rental_start_time": "2024-01-06 00:00:00",
            "rental_end_time": "2024-01-06 00:00:01",
            "pickup_location": 1,
            "dropoff_location": 1,
            "total_amount": Decimal("0.02"),  # 0.015 half up
            "rental_duration_hours": 0.0002777777777777778,  # 1 s / 3600, not rounded to 0
            "rental_date": date(2024, 1, 6),
            "rental_hour": 0,
        },
    }


def test_locations_kept_values(cleaned: dict[str, Result]) -> None:
    assert cleaned["locations"].kept_by("location_id") == {
        1: {
            "location_id": 1,
            "location_name": "Airport",
            "address": "1 Main St, Suite 2",
            "city": "Boston",
            "state": "MA",
            "zip_code": "02128",
            "latitude": 90.0,
            "longitude": 180.0,
        },
        42: {
            "location_id": 42,
            "location_name": "Downtown",
            "address": "2 Elm St",
            "city": "Boston",
            "state": "MA",
            "zip_code": "02108",
            "latitude": -90.0,
            "longitude": -180.0,
        },
        3: {
            "location_id": 3,
            "location_name": "Harbor",
            "address": None,
            "city": "Salem",
            "state": "MA",
            "zip_code": "01970",
            "latitude": None,
            "longitude": None,
        },
    }


def test_vehicles_kept_with_ids_as_strings_in_any_column_order(
    cleaned: dict[str, Result],
) -> None:
    vehicles = cleaned["vehicles"].kept_by("vehicle_id")
    assert sorted(vehicles) == ["0042", "1e5", "42", "6e61610976", "V11"]
    assert vehicles["0042"] == {
        "active": 1,
        "vehicle_license_number": "5012345",
        "registration_name": "ACME LLC",
        "license_type": "LIVERY",
        "expiration_date": date(2026, 9, 27),  # dd-MM-yyyy
        "permit_license_number": "AB123",
        "certification_date": date(2020, 5, 1),  # yyyy-MM-dd
        "vehicle_year": 2019,
        "base_telephone_number": "+1-212-555-0100",
        "base_address": "1 Main St, New York",
        "vehicle_id": "0042",
        "last_update_timestamp": "2024-03-15 13:45:00",  # dd-MM-yyyy HH:mm:ss
        "brand": "Toyota",
        "vehicle_type": "basic",
    }
    assert vehicles["42"]["active"] == 0  # the flag is an attribute, not a filter
    assert vehicles["1e5"]["brand"] == "Tesla"
    assert (vehicles["V11"]["active"], vehicles["V11"]["vehicle_year"]) == (None, None)


def test_users_kept_values(cleaned: dict[str, Result]) -> None:
    users = cleaned["users"].kept_by("user_id")
    assert users["U1"] == {
        "user_id": "U1",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@x.com",
        "phone_number": "+1-212-555-0101",
        "driver_license_number": "A1234567",
        "driver_license_expiry": date(2027, 1, 31),
        "creation_date": date(2020, 2, 29),
        "is_active": 1,
    }
    assert (users["0042"]["first_name"], users["0042"]["is_active"]) == ("Doe, Jr.", 0)
    assert users["U10"] == {
        "user_id": "U10",
        "first_name": "Ivy",
        "last_name": "Lu",
        "email": None,
        "phone_number": None,
        "driver_license_number": None,
        "driver_license_expiry": None,
        "creation_date": None,
        "is_active": None,
    }


@pytest.mark.parametrize("name", list(FIXTURES))
def test_kept_and_rejected_have_the_contract_schemas(cleaned: dict[str, Result], name: str) -> None:
    table = FIXTURES[name][0]
    assert cleaned[name].kept_dtypes == contract_dtypes(table.processed_columns)
    assert cleaned[name].rejected_dtypes == contract_dtypes(REJECTED_ROWS_COLUMNS)


# --- Rejected rows ----------------------------------------------------------------------------


def test_rejected_rows_keep_the_original_untrimmed_strings(cleaned: dict[str, Result]) -> None:
    rejected = cleaned["rentals"].rejected
    assert {row["source_table"] for row in rejected} == {"rentals"}
    assert all(row["source_file"].endswith("/rental_transactions.csv") for row in rejected)
    assert all(row["detail"] for row in rejected)
    records = [json.loads(row["record"]) for row in rejected]
    r4 = next(r for r in records if r.get("rental_id") == "R4")
    assert r4 == {
        "rental_id": "R4",
        "user_id": "U1",
        "vehicle_id": "   ",
        "rental_start_time": "2024-01-01 10:00:00",
        "rental_end_time": "2024-01-01 11:00:00",
        "pickup_location": "1",
        "dropoff_location": "1",
        "total_amount": "5.00",
    }
    spaced = next(r for r in records if r.get("rental_id") == " R1 ")
    assert spaced["total_amount"] == "7.00"
    r6 = next(r for r in records if r.get("rental_id") == "R6")
    assert r6["total_amount"] == "12,50"
    assert {"line": "R11,U1,V1"} in records
    r4_detail = next(row["detail"] for row in rejected if '"R4"' in row["record"])
    assert "vehicle_id" in r4_detail


def test_rejected_user_record_keeps_surrounding_spaces(cleaned: dict[str, Result]) -> None:
    record = next(
        json.loads(row["record"]) for row in cleaned["users"].rejected if row["reason"] == MISSING
    )
    assert record["user_id"] == "   "
    assert record["is_active"] == "2"


def test_rejected_record_keeps_every_column_even_when_empty(cleaned: dict[str, Result]) -> None:
    records = [
        json.loads(row["record"]) for row in cleaned["users"].rejected if row["reason"] == MISSING
    ]
    assert records
    for record in records:
        assert list(record) == list(USERS.column_names)


# --- Files and headers ------------------------------------------------------------------------


def test_a_header_only_file_gives_zero_rows(spark, tmp_path: Path) -> None:
    path = tmp_path / USERS.file_name
    path.write_text(",".join(USERS.column_names) + "\r\n", encoding="utf-8")
    result = clean_file(spark, USERS, path)
    assert result.counts() == {}
    assert result.kept.count() == 0
    assert result.rejected.count() == 0
    assert result.kept.dtypes == contract_dtypes(USERS.processed_columns)


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["0-byte", "empty-lines"])
def test_a_file_without_a_header_is_a_schema_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / USERS.file_name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RawSchemaError, match="no header row") as error:
        land_export(tmp_path / "lake", USERS, path)
    assert str(path) in str(error.value)
    assert ",".join(USERS.column_names) in str(error.value)  # what the header must be
    assert not (tmp_path / "lake" / "raw" / USERS.raw_name / "landing.json").exists()


def test_missing_column_is_an_error_naming_the_file_and_column(tmp_path: Path) -> None:
    header = [c for c in USERS.column_names if c != "email"]
    path = write_lines(tmp_path / USERS.file_name, [",".join(header), "U1,A,B,p,d,,,1"])
    with pytest.raises(RawSchemaError) as error:
        land_export(tmp_path / "lake", USERS, path)
    assert str(path) in str(error.value)
    assert "email" in str(error.value)
    assert "missing" in str(error.value)


def test_unexpected_column_is_an_error_naming_the_file_and_column(tmp_path: Path) -> None:
    header = [*LOCATIONS.column_names, "nickname"]
    path = write_lines(tmp_path / LOCATIONS.file_name, [",".join(header), "1,a,b,c,d,e,1,2,n"])
    with pytest.raises(RawSchemaError) as error:
        land_export(tmp_path / "lake", LOCATIONS, path)
    assert str(path) in str(error.value)
    assert "nickname" in str(error.value)
    assert "unexpected" in str(error.value)


def test_header_with_a_byte_order_mark_is_accepted(spark, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / USERS.file_name,
        [
            "\ufeff" + ",".join(USERS.column_names),
            "U1,Ann,Lee,a@x.com,p,A1,2027-01-31,2020-01-01,1",
        ],
    )
    kept = rows(clean_file(spark, USERS, path).kept)
    assert [(r["user_id"], r["is_active"]) for r in kept] == [("U1", 1)]


def test_doubled_quotes_inside_a_quoted_field_are_unescaped(spark, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / LOCATIONS.file_name,
        [
            ",".join(LOCATIONS.column_names),
            # What Python's csv module (and the sample-data generator) writes for these names.
            csv_line(["1", 'Boston "Express" Lot', "1 Main St", "Boston", "MA", "02128", "1", "2"]),
            csv_line(["2", 'Say "hi", ok', "2 Elm St", "Boston", "MA", "02108", "1", "2"]),
        ],
    )
    result = clean_file(spark, LOCATIONS, path)
    assert sorted((r["location_id"], r["location_name"]) for r in rows(result.kept)) == [
        (1, 'Boston "Express" Lot'),
        (2, 'Say "hi", ok'),
    ]


# --- The transform job end to end ---------------------------------------------------------------

REPORTED_KEYS = {"row_count", "rows_in", "rows_rejected", "rejected_by_reason", "rejected_by_table"}


def test_transform_job_writes_processed_tables_rejected_rows_and_reports(
    spark, tmp_path: Path
) -> None:
    for table, lines, _ in FIXTURES.values():
        land_lines(tmp_path, table, lines)
    reporter = RecordingReporter()
    # The fixtures are mostly bad rows on purpose: no reject-rate limit here (tested below).
    args = transform_job.parse_args(["--lake-root", str(tmp_path), "--max-reject-rate", "1"])

    transform_job.run(spark, args, reporter)

    processed = tmp_path / "processed"
    reported = {
        key: {k: v for k, v in meta.items() if k in REPORTED_KEYS}
        for key, meta in reporter.reports.items()
    }
    assert reported == {
        "processed/vehicles": {
            "row_count": 5,
            "rows_in": 11,
            "rows_rejected": 6,  # 11 - 5
            "rejected_by_reason": {DUPLICATE: 1, MISSING: 1, UNPARSEABLE: 4},
        },
        "processed/users": {
            "row_count": 3,
            "rows_in": 10,
            "rows_rejected": 7,  # 10 - 3
            "rejected_by_reason": {DUPLICATE: 1, MALFORMED: 1, MISSING: 1, UNPARSEABLE: 4},
        },
        "processed/locations": {
            "row_count": 3,
            "rows_in": 11,
            "rows_rejected": 8,  # 11 - 3
            "rejected_by_reason": {DUPLICATE: 1, MISSING: 1, OUT_OF_RANGE: 2, UNPARSEABLE: 4},
        },
        "processed/rentals": {
            "row_count": 4,
            "rows_in": 17,
            "rows_rejected": 13,  # 17 - 4
            "rejected_by_reason": {
                DUPLICATE: 2,
                END_NOT_AFTER_START: 3,
                MALFORMED: 2,
                MISSING: 2,
                NEGATIVE: 1,
                UNPARSEABLE: 3,
            },
        },
        "processed/rejected_rows": {
            "row_count": 34,  # 6 + 7 + 8 + 13
            "rejected_by_table": {
                "vehicles": {DUPLICATE: 1, MISSING: 1, UNPARSEABLE: 4},
                "users": {DUPLICATE: 1, MALFORMED: 1, MISSING: 1, UNPARSEABLE: 4},
                "locations": {DUPLICATE: 1, MISSING: 1, OUT_OF_RANGE: 2, UNPARSEABLE: 4},
                "rentals": {
                    DUPLICATE: 2,
                    END_NOT_AFTER_START: 3,
                    MALFORMED: 2,
                    MISSING: 2,
                    NEGATIVE: 1,
                    UNPARSEABLE: 3,
                },
            },
        },
    }
    assert reporter.reports["processed/rentals"]["path"] == str(processed / "rentals")
    for table in SOURCE_TABLES:
        assert reporter.checks[(f"processed/{table.name}", "primary_key_unique")].passed

    for table in SOURCE_TABLES:
        frame = spark.read.parquet(str(processed / table.name))
        # Hive partition columns (rentals' rental_date) are folders, read back last.
        stored = sorted(table.processed_columns, key=lambda c: c.name in table.partition_by)
        assert frame.dtypes == contract_dtypes(stored), table.name
    rentals = rows(spark.read.parquet(str(processed / "rentals")))
    assert sorted(
        (r["rental_id"], r["user_id"], r["vehicle_id"], r["total_amount"]) for r in rentals
    ) == [
        ("0042", "6e61610976", "1e5", Decimal("0.00")),
        ("R1", "U1", "V1", Decimal("50.01")),
        ("R13", "U1", "V1", Decimal("0.02")),
        ("R3", "U3", "V3", Decimal("20.00")),
    ]
    assert sorted(
        r["vehicle_id"] for r in rows(spark.read.parquet(str(processed / "vehicles")))
    ) == [
        "0042",
        "1e5",
        "42",
        "6e61610976",
        "V11",
    ]

    rejected = spark.read.parquet(str(processed / "rejected_rows"))
    assert rejected.dtypes == contract_dtypes(REJECTED_ROWS_COLUMNS)
    by_table_reason = Counter(
        (r["source_table"], r["reason"])
        for r in rejected.select("source_table", "reason").collect()
    )
    assert by_table_reason == {
        ("vehicles", DUPLICATE): 1,
        ("vehicles", MISSING): 1,
        ("vehicles", UNPARSEABLE): 4,
        ("users", DUPLICATE): 1,
        ("users", MALFORMED): 1,
        ("users", MISSING): 1,
        ("users", UNPARSEABLE): 4,
        ("locations", DUPLICATE): 1,
        ("locations", MISSING): 1,
        ("locations", OUT_OF_RANGE): 2,
        ("locations", UNPARSEABLE): 4,
        ("rentals", DUPLICATE): 2,
        ("rentals", END_NOT_AFTER_START): 3,
        ("rentals", MALFORMED): 2,
        ("rentals", MISSING): 2,
        ("rentals", NEGATIVE): 1,
        ("rentals", UNPARSEABLE): 3,
    }
