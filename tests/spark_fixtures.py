"""Tiny hand-built inputs for the Spark tests: raw CSV files and typed processed DataFrames.

Nothing here re-implements a rule under test: raw files are written verbatim, and processed
tables are built from ISO strings cast to the contract's types (timestamps are parsed by Spark
in the session time zone, UTC, so the machine's own time zone never matters).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from car_rental_platform.raw_records import land
from spark_jobs.cleaning import Cleaned, clean, read_raw, with_rental_derivations
from spark_jobs.contract import RENTALS, RentalBatch, SourceTable, batch_folder, rental_batch
from spark_jobs.contract import Column as ContractColumn
from spark_jobs.raw_format import MANIFEST

ISO_TIMESTAMP = "yyyy-MM-dd HH:mm:ss"
ISO_DATE = "yyyy-MM-dd"


# --- Raw CSV files ---------------------------------------------------------------------------


def csv_line(values: Sequence[str]) -> str:
    """One CSV line (minimal quoting, as Python's csv module writes it), without line end."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Write the lines verbatim, each ended by ``\\n`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def land_export(lake: Path, table: SourceTable, export: Path) -> Path:
    """Land an export the way ``raw_files`` does: the canonical copy and its manifest in
    ``<lake>/raw/<raw_name>/``, where the jobs look (the real landing code, no shortcut)."""
    folder = lake / "raw" / table.raw_name
    if table is RENTALS:  # one batch folder per export (DESIGN 3.5)
        folder /= batch_folder(rental_batch(export.name) or RentalBatch(None))
    folder.mkdir(parents=True, exist_ok=True)
    landed = land(export, table, str(export), folder / table.file_name)
    (folder / MANIFEST).write_text(landed.manifest.to_json())
    return folder


def land_lines(lake: Path, table: SourceTable, lines: Iterable[str]) -> Path:
    """Write an export verbatim under ``<lake>/exports/`` and land it."""
    return land_export(lake, table, write_lines(lake / "exports" / table.file_name, lines))


def clean_file(spark: SparkSession, table: SourceTable, path: Path) -> Cleaned:
    """Land one export into a lake beside it, then read and clean it as the job does."""
    folder = land_export(path.parent / f"lake-{path.stem}", table, path)
    return clean(table, read_raw(spark, table, str(folder)))


# --- Processed tables ------------------------------------------------------------------------


def _typed(column: ContractColumn) -> Column:
    value = F.col(column.name)
    if column.type == "timestamp":
        return F.to_timestamp(value, ISO_TIMESTAMP)
    if column.type == "date":
        return F.to_date(value, ISO_DATE)
    return value.cast(column.type)


def processed(
    spark: SparkSession, table: SourceTable, rows: Sequence[Mapping[str, str | None]]
) -> DataFrame:
    """A processed table from rows of strings (ISO dates and times; absent keys are null),
    cast to the contract's types; rentals also get their derived columns."""
    unknown = {key for row in rows for key in row} - set(table.column_names)
    assert not unknown, f"not columns of {table.name}: {unknown}"
    schema = ", ".join(f"`{name}` string" for name in table.column_names)
    data = [tuple(row.get(name) for name in table.column_names) for row in rows]
    frame = spark.createDataFrame(data, schema).select(
        *[_typed(c).alias(c.name) for c in table.columns]
    )
    return with_rental_derivations(frame) if table.name == RENTALS.name else frame


def rental(
    rental_id: str,
    user_id: str,
    vehicle_id: str,
    start: str,
    end: str,
    pickup: int,
    dropoff: int,
    amount: str,
) -> dict[str, str]:
    """A rentals row (before derivations) as strings."""
    return {
        "rental_id": rental_id,
        "user_id": user_id,
        "vehicle_id": vehicle_id,
        "rental_start_time": start,
        "rental_end_time": end,
        "pickup_location": str(pickup),
        "dropoff_location": str(dropoff),
        "total_amount": amount,
    }


# --- Reading results back --------------------------------------------------------------------


def contract_dtypes(columns: Iterable[ContractColumn]) -> list[tuple[str, str]]:
    """``DataFrame.dtypes`` a frame with exactly these columns must have."""
    return [(c.name, c.type) for c in columns]


def rows(df: DataFrame) -> list[dict[str, Any]]:
    """Collected rows as dicts, timestamps as ``yyyy-MM-dd HH:mm:ss`` strings rendered by
    Spark in the session time zone (so the Python process's time zone plays no part)."""
    columns = [
        F.date_format(F.col(name), ISO_TIMESTAMP).alias(name)
        if kind == "timestamp"
        else F.col(name)
        for name, kind in df.dtypes
    ]
    return [row.asDict() for row in df.select(*columns).collect()]


class RecordingReporter:
    """A ``spark_jobs.reporting.Reporter`` that keeps what it is told."""

    def __init__(self) -> None:
        self.logs: list[str] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self.checks: dict[tuple[str, str], Any] = {}

    def log(self, message: str) -> None:
        self.logs.append(message)

    def report(self, asset_key: str, metadata: Mapping[str, Any]) -> None:
        assert asset_key not in self.reports, f"{asset_key} reported twice"
        self.reports[asset_key] = dict(metadata)

    def check(self, asset_key: str, name: str, outcome: Any) -> None:
        """Asset-check results (``spark_jobs.quality.CheckOutcome``), by (asset key, check)."""
        assert (asset_key, name) not in self.checks, f"{asset_key} {name} checked twice"
        self.checks[(asset_key, str(name))] = outcome
