"""Valid rows of the four raw tables, generated column by column (bad rows are planted later)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from car_rental_platform.sample_data.formatting import (
    day_strings,
    digit_strings,
    phone_numbers,
    pick,
    random_days,
    render_distinct,
    timestamp_strings,
)
from car_rental_platform.sample_data.vocabulary import (
    CITIES,
    COMPANY_SUFFIXES,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    LICENSE_TYPES,
    LUXURY_BRANDS,
    MAINSTREAM_BRANDS,
    PLACES,
    START_HOUR_WEIGHTS,
    STREETS,
)
from spark_jobs.contract import (
    LOCATIONS,
    RENTALS,
    USERS,
    VEHICLES,
)

RENTAL_FIRST_DAY, RENTAL_LAST_DAY = date(2024, 1, 1), date(2024, 6, 30)
HOURLY_RATE_CENTS = {"basic": 1250, "premium": 2500, "high_end": 6000}
"""total_amount = whole rental hours x this rate of the vehicle's type."""
MAX_RENTAL_HOURS = 72
UNKNOWN_PICKUP_LOCATION, UNKNOWN_DROPOFF_LOCATION = "99999", "99998"
LOCATION_COUNT = 300


def table_sizes(rentals: int) -> dict[str, int]:
    """Data lines per table for a run with ``rentals`` rental lines."""
    return {
        VEHICLES.name: max(500, rentals // 20),
        USERS.name: max(1000, min(300_000, 30_000 * rentals // 20_000)),
        LOCATIONS.name: LOCATION_COUNT,
        RENTALS.name: rentals,
    }


def vehicle_rows(rng: np.random.Generator, ids: np.ndarray) -> pd.DataFrame:
    n = len(ids)
    brand_idx = rng.integers(0, len(MAINSTREAM_BRANDS) + len(LUXURY_BRANDS), n)
    luxury = brand_idx >= len(MAINSTREAM_BRANDS)
    share = rng.random(n)
    vehicle_type = np.where(
        luxury,
        np.where(share < 0.6, "premium", "high_end"),
        np.where(share < 0.8, "basic", "premium"),
    ).astype(object)
    last, first = pick(rng, LAST_NAMES, n), pick(rng, FIRST_NAMES, n)
    company = last.astype(str) + " " + pick(rng, COMPANY_SUFFIXES, n).astype(str)
    person = np.char.upper((last + ", " + first).astype(str))
    city = rng.integers(0, len(CITIES), n)
    cities = np.array([f"{c[0]}, {c[1]} {c[4]}" for c in CITIES], dtype=object)[city]
    letters = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"), dtype=object)
    update_day = random_days(rng, n, date(2024, 1, 1), date(2024, 6, 30))
    return pd.DataFrame(
        {
            "active": np.where(rng.random(n) < 0.85, "1", "0").astype(object),
            "vehicle_license_number": "5" + digit_strings(rng.integers(0, 10**6, n), 6),
            "registration_name": np.where(
                rng.random(n) < 0.6, np.char.upper(company), person
            ).astype(object),
            "license_type": pick(rng, LICENSE_TYPES, n),
            "expiration_date": day_strings(
                random_days(rng, n, date(2024, 7, 1), date(2027, 12, 31)), "%d-%m-%Y"
            ),
            "permit_license_number": letters[rng.integers(0, len(letters), n)]
            + letters[rng.integers(0, len(letters), n)]
            + digit_strings(rng.integers(0, 1000, n), 3),
            "certification_date": day_strings(
                random_days(rng, n, date(2015, 1, 1), date(2024, 6, 30)), "%Y-%m-%d"
            ),
            "vehicle_year": digit_strings(rng.integers(2005, 2026, n), 4),
            "base_telephone_number": phone_numbers(rng, n),
            "base_address": render_distinct(rng.integers(1, 10_000, n), str)
            + " "
            + pick(rng, STREETS, n)
            + ", "
            + cities
            + digit_strings(rng.integers(0, 100, n), 2),
            "vehicle_id": ids,
            "last_update_timestamp": timestamp_strings(
                update_day * 86_400 + rng.integers(0, 86_400, n), "%d-%m-%Y"
            ),
            "brand": np.array(MAINSTREAM_BRANDS + LUXURY_BRANDS, dtype=object)[brand_idx],
            "vehicle_type": vehicle_type,
        },
        columns=VEHICLES.column_names,
    )


def user_rows(rng: np.random.Generator, ids: np.ndarray) -> pd.DataFrame:
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
            + render_distinct(rng.integers(1, 1000, n), str)
            + "@"
            + pick(rng, EMAIL_DOMAINS, n),
            "phone_number": phone_numbers(rng, n),
            "driver_license_number": letters[rng.integers(0, 26, n)]
            + digit_strings(rng.integers(0, 10**8, n), 8),
            "driver_license_expiry": day_strings(
                random_days(rng, n, date(2024, 7, 1), date(2030, 12, 31)), "%Y-%m-%d"
            ),
            "creation_date": day_strings(
                random_days(rng, n, date(2019, 1, 1), date(2024, 6, 30)), "%Y-%m-%d"
            ),
            "is_active": np.where(rng.random(n) < 0.9, "1", "0").astype(object),
        },
        columns=USERS.column_names,
    )


def location_rows(rng: np.random.Generator, n: int) -> pd.DataFrame:
    city = rng.integers(0, len(CITIES), n)
    name = np.array([c[0] for c in CITIES], dtype=object)[city] + " " + pick(rng, PLACES, n)
    quoted = rng.random(n) < 0.02  # a few names with double quotes exercise CSV escaping
    name[quoted] = name[quoted] + ' "Express" Lot'
    suite = rng.integers(1, 40, n)
    address = render_distinct(rng.integers(1, 2000, n), str) + " " + pick(rng, STREETS, n)
    with_suite = rng.random(n) < 0.5
    address[with_suite] = address[with_suite] + ", Suite " + render_distinct(suite[with_suite], str)
    lat = np.array([c[2] for c in CITIES])[city] + rng.normal(0, 0.04, n)
    lon = np.array([c[3] for c in CITIES])[city] + rng.normal(0, 0.04, n)
    return pd.DataFrame(
        {
            "location_id": render_distinct(np.arange(1, n + 1), str),
            "location_name": name,
            "address": address,
            "city": np.array([c[0] for c in CITIES], dtype=object)[city],
            "state": np.array([c[1] for c in CITIES], dtype=object)[city],
            "zip_code": np.array([c[4] for c in CITIES], dtype=object)[city]
            + digit_strings(rng.integers(0, 100, n), 2),
            "latitude": np.array([f"{v:.6f}" for v in lat], dtype=object),
            "longitude": np.array([f"{v:.6f}" for v in lon], dtype=object),
        },
        columns=LOCATIONS.column_names,
    )


def _amounts(cents: np.ndarray) -> np.ndarray:
    return render_distinct(cents, lambda c: f"{c // 100}.{c % 100:02d}")


def rental_rows(
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
    day = random_days(rng, n, RENTAL_FIRST_DAY, RENTAL_LAST_DAY)
    hour = rng.choice(24, n, p=np.array(START_HOUR_WEIGHTS) / sum(START_HOUR_WEIGHTS))
    start = day * 86_400 + hour * 3600 + rng.integers(0, 3600, n)
    hours = np.minimum(rng.geometric(0.15, n), MAX_RENTAL_HOURS)
    frame = pd.DataFrame(
        {
            "rental_id": ids,
            "user_id": user,
            "vehicle_id": vehicle,
            "rental_start_time": timestamp_strings(start, "%Y-%m-%d"),
            "rental_end_time": timestamp_strings(start + hours * 3600, "%Y-%m-%d"),
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
