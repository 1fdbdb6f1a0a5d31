"""The bad rows planted in each raw file: each breaks exactly one rule of the data contract."""

from __future__ import annotations

from dataclasses import dataclass

from spark_jobs.contract import (
    LOCATIONS,
    RENTALS,
    USERS,
    VEHICLES,
    RejectReason,
)

R = RejectReason


@dataclass(frozen=True)
class BadRow:
    """One planted row: the reason it must be rejected for and the edits that cause it."""

    reason: RejectReason
    edits: tuple[tuple[str, str], ...] = ()
    """(column, new value); ``{}`` in a new value stands for the old one."""
    extra_fields: int = 0
    """For malformed lines: +1 appends a field, -1 drops the last one."""


def _one_per_edit(reason: RejectReason, *edits: tuple[str, str]) -> tuple[BadRow, ...]:
    """One bad row per edit (one exact copy per empty edit for duplicates)."""
    return tuple(BadRow(reason, (e,) if e else ()) for e in edits)


_MALFORMED = (BadRow(R.MALFORMED_LINE, extra_fields=1), BadRow(R.MALFORMED_LINE, extra_fields=-1))
# Each reason gets a different count per table, so a job that confuses two reasons fails.
BAD_ROWS: dict[str, tuple[BadRow, ...]] = {
    VEHICLES.name: _MALFORMED
    + _one_per_edit(
        R.MISSING_REQUIRED_VALUE, ("vehicle_id", ""), ("vehicle_id", " "), ("vehicle_id", "   ")
    )
    + _one_per_edit(
        R.UNPARSEABLE_VALUE,
        ("active", "2"),
        ("vehicle_year", "2018.5"),
        ("expiration_date", "2026-09-27"),
        ("last_update_timestamp", "15-03-2024 25:00:00"),
    )
    + _one_per_edit(
        R.DUPLICATE_KEY,
        (),
        (),
        ("vehicle_id", "  {}  "),
        ("last_update_timestamp", "30-06-2024 23:59:59"),
        ("active", "0"),
    ),
    USERS.name: _MALFORMED
    + _one_per_edit(R.MISSING_REQUIRED_VALUE, ("user_id", ""), ("user_id", " "), ("user_id", "   "))
    + _one_per_edit(
        R.UNPARSEABLE_VALUE,
        ("is_active", "true"),
        ("is_active", "yes"),
        ("driver_license_expiry", "2026-13-01"),
        ("creation_date", "31/01/2023"),
    )
    + _one_per_edit(
        R.DUPLICATE_KEY, (), (), ("user_id", " {} "), ("email", "new.{}"), ("is_active", "0")
    ),
    LOCATIONS.name: _MALFORMED
    + _one_per_edit(
        R.MISSING_REQUIRED_VALUE, ("location_id", ""), ("location_id", " "), ("location_id", "  ")
    )
    + _one_per_edit(
        R.UNPARSEABLE_VALUE,
        ("location_id", "12.5"),
        ("latitude", "north"),
        ("longitude", "-73,95"),
        ("latitude", "40.71N"),
    )
    + _one_per_edit(
        R.COORDINATES_OUT_OF_RANGE,
        ("latitude", "91.000000"),
        ("latitude", "-90.500000"),
        ("longitude", "180.250000"),
        ("longitude", "-181.000000"),
        ("latitude", "123.456789"),
    )
    + _one_per_edit(
        R.DUPLICATE_KEY,
        (),
        (),
        ("location_id", " {} "),
        ("location_name", "{} (old)"),
        ("zip_code", "00000"),
        ("address", "1 Duplicate Way, Suite 9"),
    ),
    RENTALS.name: _MALFORMED
    + _one_per_edit(
        R.MISSING_REQUIRED_VALUE, ("rental_id", ""), ("user_id", "   "), ("rental_end_time", "")
    )
    + _one_per_edit(
        R.UNPARSEABLE_VALUE,
        ("rental_start_time", "2024-02-30 10:00:00"),
        ("rental_end_time", "31/01/2024 12:00:00"),
        ("pickup_location", "abc"),
        ("total_amount", "12,50"),
    )
    + tuple(
        BadRow(R.END_NOT_AFTER_START, (("rental_start_time", start), ("rental_end_time", end)))
        for start, end in (
            ("2024-03-12 09:00:00", "2024-03-12 09:00:00"),
            ("2024-04-02 17:30:00", "2024-04-02 17:30:00"),
            ("2024-02-14 10:00:00", "2024-02-14 09:00:00"),
            ("2024-05-20 08:15:00", "2024-05-19 20:15:00"),
            ("2024-06-01 12:00:00", "2024-06-01 11:59:59"),
        )
    )
    + _one_per_edit(
        R.NEGATIVE_AMOUNT,
        *(("total_amount", a) for a in ("-12.50", "-0.01", "-25.00", "-60.00", "-150.00", "-1")),
    )
    + _one_per_edit(
        R.DUPLICATE_KEY,
        (),
        (),
        (),
        (),
        ("total_amount", "99.99"),
        ("rental_id", " {} "),
        ("rental_id", "{}  "),
    ),
}
