"""The sample generator's command line: ``python -m car_rental_platform.sample_data --help``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from car_rental_platform import sample_data
from car_rental_platform.sample_data.generator import generate
from spark_jobs.contract import RentalBatch, rental_batch

FULL = RentalBatch(None)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: write the files and print rows per file, planted bad rows and the elapsed time."""
    parser = argparse.ArgumentParser(
        prog="python -m car_rental_platform.sample_data",
        description=sample_data.__doc__.splitlines()[0],
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the four CSV files")
    parser.add_argument("--rentals", type=int, default=20_000, help="rental lines to write")
    parser.add_argument("--seed", type=int, default=42, help="random seed (same seed, same bytes)")
    parser.add_argument("--no-bad-rows", action="store_true", help="write valid rows only")
    parser.add_argument(
        "--daily",
        action="store_true",
        help="rentals as one rental_transactions_YYYY-MM-DD.csv per day (late arrivals and "
        "repeated rental_ids included) instead of one rental_transactions.csv",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    summary = generate(
        args.out,
        rentals=args.rentals,
        seed=args.seed,
        bad_rows=not args.no_bad_rows,
        daily=args.daily,
    )
    elapsed = time.perf_counter() - started
    daily = {n: c for n, c in summary.rows.items() if rental_batch(n) not in (None, FULL)}
    for name, count in summary.rows.items():
        if name not in daily:
            print(f"{name:<26} {count:>10,} rows  {args.out / name}")
    if daily:
        first, last = min(daily), max(daily)
        print(
            f"{'daily rental exports':<26} {sum(daily.values()):>10,} rows  {len(daily)} files, "
            f"{args.out / first} ... {last}"
        )
    planted = ", ".join(f"{t}/{r}={n}" for (t, r), n in summary.planted.items()) or "none"
    print(f"planted bad rows ({sum(summary.planted.values())}): {planted}")
    print(f"elapsed {elapsed:.2f} s")


if __name__ == "__main__":
    main()
