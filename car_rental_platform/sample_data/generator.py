"""``generate``: the four raw CSVs of a sample, and what was planted in them."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from car_rental_platform.sample_data.bad_rows import BAD_ROWS
from car_rental_platform.sample_data.formatting import id_pool
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
)

MIN_RENTALS = 100
"""Below this the planted bad rows would crowd the file."""


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


def generate(
    out_dir: Path, *, rentals: int = 20_000, seed: int = 42, bad_rows: bool = True
) -> SampleSummary:
    """Write the four raw CSVs into ``out_dir`` and say what was planted in them."""
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
        _write_csv(out_dir / table.file_name, frame, malformed)
        rows[table.file_name] = len(frame)
    planted = Counter(
        (table.name, bad.reason.value) for table in SOURCE_TABLES for bad in BAD_ROWS[table.name]
    )
    return SampleSummary(rows, dict(planted) if bad_rows else {})
