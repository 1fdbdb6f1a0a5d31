"""``generate``: the four raw CSVs of a sample, and what was planted in them."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from car_rental_platform.sample_data.bad_rows import BAD_ROWS
from car_rental_platform.sample_data.formatting import EPOCH, id_pool
from car_rental_platform.sample_data.planting import place, plant
from car_rental_platform.sample_data.tables import (
    location_rows,
    rental_rows,
    table_sizes,
    user_rows,
    vehicle_rows,
)
from spark_jobs.contract import (
    LOCATIONS,
    RENTALS,
    SOURCE_TABLES,
    USERS,
    VEHICLES,
    daily_export_name,
)

MIN_RENTALS = 100
"""Below this the planted bad rows would crowd the file."""
LATE_SHARE = 0.03
"""Share of daily-export lines exported 1-3 days after their rental's start (late arrivals)."""
MAX_DELAY_DAYS = 3
DAILY_STREAM = 9
"""Second seed word of the export-day generator (a stream apart from the sample's own)."""


@dataclass(frozen=True)
class SampleSummary:
    """What ``generate`` wrote: data lines per file and bad rows planted per (table, reason)."""

    rows: dict[str, int]
    """Data lines (header excluded) per file name, valid and bad rows alike."""
    planted: dict[tuple[str, str], int]
    """(processed table name, RejectReason value) -> rows planted to be rejected for it."""


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


def export_days(rng: np.random.Generator, frame: pd.DataFrame) -> np.ndarray:
    """The export day (days since 1970-01-01) of each rentals line, for ``--daily``.

    A line is exported on its rental's start day, or 1-3 days later for a late arrival; a
    line whose start is not a date goes with the line before it. A repeated ``rental_id`` is
    exported 1-3 days after its first occurrence's export, so the first occurrence by export
    day then file order (DESIGN 3.5) is the first in the single file's order too: the daily
    exports reject exactly the single file's duplicates and keep the same rows.
    """
    start = pd.to_datetime(
        frame["rental_start_time"].str.slice(0, 10), format="%Y-%m-%d", errors="coerce"
    )
    days = (start - pd.Timestamp("1970-01-01")).dt.days.ffill().bfill().to_numpy(np.int64)
    late = rng.random(len(days)) < LATE_SHARE
    days = days + np.where(late, rng.integers(1, MAX_DELAY_DAYS + 1, len(days)), 0)
    delays = rng.integers(1, MAX_DELAY_DAYS + 1, len(days))
    first_day: dict[str, int] = {}
    for line, rental_id in enumerate(frame["rental_id"].astype(str).str.strip()):
        if rental_id in first_day:
            days[line] = max(days[line], first_day[rental_id] + delays[line])
        else:
            first_day[rental_id] = int(days[line])
    return days


def _write_daily(
    out_dir: Path, rng: np.random.Generator, frame: pd.DataFrame, malformed: dict[int, list[str]]
) -> dict[str, int]:
    """One ``rental_transactions_YYYY-MM-DD.csv`` per day from the first export day to the
    last (a day without rentals is a header-only export), each in the single file's order."""
    days = export_days(rng, frame)
    rows: dict[str, int] = {}
    for day in range(int(days.min()), int(days.max()) + 1):
        lines = np.flatnonzero(days == day)
        position = {int(line): i for i, line in enumerate(lines)}
        name = daily_export_name(EPOCH + timedelta(days=day))
        _write_csv(
            out_dir / name,
            frame.iloc[lines].reset_index(drop=True),
            {position[line]: fields for line, fields in malformed.items() if line in position},
        )
        rows[name] = len(lines)
    return rows


def generate(
    out_dir: Path,
    *,
    rentals: int = 20_000,
    seed: int = 42,
    bad_rows: bool = True,
    daily: bool = False,
) -> SampleSummary:
    """Write the four raw CSVs into ``out_dir`` and say what was planted in them.

    ``daily`` writes the rentals as daily exports instead of one ``rental_transactions.csv``
    (``_write_daily``): the same lines, so the same rentals kept and rejected; the three
    snapshots are byte-identical to those of the single-file sample of the same seed.
    """
    if rentals < MIN_RENTALS:
        raise ValueError(f"rentals must be at least {MIN_RENTALS}, got {rentals}")
    rng = np.random.Generator(np.random.PCG64(seed))
    sizes = table_sizes(rentals)
    plans = {
        t.name: place(rng, sizes[t.name], BAD_ROWS[t.name] if bad_rows else ())
        for t in SOURCE_TABLES
    }
    counts = {name: len(plan.valid) for name, plan in plans.items()}
    n_unknown = 6
    pool = id_pool(rng, counts["vehicles"] + counts["users"] + counts["rentals"] + n_unknown)
    cut = np.cumsum([counts["vehicles"], counts["users"], counts["rentals"]])
    base = {
        VEHICLES.name: vehicle_rows(rng, pool[: cut[0]]),
        USERS.name: user_rows(rng, pool[cut[0] : cut[1]]),
        LOCATIONS.name: location_rows(rng, counts["locations"]),
    }

    def valid_rows(name: str) -> pd.DataFrame:
        return base[name][plans[name].valid]

    base[RENTALS.name] = rental_rows(
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
        frame, malformed = plant(rng, plan, base[table.name])
        if daily and table is RENTALS:
            # A generator of its own: the lines are the single file's, whatever --daily does.
            days_rng = np.random.Generator(np.random.PCG64([seed, DAILY_STREAM]))
            rows.update(_write_daily(out_dir, days_rng, frame, malformed))
        else:
            _write_csv(out_dir / table.file_name, frame, malformed)
            rows[table.file_name] = len(frame)
    planted = Counter(
        (table.name, bad.reason.value) for table in SOURCE_TABLES for bad in BAD_ROWS[table.name]
    )
    return SampleSummary(rows, dict(planted) if bad_rows else {})
