"""Where the bad rows of a file go, and the file's lines laid out with them in their slots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from car_rental_platform.sample_data.bad_rows import BadRow
from spark_jobs.contract import RejectReason


@dataclass(frozen=True)
class Placement:
    """Where the bad rows of one file go, decided before its valid rows are generated."""

    slots: np.ndarray
    """Line index (0-based, data lines) of each bad row."""
    bads: tuple[BadRow, ...]
    base_of_line: np.ndarray
    """Generated row shown on each line; for a duplicate line, the last row before it."""
    valid: np.ndarray
    """Per generated row: True if it stays valid (not turned into a bad row)."""


def place(rng: np.random.Generator, n_lines: int, bads: Sequence[BadRow]) -> Placement:
    """One bad row in each of ``len(bads)`` equal stretches of lines 1.., in shuffled order.

    Line 0 stays valid so that every duplicate has an earlier valid row to copy.
    """
    edges = np.linspace(1, n_lines, len(bads) + 1).astype(np.int64)
    slots = rng.integers(edges[:-1], edges[1:]) if bads else np.empty(0, np.int64)
    shuffled = tuple(bads[i] for i in rng.permutation(len(bads)))
    is_dup = np.array([b.reason is RejectReason.DUPLICATE_KEY for b in shuffled], dtype=bool)
    dup_line = np.zeros(n_lines, dtype=bool)
    dup_line[slots[is_dup]] = True
    base_of_line = np.cumsum(~dup_line) - 1
    valid = np.ones(n_lines - int(is_dup.sum()), dtype=bool)
    valid[base_of_line[slots[~is_dup]]] = False
    return Placement(slots, shuffled, base_of_line, valid)


def plant(
    rng: np.random.Generator, plan: Placement, base: pd.DataFrame
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Lay the generated rows out in file order with the bad rows in their slots.

    Returns the lines as a frame and, by line index, the malformed lines, whose field counts
    a frame cannot hold (their frame rows are placeholders).
    """
    order = plan.base_of_line.copy()
    valid_rows = np.flatnonzero(plan.valid)
    for slot, bad in zip(plan.slots, plan.bads, strict=True):
        if bad.reason is RejectReason.DUPLICATE_KEY:
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
