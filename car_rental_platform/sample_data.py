"""Deterministic sample raw CSVs for the car-rental lake, with bad rows planted on purpose.

Tests of the cleaning job need inputs whose every rejection is known in advance: each planted
row breaks exactly one rule of the data contract (DESIGN.md section 3) and
``SampleSummary.planted`` counts them per (table, reason), so a test can demand that the job
rejects exactly those rows. The same seed and arguments give byte-identical files.

    python -m car_rental_platform.sample_data --out DIR [--rentals N] [--seed S] [--no-bad-rows]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from spark_jobs.contract import (
    LOCATIONS,
    RENTALS,
    SOURCE_TABLES,
    USERS,
    VEHICLES,
    RejectReason,
)

R = RejectReason
EPOCH = date(1970, 1, 1)
RENTAL_FIRST_DAY, RENTAL_LAST_DAY = date(2024, 1, 1), date(2024, 6, 30)
HOURLY_RATE_CENTS = {"basic": 1250, "premium": 2500, "high_end": 6000}
"""total_amount = whole rental hours x this rate of the vehicle's type."""
MAX_RENTAL_HOURS = 72
UNKNOWN_PICKUP_LOCATION, UNKNOWN_DROPOFF_LOCATION = "99999", "99998"
LOCATION_COUNT = 300
MIN_RENTALS = 100
"""Below this the planted bad rows would crowd the file."""

MAINSTREAM_BRANDS = (
    "Toyota",
    "Honda",
    "Ford",
    "Chevrolet",
    "Nissan",
    "Hyundai",
    "Kia",
    "Volkswagen",
)
LUXURY_BRANDS = ("BMW", "Mercedes-Benz", "Audi", "Tesla")
CITIES = (  # city, state, latitude, longitude, ZIP prefix, area code
    ("New York", "NY", 40.7128, -74.0060, "100", "212"),
    ("Boston", "MA", 42.3601, -71.0589, "021", "617"),
    ("Newark", "NJ", 40.7357, -74.1724, "071", "973"),
    ("Chicago", "IL", 41.8781, -87.6298, "606", "312"),
    ("Miami", "FL", 25.7617, -80.1918, "331", "305"),
    ("Houston", "TX", 29.7604, -95.3698, "770", "713"),
    ("Phoenix", "AZ", 33.4484, -112.0740, "850", "602"),
    ("Los Angeles", "CA", 34.0522, -118.2437, "900", "213"),
    ("San Francisco", "CA", 37.7749, -122.4194, "941", "415"),
    ("Seattle", "WA", 47.6062, -122.3321, "981", "206"),
)
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Carlos", "Karen", "Daniel", "Nancy", "Wei", "Lisa", "Ahmed", "Priya", "Mateo", "Sofia",
    "Hiroshi", "Olga", "Kwame", "Ana", "Noah", "Emma", "Liam", "Olivia",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Lewis", "Robinson", "Walker", "Nguyen", "Kim", "Patel", "O'Brien", "Chen", "Cohen",
)  # fmt: skip
STREETS = (
    "Main St", "Broadway", "Oak Ave", "Maple St", "Washington Blvd", "Park Ave", "2nd St",
    "Market St", "Elm St", "Lake Shore Dr", "Sunset Blvd", "Harbor Way", "Airport Rd",
)  # fmt: skip
PLACES = (
    "Airport", "Downtown", "Central Station", "Midtown", "Harbor", "University",
    "Convention Center", "Uptown", "Riverside", "Old Town", "Stadium", "Business Park",
)  # fmt: skip
LICENSE_TYPES = ("FOR HIRE VEHICLE", "LIVERY", "BLACK CAR", "LUXURY", "COMMUTER VAN")
COMPANY_SUFFIXES = ("TRANSPORT LLC", "LEASING INC", "CAR SERVICE CORP", "MOBILITY LLC")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "example.com")
START_HOUR_WEIGHTS = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 3.0, 2.6, 2.6,
    2.8, 2.7, 2.6, 2.8, 3.2, 3.8, 3.6, 3.0, 2.5, 2.0, 1.6, 1.2,
)  # fmt: skip


