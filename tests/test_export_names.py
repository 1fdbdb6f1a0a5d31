"""The daily-export naming of DESIGN 3.5: which rentals batch a landed file holds, and in what
order batches decide which duplicate is kept."""

from __future__ import annotations

from datetime import date

import pytest

from car_rental_platform.main import missing_exports
from spark_jobs.contract import (
    FULL_BATCH,
    ExportNameError,
    RentalBatch,
    batch_of_key,
    batch_order,
    daily_export_name,
    rental_batch,
)


def test_daily_export_name_round_trips() -> None:
    day = date(2024, 3, 1)
    assert daily_export_name(day) == "rental_transactions_2024-03-01.csv"
    batch = rental_batch("rental_transactions_2024-03-01.csv")
    assert batch == RentalBatch(day)
    assert (batch.key, batch.file_name) == ("2024-03-01", "rental_transactions_2024-03-01.csv")
    assert batch_of_key("2024-03-01") == batch


def test_the_single_file_is_the_full_batch() -> None:
    batch = rental_batch("rental_transactions.csv")
    assert batch == RentalBatch(None)
    assert (batch.key, batch.file_name) == (FULL_BATCH, "rental_transactions.csv")
    assert batch_of_key(FULL_BATCH) == batch


@pytest.mark.parametrize(
    "name",
    [
        "users.csv",
        "rental_transactions_2024-3-1.csv",
        "rental_transactions_20240301.csv",
        "rental_transactions_2024-03-01.csv.part",
        "Rental_transactions_2024-03-01.csv",
        "rental_transactions_2024-03-01.CSV",
    ],
)
def test_other_names_are_not_rentals_exports(name: str) -> None:
    assert rental_batch(name) is None


def test_an_impossible_day_is_an_error_naming_the_file() -> None:
    with pytest.raises(ExportNameError, match=r"rental_transactions_2024-02-30\.csv"):
        rental_batch("rental_transactions_2024-02-30.csv")
    with pytest.raises(ExportNameError, match="neither"):
        batch_of_key("yesterday")


def test_full_file_first_then_days_in_order() -> None:
    names = [
        "rental_transactions_2024-01-10.csv",
        "rental_transactions.csv",
        "rental_transactions_2023-12-31.csv",
        "rental_transactions_2024-01-02.csv",
    ]
    ordered = batch_order(rental_batch(n) for n in names)
    assert [b.key for b in ordered] == ["full", "2023-12-31", "2024-01-02", "2024-01-10"]


def test_the_run_command_accepts_daily_exports_in_place_of_the_single_file(tmp_path) -> None:
    for name in ("vehicles.csv", "users.csv", "locations.csv"):
        (tmp_path / name).write_text("x\n")
    assert missing_exports(tmp_path) == [
        "rental_transactions.csv (or daily rental_transactions_YYYY-MM-DD.csv)"
    ]
    (tmp_path / "rental_transactions_2024-03-01.csv").write_text("x\n")
    assert missing_exports(tmp_path) == []
    (tmp_path / "users.csv").unlink()
    assert missing_exports(tmp_path) == ["users.csv"]
