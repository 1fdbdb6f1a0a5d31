"""An independent pandas reading of DESIGN 3.3, to hold the Spark KPI tables to.

Written from the contract's words, not from spark_jobs/kpis.py: decimals with half-up
rounding, percent_rank by hand, unknown vehicles as 'unknown'.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

CENT = Decimal("0.01")


def half_up(value: object) -> Decimal | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def mean(values: pd.Series) -> Decimal:
    total = sum((Decimal(str(v)) for v in values), Decimal(0))
    return half_up(total / len(values))


def category(percentile: float) -> str:
    for bound, name in ((90, "Top Spender"), (75, "High Spender"), (50, "Medium Spender")):
        if percentile >= bound:
            return name
    return "Low Spender" if percentile >= 25 else "Occasional Spender"


def user_metrics(rentals: pd.DataFrame) -> pd.DataFrame:
    """user_id -> total_spent, spending_percentile, spending_category (percent_rank by hand)."""
    spent = rentals.groupby("user_id")["total_amount"].apply(
        lambda s: sum((Decimal(str(v)) for v in s), Decimal(0))
    )
    n = len(spent)
    ordered = sorted(spent.values)
    rows = []
    for user, total in spent.items():
        rank = ordered.index(total)  # 0-based rank of the first equal value = percent_rank's
        percentile = float(half_up(Decimal(rank) / Decimal(n - 1) * 100)) if n > 1 else 0.0
        rows.append((user, half_up(total), percentile, category(percentile)))
    return pd.DataFrame(
        rows, columns=["user_id", "total_spent", "spending_percentile", "spending_category"]
    ).set_index("user_id")


def vehicle_type_revenue(rentals: pd.DataFrame, vehicles: pd.DataFrame) -> dict[str, Decimal]:
    types = vehicles.set_index("vehicle_id")["vehicle_type"]
    kinds = rentals["vehicle_id"].map(types).fillna("unknown")
    return {
        kind: half_up(sum((Decimal(str(v)) for v in group), Decimal(0)))
        for kind, group in rentals["total_amount"].groupby(kinds)
    }


def daily(rentals: pd.DataFrame) -> pd.DataFrame:
    """rental_date -> count, revenue, avg, unique users, total hours (2 decimals, half up)."""
    start = pd.to_datetime(rentals["rental_start_time"], utc=True)
    end = pd.to_datetime(rentals["rental_end_time"], utc=True)
    frame = rentals.assign(day=start.dt.date, hours=(end - start).dt.total_seconds() / 3600)
    rows = []
    for day, group in frame.groupby("day"):
        rows.append(
            (
                day,
                len(group),
                half_up(sum((Decimal(str(v)) for v in group["total_amount"]), Decimal(0))),
                mean(group["total_amount"]),
                group["user_id"].nunique(),
                float(half_up(group["hours"].sum())),
            )
        )
    columns = ["rental_date", "total_transactions", "total_revenue", "avg", "users", "hours"]
    return pd.DataFrame(rows, columns=columns).set_index("rental_date")


def weekday_counts(rentals: pd.DataFrame) -> dict[int, int]:
    """ISO weekday (1 = Monday) -> rentals."""
    start = pd.to_datetime(rentals["rental_start_time"], utc=True)
    return start.dt.isocalendar().day.value_counts().sort_index().to_dict()
