"""The sample generator's command line: ``python -m car_rental_platform.sample_data --help``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from car_rental_platform import sample_data
from car_rental_platform.sample_data.generator import generate


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
