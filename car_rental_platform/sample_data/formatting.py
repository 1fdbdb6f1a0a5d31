"""Sample values as strings, vectorised: formatting a million values one by one is too slow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from car_rental_platform.sample_data.vocabulary import CITIES

EPOCH = date(1970, 1, 1)


def digit_strings(values: np.ndarray, width: int, base: int = 10) -> np.ndarray:
    """Zero-padded ``width``-digit strings (lower-case hex for base 16) as an object array."""
    alphabet = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    powers = np.int64(base) ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars = alphabet[(np.asarray(values, dtype=np.int64)[:, None] // powers) % base]
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def render_distinct(values: np.ndarray, render: Callable[[int], str]) -> np.ndarray:
    """Render each distinct value once and index: fast when values repeat (days, amounts)."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([render(int(v)) for v in distinct], dtype=object)[inverse.ravel()]


def day_strings(values: np.ndarray, fmt: str) -> np.ndarray:
    """Days since 1970-01-01 as ``strftime`` strings."""
    return render_distinct(values, lambda d: (EPOCH + timedelta(days=d)).strftime(fmt))


def timestamp_strings(seconds: np.ndarray, date_fmt: str) -> np.ndarray:
    """Seconds since 1970-01-01 as ``<date_fmt> HH:MM:SS`` strings."""
    days, clock = np.divmod(seconds, 86_400)
    hms = render_distinct(clock, lambda s: f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}")
    return day_strings(days, date_fmt) + " " + hms


def epoch_day(day: date) -> int:
    return (day - EPOCH).days


def random_days(rng: np.random.Generator, n: int, first: date, last: date) -> np.ndarray:
    return rng.integers(epoch_day(first), epoch_day(last) + 1, n)


def pick(rng: np.random.Generator, options: Sequence[str], n: int) -> np.ndarray:
    return np.array(options, dtype=object)[rng.integers(0, len(options), n)]


def phone_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    area = pick(rng, [c[5] for c in CITIES], n)
    return (
        "+1-"
        + area
        + "-"
        + digit_strings(rng.integers(200, 1000, n), 3)
        + "-"
        + digit_strings(rng.integers(0, 10_000, n), 4)
    )


def id_pool(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct 10-hex-digit ids; about 1% all digits with leading zeros (``0000012345``)
    and 1% in scientific-notation form (``6e61610976``), so number-guessing readers break."""
    odd = max(2, n // 100)
    ids = np.empty(n, dtype=object)
    ids[:odd] = digit_strings(rng.choice(10**6, odd, replace=False), 10)
    ids[odd : 2 * odd] = (
        digit_strings(rng.integers(1, 10, odd), 1)
        + "e"
        + digit_strings(rng.choice(10**8, odd, replace=False), 8)
    )
    ids[2 * odd :] = digit_strings(rng.choice(16**10, n - 2 * odd, replace=False), 10, 16)
    while (clash := pd.Index(ids).duplicated()).any():  # a random id can match a special one
        ids[clash] = digit_strings(rng.integers(0, 16**10, int(clash.sum())), 10, 16)
    return ids[rng.permutation(n)]