@dataclass(frozen=True)
class SampleSummary:
    """What ``generate`` wrote: data lines per file and bad rows planted per (table, reason)."""

    rows: dict[str, int]
    """Data lines (header excluded) per file name, valid and bad rows alike."""
    planted: dict[tuple[str, str], int]
    """(processed table name, RejectReason value) -> rows planted to be rejected for it."""


@dataclass(frozen=True)
class _Bad:
    """One planted row: the reason it must be rejected for and the edits that cause it."""

    reason: RejectReason
    edits: tuple[tuple[str, str], ...] = ()
    """(column, new value); ``{}`` in a new value stands for the old one."""
    extra_fields: int = 0
    """For malformed lines: +1 appends a field, -1 drops the last one."""


def _bads(reason: RejectReason, *edits: tuple[str, str]) -> tuple[_Bad, ...]:
    """One bad row per edit (one exact copy per empty edit for duplicates)."""
    return tuple(_Bad(reason, (e,) if e else ()) for e in edits)


_MALFORMED = (_Bad(R.MALFORMED_LINE, extra_fields=1), _Bad(R.MALFORMED_LINE, extra_fields=-1))
# Each reason gets a different count per table, so a job that confuses two reasons fails.
BAD_ROWS: dict[str, tuple[_Bad, ...]] = {
    VEHICLES.name: _MALFORMED
    + _bads(
        R.MISSING_REQUIRED_VALUE, ("vehicle_id", ""), ("vehicle_id", " "), ("vehicle_id", "   ")
    )
    + _bads(
        R.UNPARSEABLE_VALUE,
        ("active", "2"),
        ("vehicle_year", "2018.5"),
        ("expiration_date", "2026-09-27"),
        ("last_update_timestamp", "15-03-2024 25:00:00"),
    )
    + _bads(
        R.DUPLICATE_KEY,
        (),
        (),
        ("vehicle_id", "  {}  "),
        ("last_update_timestamp", "30-06-2024 23:59:59"),
        ("active", "0"),
    ),
    USERS.name: _MALFORMED
    + _bads(R.MISSING_REQUIRED_VALUE, ("user_id", ""), ("user_id", " "), ("user_id", "   "))
    + _bads(
        R.UNPARSEABLE_VALUE,
        ("is_active", "true"),
        ("is_active", "yes"),
        ("driver_license_expiry", "2026-13-01"),
        ("creation_date", "31/01/2023"),
    )
    + _bads(R.DUPLICATE_KEY, (), (), ("user_id", " {} "), ("email", "new.{}"), ("is_active", "0")),
    LOCATIONS.name: _MALFORMED
    + _bads(
        R.MISSING_REQUIRED_VALUE, ("location_id", ""), ("location_id", " "), ("location_id", "  ")
    )
    + _bads(
        R.UNPARSEABLE_VALUE,
        ("location_id", "12.5"),
        ("latitude", "north"),
        ("longitude", "-73,95"),
        ("latitude", "40.71N"),
    )
    + _bads(
        R.COORDINATES_OUT_OF_RANGE,
        ("latitude", "91.000000"),
        ("latitude", "-90.500000"),
        ("longitude", "180.250000"),
        ("longitude", "-181.000000"),
        ("latitude", "123.456789"),
    )
    + _bads(
        R.DUPLICATE_KEY,
        (),
        (),
        ("location_id", " {} "),
        ("location_name", "{} (old)"),
        ("zip_code", "00000"),
        ("address", "1 Duplicate Way, Suite 9"),
    ),
    RENTALS.name: _MALFORMED
    + _bads(
        R.MISSING_REQUIRED_VALUE, ("rental_id", ""), ("user_id", "   "), ("rental_end_time", "")
    )
    + _bads(
        R.UNPARSEABLE_VALUE,
        ("rental_start_time", "2024-02-30 10:00:00"),
        ("rental_end_time", "31/01/2024 12:00:00"),
        ("pickup_location", "abc"),
        ("total_amount", "12,50"),
    )
    + tuple(
        _Bad(R.END_NOT_AFTER_START, (("rental_start_time", start), ("rental_end_time", end)))
        for start, end in (
            ("2024-03-12 09:00:00", "2024-03-12 09:00:00"),
            ("2024-04-02 17:30:00", "2024-04-02 17:30:00"),
            ("2024-02-14 10:00:00", "2024-02-14 09:00:00"),
            ("2024-05-20 08:15:00", "2024-05-19 20:15:00"),
            ("2024-06-01 12:00:00", "2024-06-01 11:59:59"),
        )
    )
    + _bads(
        R.NEGATIVE_AMOUNT,
        *(("total_amount", a) for a in ("-12.50", "-0.01", "-25.00", "-60.00", "-150.00", "-1")),
    )
    + _bads(
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


def table_sizes(rentals: int) -> dict[str, int]:
    """Data lines per table for a run with ``rentals`` rental lines."""
    return {
        VEHICLES.name: max(500, rentals // 20),
        USERS.name: max(1000, min(300_000, 30_000 * rentals // 20_000)),
        LOCATIONS.name: LOCATION_COUNT,
        RENTALS.name: rentals,
    }


# --- Vectorised formatting: Python-level formatting of a million values is too slow. -------


def _digits(values: np.ndarray, width: int, base: int = 10) -> np.ndarray:
    """Zero-padded ``width``-digit strings (lower-case hex for base 16) as an object array."""
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    powers = np.int64(base) ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars = alphabet[(np.asarray(values, dtype=np.int64)[:, None] // powers) % base]
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def _lookup(values: np.ndarray, render: Callable[[int], str]) -> np.ndarray:
    """Render each distinct value once and index: fast when values repeat (days, amounts)."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([render(int(v)) for v in distinct], dtype=object)[inverse.ravel()]


def _days(values: np.ndarray, fmt: str) -> np.ndarray:
    """Days since 1970-01-01 as ``strftime`` strings."""
    return _lookup(values, lambda d: (EPOCH + timedelta(days=d)).strftime(fmt))


def _timestamps(seconds: np.ndarray, date_fmt: str) -> np.ndarray:
    """Seconds since 1970-01-01 as ``<date_fmt> HH:MM:SS`` strings."""
    days, clock = np.divmod(seconds, 86_400)
    hms = _lookup(clock, lambda s: f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}")
    return _days(days, date_fmt) + " " + hms


def _epoch_day(day: date) -> int:
    return (day - EPOCH).days


def _random_days(rng: np.random.Generator, n: int, first: date, last: date) -> np.ndarray:
    return rng.integers(_epoch_day(first), _epoch_day(last) + 1, n)


def _pick(rng: np.random.Generator, options: Sequence[str], n: int) -> np.ndarray:
    return np.array(options, dtype=object)[rng.integers(0, len(options), n)]


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    area = _pick(rng, [c[5] for c in CITIES], n)
    return (
        "+1-"
        + area
        + "-"
        + _digits(rng.integers(200, 1000, n), 3)
        + "-"
        + _digits(rng.integers(0, 10_000, n), 4)
    )


def _id_pool(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct 10-hex-digit ids; about 1% all digits with leading zeros (``0000012345``)
    and 1% in scientific-notation form (``6e61610976``), so number-guessing readers break."""
    odd = max(2, n // 100)
    ids = np.empty(n, dtype=object)
    ids[:odd] = _digits(rng.choice(10**6, odd, replace=False), 10)
    ids[odd : 2 * odd] = (
        _digits(rng.integers(1, 10, odd), 1)
        + "e"
        + _digits(rng.choice(10**8, odd, replace=False), 8)
    )
    ids[2 * odd :] = _digits(rng.choice(16**10, n - 2 * odd, replace=False), 10, 16)
    while (clash := pd.Index(ids).duplicated()).any():  # a random id can match a special one
        ids[clash] = _digits(rng.integers(0, 16**10, int(clash.sum())), 10, 16)
    return ids[rng.permutation(n)]


# --- Valid rows per table ------------------------------------------------------------------


def _vehicles(rng: np.random.Generator, ids: np.ndarray) -> pd.DataFrame:
    n = len(ids)
    brand_idx = rng.integers(0, len(MAINSTREAM_BRANDS) + len(LUXURY_BRANDS), n)
    luxury = brand_idx >= len(MAINSTREAM_BRANDS)
    share = rng.random(n)
    vehicle_type = np.where(
        luxury,
        np.where(share < 0.6, "premium", "high_end"),
        np.where(share < 0.8, "basic", "premium"),
    ).astype(object)
    last, first = _pick(rng, LAST_NAMES, n), _pick(rng, FIRST_NAMES, n)
    company = last.astype(str) + " " + _pick(rng, COMPANY_SUFFIXES, n).astype(str)
    person = np.char.upper((last + ", " + first).astype(str))
    city = rng.integers(0, len(CITIES), n)
    cities = np.array([f"{c[0]}, {c[1]} {c[4]}" for c in CITIES], dtype=object)[city]
    letters = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"), dtype=object)
    update_day = _random_days(rng, n, date(2024, 1, 1), date(2024, 6, 30))
    return pd.DataFrame(
        {
            "active": np.where(rng.random(n) < 0.85, "1", "0").astype(object),
            "vehicle_license_number": "5" + _digits(rng.integers(0, 10**6, n), 6),
            "registration_name": np.where(
                rng.random(n) < 0.6, np.char.upper(company), person
            ).astype(object),
            "license_type": _pick(rng, LICENSE_TYPES, n),
            "expiration_date": _days(
                _random_days(rng, n, date(2024, 7, 1), date(2027, 12, 31)), "%d-%m-%Y"
            ),
            "permit_license_number": letters[rng.integers(0, len(letters), n)]
            + letters[rng.integers(0, len(letters), n)]
            + _digits(rng.integers(0, 1000, n), 3),
            "certification_date": _days(
                _random_days(rng, n, date(2015, 1, 1), date(2024, 6, 30)), "%Y-%m-%d"
            ),
            "vehicle_year": _digits(rng.integers(2005, 2026, n), 4),
            "base_telephone_number": _phones(rng, n),
            "base_address": _lookup(rng.integers(1, 10_000, n), str)
            + " "
            + _pick(rng, STREETS, n)
            + ", "
            + cities
            + _digits(rng.integers(0, 100, n), 2),
            "vehicle_id": ids,
            "last_update_timestamp": _timestamps(
                update_day * 86_400 + rng.integers(0, 86_400, n), "%d-%m-%Y"
            ),
            "brand": np.array(MAINSTREAM_BRANDS + LUXURY_BRANDS, dtype=object)[brand_idx],
            "vehicle_type": vehicle_type,
        },
        columns=VEHICLES.column_names,
    )


def _users(rng: np.random.Generator, ids: np.ndarray) -> pd.DataFrame:
    n = len(ids)
    first_idx = rng.integers(0, len(FIRST_NAMES), n)
    last_idx = rng.integers(0, len(LAST_NAMES), n)
    handle = np.array([s.lower().replace("'", "") for s in FIRST_NAMES], dtype=object)[first_idx]
    handle = handle + "." + np.array([s.lower().replace("'", "") for s in LAST_NAMES])[last_idx]
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), dtype=object)
    return pd.DataFrame(
        {
            "user_id": ids,
            "first_name": np.array(FIRST_NAMES, dtype=object)[first_idx],
            "last_name": np.array(LAST_NAMES, dtype=object)[last_idx],
            "email": handle
            + _lookup(rng.integers(1, 1000, n), str)
            + "@"
            + _pick(rng, EMAIL_DOMAINS, n),
            "phone_number": _phones(rng, n),
            "driver_license_number": letters[rng.integers(0, 26, n)]
            + _digits(rng.integers(0, 10**8, n), 8),
            "driver_license_expiry": _days(
                _random_days(rng, n, date(2024, 7, 1), date(2030, 12, 31)), "%Y-%m-%d"
            ),
            "creation_date": _days(
                _random_days(rng, n, date(2019, 1, 1), date(2024, 6, 30)), "%Y-%m-%d"
            ),
            "is_active": np.where(rng.random(n) < 0.9, "1", "0").astype(object),
        },
        columns=USERS.column_names,
    )


def _locations(rng: np.random.Generator, n: int) -> pd.DataFrame:
    city = rng.integers(0, len(CITIES), n)
    name = np.array([c[0] for c in CITIES], dtype=object)[city] + " " + _pick(rng, PLACES, n)
    quoted = rng.random(n) < 0.02  # a few names with double quotes exercise CSV escaping
    name[quoted] = name[quoted] + ' "Express" Lot'
    suite = rng.integers(1, 40, n)
    address = _lookup(rng.integers(1, 2000, n), str) + " " + _pick(rng, STREETS, n)
    with_suite = rng.random(n) < 0.5
    address[with_suite] = address[with_suite] + ", Suite " + _lookup(suite[with_suite], str)
    lat = np.array([c[2] for c in CITIES])[city] + rng.normal(0, 0.04, n)
    lon = np.array([c[3] for c in CITIES])[city] + rng.normal(0, 0.04, n)
    return pd.DataFrame(
        {
            "location_id": _lookup(np.arange(1, n + 1), str),
            "location_name": name,
            "address": address,
            "city": np.array([c[0] for c in CITIES], dtype=object)[city],
            "state": np.array([c[1] for c in CITIES], dtype=object)[city],
            "zip_code": np.array([c[4] for c in CITIES], dtype=object)[city]
            + _digits(rng.integers(0, 100, n), 2),
            "latitude": np.array([f"{v:.6f}" for v in lat], dtype=object),
            "longitude": np.array([f"{v:.6f}" for v in lon], dtype=object),
        },
        columns=LOCATIONS.column_names,
    )


def _amounts(cents: np.ndarray) -> np.ndarray:
    return _lookup(cents, lambda c: f"{c // 100}.{c % 100:02d}")


def _rentals(
    rng: np.random.Generator,
    ids: np.ndarray,
    valid: np.ndarray,
    users: pd.DataFrame,
    vehicles: pd.DataFrame,
    locations: pd.DataFrame,
    unknown_ids: np.ndarray,
) -> pd.DataFrame:
    """Rentals of known users, vehicles and locations, plus a few kept rows that reference
    unknown ones (the job counts these, it does not reject them) and two free rentals."""
    n = len(ids)
    renters = users["user_id"].to_numpy()
    user = renters[rng.choice(len(renters), n, p=_weights(rng, len(renters), 0.8))]
    vehicle_idx = rng.integers(0, len(vehicles), n)
    vehicle = vehicles["vehicle_id"].to_numpy()[vehicle_idx]
    rate = vehicles["vehicle_type"].map(HOURLY_RATE_CENTS).to_numpy(np.int64)[vehicle_idx]
    place_ids = locations["location_id"].to_numpy()
    pickup = rng.choice(len(place_ids), n, p=_weights(rng, len(place_ids), 2.0))
    dropoff = np.where(rng.random(n) < 0.7, pickup, rng.integers(0, len(place_ids), n))
    day = _random_days(rng, n, RENTAL_FIRST_DAY, RENTAL_LAST_DAY)
    hour = rng.choice(24, n, p=np.array(START_HOUR_WEIGHTS) / sum(START_HOUR_WEIGHTS))
    start = day * 86_400 + hour * 3600 + rng.integers(0, 3600, n)
    hours = np.minimum(rng.geometric(0.15, n), MAX_RENTAL_HOURS)
    frame = pd.DataFrame(
        {
            "rental_id": ids,
            "user_id": user,
            "vehicle_id": vehicle,
            "rental_start_time": _timestamps(start, "%Y-%m-%d"),
            "rental_end_time": _timestamps(start + hours * 3600, "%Y-%m-%d"),
            "pickup_location": place_ids[pickup],
            "dropoff_location": place_ids[dropoff],
            "total_amount": _amounts(hours * rate),
        },
        columns=RENTALS.column_names,
    )
    rows = rng.choice(np.flatnonzero(valid), 13, replace=False)
    col = frame.columns.get_loc
    frame.iloc[rows[:3], col("user_id")] = unknown_ids[:3]
    frame.iloc[rows[3:6], col("vehicle_id")] = unknown_ids[3:6]
    # A vehicle missing from vehicles.csv is priced at the basic rate.
    basic = HOURLY_RATE_CENTS["basic"]
    frame.iloc[rows[3:6], col("total_amount")] = _amounts(hours[rows[3:6]] * basic)
    frame.iloc[rows[6:8], col("pickup_location")] = UNKNOWN_PICKUP_LOCATION
    frame.iloc[rows[8], col("dropoff_location")] = UNKNOWN_DROPOFF_LOCATION
    frame.iloc[rows[9:11], col("total_amount")] = "0.00"
    # Surrounding spaces are trimmed by the job: these rows stay valid.
    frame.iloc[rows[11], col("total_amount")] = f" {frame.iat[rows[11], col('total_amount')]} "
    frame.iloc[rows[12], col("pickup_location")] = (
        f"  {frame.iat[rows[12], col('pickup_location')]}"
    )
    return frame


def _weights(rng: np.random.Generator, n: int, shape: float) -> np.ndarray:
    """Uneven popularity, so some users and locations are busy and others rare."""
    w = rng.gamma(shape, size=n)
    return w / w.sum()


# --- Planting bad rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Where the bad rows of one file go, decided before its valid rows are generated."""

    slots: np.ndarray
    """Line index (0-based, data lines) of each bad row."""
    bads: tuple[_Bad, ...]
    base_of_line: np.ndarray
    """Generated row shown on each line; for a duplicate line, the last row before it."""
    valid: np.ndarray
    """Per generated row: True if it stays valid (not turned into a bad row)."""


def _plan(rng: np.random.Generator, n_lines: int, bads: Sequence[_Bad]) -> _Plan:
    """One bad row in each of ``len(bads)`` equal stretches of lines 1.., in shuffled order.

    Line 0 stays valid so that every duplicate has an earlier valid row to copy.
    """
    edges = np.linspace(1, n_lines, len(bads) + 1).astype(np.int64)
    slots = rng.integers(edges[:-1], edges[1:]) if bads else np.empty(0, np.int64)
    shuffled = tuple(bads[i] for i in rng.permutation(len(bads)))
    is_dup = np.array([b.reason is R.DUPLICATE_KEY for b in shuffled], dtype=bool)
    dup_line = np.zeros(n_lines, dtype=bool)
    dup_line[slots[is_dup]] = True
    base_of_line = np.cumsum(~dup_line) - 1
    valid = np.ones(n_lines - int(is_dup.sum()), dtype=bool)
    valid[base_of_line[slots[~is_dup]]] = False
    return _Plan(slots, shuffled, base_of_line, valid)


def _plant(
    rng: np.random.Generator, plan: _Plan, base: pd.DataFrame
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Lay the generated rows out in file order with the bad rows in their slots.

    Returns the lines as a frame and, by line index, the malformed lines, whose field counts
    a frame cannot hold (their frame rows are placeholders).
    """
    order = plan.base_of_line.copy()
    valid_rows = np.flatnonzero(plan.valid)
    for slot, bad in zip(plan.slots, plan.bads, strict=True):
        if bad.reason is R.DUPLICATE_KEY:
            earlier = valid_rows[valid_rows <= plan.base_of_line[slot]]
            order[slot] = earlier[rng.integers(0, len(earlier))]
    frame = base.iloc[order].reset_index(drop=True)
    malformed: dict[int, list[str]] = {}
    for slot, bad in zip(plan.slots.tolist(), plan.bads, strict=True):
        for column, value in bad.edits:
            frame.at[slot, column] = value.format(frame.at[slot, column])
        if bad.extra_fields:
            fields = frame.iloc[slot].tolist()
            malformed[slot] = [*fields, "unexpected"] if bad.extra_fields > 0 else fields[:-1]
    return frame, malformed


def _write_csv(path: Path, frame: pd.DataFrame, malformed: dict[int, list[str]]) -> None:
    """Standard CSV (minimal ``"`` quoting, ``\\n`` ends) with the malformed lines spliced in."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(frame.columns)
        start = 0
        for line in sorted(malformed):
            frame.iloc[start:line].to_csv(out, header=False, index=False, lineterminator="\n")
            writer.writerow(malformed[line])
            start = line + 1
        frame.iloc[start:].to_csv(out, header=False, index=False, lineterminator="\n")


def generate(
    out_dir: Path, *, rentals: int = 20_000, seed: int = 42, bad_rows: bool = True
) -> SampleSummary:
    """Write the four raw CSVs into ``out_dir`` and say what was planted in them."""
    if rentals < MIN_RENTALS:
        raise ValueError(f"rentals must be at least {MIN_RENTALS}, got {rentals}")
    rng = np.random.Generator(np.random.PCG64(seed))
    sizes = table_sizes(rentals)
    plans = {
        t.name: _plan(rng, sizes[t.name], BAD_ROWS[t.name] if bad_rows else ())
        for t in SOURCE_TABLES
    }
    counts = {name: len(plan.valid) for name, plan in plans.items()}
    n_unknown = 6
    pool = _id_pool(rng, counts["vehicles"] + counts["users"] + counts["rentals"] + n_unknown)
    cut = np.cumsum([counts["vehicles"], counts["users"], counts["rentals"]])
    base = {
        VEHICLES.name: _vehicles(rng, pool[: cut[0]]),
        USERS.name: _users(rng, pool[cut[0] : cut[1]]),
        LOCATIONS.name: _locations(rng, counts["locations"]),
    }

    def valid_rows(name: str) -> pd.DataFrame:
        return base[name][plans[name].valid]

    base[RENTALS.name] = _rentals(
        rng,
        pool[cut[1] : cut[2]],
        plans[RENTALS.name].valid,
        valid_rows(USERS.name),
        valid_rows(VEHICLES.name),
        valid_rows(LOCATIONS.name),
        pool[cut[2] :],
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for table in SOURCE_TABLES:
        plan = plans[table.name]
        frame, malformed = _plant(rng, plan, base[table.name])
        _write_csv(out_dir / table.file_name, frame, malformed)
        rows[table.file_name] = len(frame)
    planted = Counter(
        (table.name, bad.reason.value) for table in SOURCE_TABLES for bad in BAD_ROWS[table.name]
    )
    return SampleSummary(rows, dict(planted) if bad_rows else {})


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: write the files and print rows per file, planted bad rows and the elapsed time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the four CSV files")
    parser.add_argument("--rentals", type=int, default=20_000, help="rental lines to write")
    parser.add_argument("--seed", type=int, default=42, help="random seed (same seed, same bytes)")
    parser.add_argument("--no-bad-rows", action="store_true", help="write valid rows only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    summary = generate(
        args.out, rentals=args.rentals, seed=args.seed, bad_rows=not args.no_bad_rows
    )
    elapsed = time.perf_counter() - started
    for name, count in summary.rows.items():
        print(f"{name:<26} {count:>10,} rows  {args.out / name}")
    planted = ", ".join(f"{t}/{r}={n}" for (t, r), n in summary.planted.items()) or "none"
    print(f"planted bad rows ({sum(summary.planted.values())}): {planted}")
    print(f"elapsed {elapsed:.2f} s")


if __name__ == "__main__":
    main()
