"""The data contract (DESIGN.md section 3): the one home of table names, columns and types.

Everything else (the Spark jobs, the Dagster assets and checks, the catalogs, the sample-data
generator) reads names and schemas from here. This module is pure Python so that it ships to EMR
inside the ``--py-files`` zip and imports without Spark.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum


@dataclass(frozen=True)
class Column:
    """One column: name, Spark SQL type, parse format for dates, and whether a value is required."""

    name: str
    type: str
    description: str = ""
    format: str | None = None
    required: bool = False
    maximum: str | None = None
    """Largest accepted value (a decimal literal) for numbers whose sums must stay exact."""


@dataclass(frozen=True)
class SourceTable:
    """A raw CSV input and the processed table cleaned from it."""

    name: str
    """Processed table name (``processed/<name>/``)."""
    raw_name: str
    """Raw zone folder and file stem (``raw/<raw_name>/<raw_name>.csv``)."""
    key: str
    """Primary key: duplicates after the first occurrence in file order are rejected."""
    columns: tuple[Column, ...]
    derived: tuple[Column, ...] = ()
    description: str = ""
    partition_by: tuple[str, ...] = ()
    """Columns the processed table is Hive-partitioned by (``<column>=<value>/`` folders), so
    readers filtering on them read only the matching folders."""

    @property
    def file_name(self) -> str:
        return f"{self.raw_name}.csv"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def processed_columns(self) -> tuple[Column, ...]:
        return self.columns + self.derived

    @property
    def partition_types(self) -> dict[str, str]:
        """SQL type of each partition column, for readers that type the folder names."""
        types = {c.name: c.type for c in self.processed_columns}
        return {name: types[name].upper() for name in self.partition_by}


@dataclass(frozen=True)
class KpiTable:
    """A KPI table: its grain (primary key) and columns, in output order."""

    name: str
    key: tuple[str, ...]
    count_column: str
    """The column whose sum is the number of rentals (an invariant of section 3.3)."""
    revenue_column: str
    """The column whose sum is the total revenue of rentals (an invariant of section 3.3)."""
    columns: tuple[Column, ...]
    description: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


MONEY = "decimal(18,2)"
"""Money in processed and KPI tables: exact, so sums agree across tables and rounding is half up."""
HOURS = "double"
MAX_AMOUNT = "9999999.99"
"""The largest total_amount kept: a KPI total over a billion rentals still fits MONEY."""

VEHICLES = SourceTable(
    name="vehicles",
    raw_name="vehicles",
    key="vehicle_id",
    description="Vehicles offered on the marketplace, one row per vehicle_id.",
    columns=(
        Column("active", "int", "1 if listed, 0 if not (an attribute, not a filter)"),
        Column("vehicle_license_number", "string", "Vehicle licence number"),
        Column("registration_name", "string", "Name the vehicle is registered to"),
        Column("license_type", "string", "Licence type"),
        Column("expiration_date", "date", "Licence expiry", format="dd-MM-yyyy"),
        Column("permit_license_number", "string", "Permit licence number"),
        Column("certification_date", "date", "Certification date", format="yyyy-MM-dd"),
        Column("vehicle_year", "int", "Model year"),
        Column("base_telephone_number", "string", "Telephone of the vehicle's base"),
        Column("base_address", "string", "Address of the vehicle's base"),
        Column("vehicle_id", "string", "Vehicle id (a string, never a number)", required=True),
        Column(
            "last_update_timestamp",
            "timestamp",
            "Last update of the record (UTC)",
            format="dd-MM-yyyy HH:mm:ss",
        ),
        Column("brand", "string", "Brand"),
        Column("vehicle_type", "string", "basic, premium or high_end"),
    ),
)

USERS = SourceTable(
    name="users",
    raw_name="users",
    key="user_id",
    description="Registered renters, one row per user_id.",
    columns=(
        Column("user_id", "string", "User id (a string, never a number)", required=True),
        Column("first_name", "string", "First name"),
        Column("last_name", "string", "Last name"),
        Column("email", "string", "E-mail address"),
        Column("phone_number", "string", "Phone number"),
        Column("driver_license_number", "string", "Driver licence number"),
        Column("driver_license_expiry", "date", "Driver licence expiry", format="yyyy-MM-dd"),
        Column("creation_date", "date", "Account creation date", format="yyyy-MM-dd"),
        Column("is_active", "int", "1 if the account is active (an attribute, not a filter)"),
    ),
)

LOCATIONS = SourceTable(
    name="locations",
    raw_name="locations",
    key="location_id",
    description="Pick-up and drop-off locations, one row per location_id.",
    columns=(
        Column("location_id", "int", "Location id", required=True),
        Column("location_name", "string", "Location name"),
        Column("address", "string", "Street address"),
        Column("city", "string", "City"),
        Column("state", "string", "State"),
        Column("zip_code", "string", "ZIP code (a string: leading zeros matter)"),
        Column("latitude", "double", "Latitude, -90 to 90"),
        Column("longitude", "double", "Longitude, -180 to 180"),
    ),
)

RENTALS = SourceTable(
    name="rentals",
    raw_name="rental_transactions",
    key="rental_id",
    description="Rental transactions, one row per rental_id, with duration, date and hour derived.",
    columns=(
        Column("rental_id", "string", "Rental id", required=True),
        Column("user_id", "string", "Renting user", required=True),
        Column("vehicle_id", "string", "Rented vehicle", required=True),
        Column(
            "rental_start_time",
            "timestamp",
            "Start (UTC)",
            format="yyyy-MM-dd HH:mm:ss",
            required=True,
        ),
        Column(
            "rental_end_time",
            "timestamp",
            "End (UTC), after the start",
            format="yyyy-MM-dd HH:mm:ss",
            required=True,
        ),
        Column("pickup_location", "int", "Pick-up location id", required=True),
        Column("dropoff_location", "int", "Drop-off location id", required=True),
        Column(
            "total_amount",
            MONEY,
            "Amount charged, not negative",
            required=True,
            maximum=MAX_AMOUNT,
        ),
    ),
    derived=(
        Column("rental_duration_hours", HOURS, "(end - start) in seconds / 3600, not rounded"),
        Column("rental_date", "date", "Date of the start (UTC)"),
        Column("rental_hour", "int", "Hour of the start, 0-23 (UTC)"),
    ),
    partition_by=("rental_date",),
)

SOURCE_TABLES: tuple[SourceTable, ...] = (VEHICLES, USERS, LOCATIONS, RENTALS)

# --- Daily exports (section 3.5) ------------------------------------------------------------

DAILY_EXPORT_PATTERN = re.compile(rf"{re.escape(RENTALS.raw_name)}_(\d{{4}}-\d{{2}}-\d{{2}})\.csv")
"""``rental_transactions_YYYY-MM-DD.csv``: one day's rentals export, named by the export's day."""
FULL_BATCH = "full"
"""Batch (and partition) key of the single ``rental_transactions.csv``: one batch holding
everything. It sorts before every daily export: it is the history the daily exports continue,
so a rental in both is kept from the full file and rejected as ``duplicate_key`` in the day's."""


class ExportNameError(ValueError):
    """A file named like a daily export whose day is not a calendar date."""


@dataclass(frozen=True)
class RentalBatch:
    """One landed rentals export: the full file (``day`` None) or one day's export.

    Batches are ordered as section 3.5 orders exports for duplicates: the full file first,
    then daily exports by day. Within a batch, file order decides.
    """

    day: date | None

    @property
    def key(self) -> str:
        """``full`` or ``YYYY-MM-DD``: the batch's name in the raw zone and its partition key."""
        return FULL_BATCH if self.day is None else self.day.isoformat()

    @property
    def file_name(self) -> str:
        return RENTALS.file_name if self.day is None else daily_export_name(self.day)

    @property
    def rank(self) -> int:
        """Sort key of the batch: 0 for the full file, the day's ordinal for a daily export."""
        return 0 if self.day is None else self.day.toordinal()


def daily_export_name(day: date) -> str:
    return f"{RENTALS.raw_name}_{day.isoformat()}.csv"


def rental_batch(file_name: str) -> RentalBatch | None:
    """The rentals batch a landed file holds, or None when the file is not a rentals export.

    Raises ``ExportNameError`` for a daily export's name with an impossible day
    (``rental_transactions_2024-02-30.csv``): a typo must not make a day vanish silently.
    """
    if file_name == RENTALS.file_name:
        return RentalBatch(None)
    match = DAILY_EXPORT_PATTERN.fullmatch(file_name)
    if match is None:
        return None
    try:
        return RentalBatch(date.fromisoformat(match.group(1)))
    except ValueError:
        raise ExportNameError(
            f"{file_name}: {match.group(1)} is not a date; daily exports are named "
            f"{RENTALS.raw_name}_YYYY-MM-DD.csv"
        ) from None


BATCH_FOLDER = "batch="
"""Raw-zone folder of one rentals batch: ``raw/rental_transactions/batch=<key>/`` holds that
export's canonical copy and manifest, replaced only by a re-landing of the same export."""


LANDED_FOLDER = "landed="
"""Raw-zone folder of one landing of a snapshot: ``raw/vehicles/landed=<UTC time>/`` holds that
landing's canonical copy and manifest; the newest one is current, the older ones are history."""


def landed_folder(when: datetime) -> str:
    """``landed=20261202T055300123456Z``: sorts as time does (UTC, to the microsecond)."""
    return f"{LANDED_FOLDER}{when.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"


def batch_folder(batch: RentalBatch) -> str:
    return f"{BATCH_FOLDER}{batch.key}"


def batch_of_key(key: str) -> RentalBatch:
    """The batch of a partition key (``full`` or ``YYYY-MM-DD``)."""
    if key == FULL_BATCH:
        return RentalBatch(None)
    try:
        return RentalBatch(date.fromisoformat(key))
    except ValueError:
        raise ExportNameError(f"{key!r} is neither {FULL_BATCH!r} nor a YYYY-MM-DD day") from None


def batch_order(batches: Iterable[RentalBatch]) -> list[RentalBatch]:
    """Batches in the order that decides which duplicate is kept (section 3.5)."""
    return sorted(set(batches), key=lambda b: b.rank)


DEFAULT_MAX_REJECT_RATE = 0.10
"""Share of an input's rows that may be rejected before its reject-rate check fails: a few bad
rows are normal in an export, one in ten means the export itself is off."""
SOURCES_BY_NAME = {t.name: t for t in SOURCE_TABLES}


class RawSchemaError(ValueError):
    """A raw file's header does not match the contract: names the file and the columns."""


def check_header(table: SourceTable, header: list[str], source: str) -> None:
    """Fail with the file and the offending columns when the header is not the contract's."""
    expected = set(table.column_names)
    missing = [c for c in table.column_names if c not in set(header)]
    unexpected = [c for c in header if c not in expected]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    problems = [
        f"{label} column(s) {names}"
        for label, names in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("duplicated", duplicated),
        )
        if names
    ]
    if problems:
        raise RawSchemaError(
            f"{source}: {'; '.join(problems)}. "
            f"{table.file_name} must have exactly these columns (any order): "
            f"{list(table.column_names)}"
        )


class RejectReason(StrEnum):
    """Why a raw row was rejected (``rejected_rows.reason``)."""

    MALFORMED_LINE = "malformed_line"
    MISSING_REQUIRED_VALUE = "missing_required_value"
    UNPARSEABLE_VALUE = "unparseable_value"
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    END_NOT_AFTER_START = "end_not_after_start"
    NEGATIVE_AMOUNT = "negative_amount"
    COORDINATES_OUT_OF_RANGE = "coordinates_out_of_range"
    DUPLICATE_KEY = "duplicate_key"


REJECTED_ROWS_TABLE = "rejected_rows"
PROCESSED_TABLES: tuple[str, ...] = (*(t.name for t in SOURCE_TABLES), REJECTED_ROWS_TABLE)
"""What the transform publishes, in the order its ``--tables`` option takes them."""
REJECTED_ROWS_COLUMNS: tuple[Column, ...] = (
    Column("source_table", "string", "Processed table the row was meant for"),
    Column("source_file", "string", "The landed export the row came from"),
    Column("line", "bigint", "Line of that file where the record starts (1 is the header)"),
    Column("reason", "string", "Reason code (RejectReason)"),
    Column("detail", "string", "Which column or rule failed, with the offending value"),
    Column(
        "record",
        "string",
        'The original values as JSON (column -> raw string), or {"line": text} for a line '
        "that is not a record",
    ),
)

# --- KPI tables (section 3.3) -------------------------------------------------------------

_C = Column
LOCATION_METRICS = KpiTable(
    name="location_metrics",
    key=("location_id",),
    count_column="total_pickups",
    revenue_column="total_revenue",
    description="Pick-ups, drop-offs and revenue per location, unknown location ids included.",
    columns=(
        _C("location_id", "int"),
        _C("location_name", "string"),
        _C("city", "string"),
        _C("state", "string"),
        _C("total_pickups", "bigint"),
        _C("total_dropoffs", "bigint"),
        _C("total_revenue", MONEY, "Sum of total_amount of rentals picked up here"),
        _C("avg_transaction_amount", MONEY),
        _C("max_transaction_amount", MONEY),
        _C("min_transaction_amount", MONEY),
        _C("unique_vehicles", "bigint", "Distinct vehicles picked up here"),
        _C("unique_users", "bigint", "Distinct users picking up here"),
    ),
)
VEHICLE_TYPE_METRICS = KpiTable(
    name="vehicle_type_metrics",
    key=("vehicle_type",),
    count_column="total_rentals",
    revenue_column="total_revenue",
    description="Rentals, revenue and durations per vehicle type (unknown vehicles as 'unknown').",
    columns=(
        _C("vehicle_type", "string"),
        _C("total_rentals", "bigint"),
        _C("total_revenue", MONEY),
        _C("avg_rental_amount", MONEY),
        _C("total_rental_hours", HOURS),
        _C("avg_rental_duration_hours", HOURS),
        _C("min_rental_duration_hours", HOURS),
        _C("max_rental_duration_hours", HOURS),
        _C("unique_vehicles", "bigint"),
    ),
)
BRAND_METRICS = KpiTable(
    name="brand_metrics",
    key=("brand",),
    count_column="total_rentals",
    revenue_column="total_revenue",
    description="Rentals and revenue per brand (unknown vehicles as 'unknown').",
    columns=(
        _C("brand", "string"),
        _C("total_rentals", "bigint"),
        _C("total_revenue", MONEY),
        _C("avg_rental_amount", MONEY),
        _C("unique_vehicles", "bigint"),
    ),
)
DAILY_METRICS = KpiTable(
    name="daily_metrics",
    key=("rental_date",),
    count_column="total_transactions",
    revenue_column="total_revenue",
    description="Transactions and revenue per rental date (UTC).",
    columns=(
        _C("rental_date", "date"),
        _C("total_transactions", "bigint"),
        _C("total_revenue", MONEY),
        _C("avg_transaction_amount", MONEY),
        _C("max_transaction_amount", MONEY),
        _C("min_transaction_amount", MONEY),
        _C("unique_users", "bigint"),
        _C("unique_vehicles", "bigint"),
        _C("total_rental_hours", HOURS),
    ),
)
USER_METRICS = KpiTable(
    name="user_metrics",
    key=("user_id",),
    count_column="total_rentals",
    revenue_column="total_spent",
    description="Spending and usage per renting user, with spending percentile and category.",
    columns=(
        _C("user_id", "string"),
        _C("first_name", "string"),
        _C("last_name", "string"),
        _C("email", "string"),
        _C("is_active", "int"),
        _C("total_rentals", "bigint"),
        _C("total_spent", MONEY),
        _C("avg_rental_amount", MONEY),
        _C("max_rental_amount", MONEY),
        _C("min_rental_amount", MONEY),
        _C("total_rental_hours", HOURS),
        _C("avg_rental_duration_hours", HOURS),
        _C("unique_vehicles_rented", "bigint"),
        _C("spending_percentile", "double", "percent_rank by total_spent x 100, 2 decimals"),
        _C("spending_category", "string"),
    ),
)
HOURLY_METRICS = KpiTable(
    name="hourly_metrics",
    key=("hour_of_day",),
    count_column="total_transactions",
    revenue_column="total_revenue",
    description="Transactions and revenue per start hour (UTC).",
    columns=(
        _C("hour_of_day", "int"),
        _C("total_transactions", "bigint"),
        _C("total_revenue", MONEY),
        _C("avg_transaction_amount", MONEY),
    ),
)
DAY_OF_WEEK_METRICS = KpiTable(
    name="day_of_week_metrics",
    key=("day_number",),
    count_column="total_transactions",
    revenue_column="total_revenue",
    description="Transactions and revenue per weekday of the start (1 = Monday).",
    columns=(
        _C("day_of_week", "string"),
        _C("day_number", "int"),
        _C("total_transactions", "bigint"),
        _C("total_revenue", MONEY),
        _C("avg_transaction_amount", MONEY),
    ),
)

KPI_TABLES: tuple[KpiTable, ...] = (
    LOCATION_METRICS,
    VEHICLE_TYPE_METRICS,
    BRAND_METRICS,
    DAILY_METRICS,
    USER_METRICS,
    HOURLY_METRICS,
    DAY_OF_WEEK_METRICS,
)
KPI_BY_NAME = {t.name: t for t in KPI_TABLES}

SPENDING_CATEGORIES: tuple[tuple[float, str], ...] = (
    (90.0, "Top Spender"),
    (75.0, "High Spender"),
    (50.0, "Medium Spender"),
    (25.0, "Low Spender"),
)
"""(lower bound of spending_percentile, category), highest first; below the last: OCCASIONAL."""
OCCASIONAL_SPENDER = "Occasional Spender"
UNKNOWN = "unknown"
"""vehicle_type and brand of rentals whose vehicle is not in ``vehicles``."""
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# --- Asset checks: names shared by the jobs that compute them and the Dagster specs -------


class Check(StrEnum):
    """Asset checks; each is computed where the data is (Spark or Dagster) and reported."""

    PRIMARY_KEY_UNIQUE = "primary_key_unique"
    ROWS_CONSERVED = "rows_conserved"
    REFERENCES_KNOWN = "references_known"
    TOTALS_MATCH_RENTALS = "totals_match_rentals"
    NOT_EMPTY = "not_empty_when_rentals_exist"
    REJECT_RATE = "reject_rate_within_limit"


BLOCKING_CHECKS: frozenset[Check] = frozenset(
    {Check.ROWS_CONSERVED, Check.PRIMARY_KEY_UNIQUE, Check.REJECT_RATE, Check.TOTALS_MATCH_RENTALS}
)
"""Checks whose failure stops the data: the job does not publish the tables it checked, and
Dagster skips everything downstream (blocking asset checks)."""


CHECK_DESCRIPTIONS: dict[Check, str] = {
    Check.PRIMARY_KEY_UNIQUE: "No two rows share the primary key.",
    Check.ROWS_CONSERVED: "Rows in the raw file = rows kept + rows rejected.",
    Check.REFERENCES_KNOWN: (
        "Rentals whose user, vehicle or location is unknown (kept, counted; a warning)."
    ),
    Check.TOTALS_MATCH_RENTALS: (
        "Total revenue and rental count of the table equal those of processed rentals."
    ),
    Check.NOT_EMPTY: "The table has rows whenever processed rentals has rows.",
    Check.REJECT_RATE: (
        "Rows rejected from the raw file stay within the limit (run config max_reject_rate, "
        "10% by default); "
        "a failure names the column, the format it expects and offending values."
    ),
}


# --- Names (section 3.4): defaults of settings ---------------------------------------------


class Zone(StrEnum):
    """Top-level folders of the lake (a local folder or ``s3://<bucket>``)."""

    RAW = "raw"
    PROCESSED = "processed"
    KPI = "kpi"
    ANALYSES = "analyses"
    SCRIPTS = "scripts"
    ATHENA_RESULTS = "athena_results"
    LOGS = "logs"
    STAGING = "_staging"
    """Tables written by a job and not yet checked and published (``spark_jobs.publish``)."""
    STATE = "_state"
    """The platform's own bookkeeping (the rentals key index), outside every crawled zone."""


DATABASE = "car_rental_db"


def table_path(lake_root: str, zone: str, table: str) -> str:
    """``<lake_root>/<zone>/<table>``: the one rule for where a table lives in the lake."""
    return f"{lake_root.rstrip('/')}/{zone}/{table}"


# --- Column descriptions (Dagster's column schemas) -------------------------------------------

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "location_id": "Location id (an id absent from locations has null names)",
    "location_name": "Name of the location; null for an unknown location id",
    "city": "City of the location",
    "state": "State of the location",
    "total_pickups": "Rentals picked up here",
    "total_dropoffs": "Rentals dropped off here",
    "vehicle_type": "basic, premium, high_end, or unknown for a vehicle not in vehicles",
    "brand": "Vehicle brand, or unknown for a vehicle not in vehicles",
    "rental_date": "Date of the rental's start (UTC)",
    "hour_of_day": "Hour of the rental's start, 0-23 (UTC)",
    "day_of_week": "Weekday of the rental's start, Monday ... Sunday",
    "day_number": "Weekday of the rental's start, 1 = Monday ... 7 = Sunday",
    "user_id": "User id (an id absent from users has null names)",
    "first_name": "User's first name; null for an unknown user",
    "last_name": "User's last name; null for an unknown user",
    "email": "User's email; null for an unknown user",
    "is_active": "User's active flag (1/0); null for an unknown user",
    "total_rentals": "Number of rentals",
    "total_transactions": "Number of rentals",
    "total_revenue": "Sum of total_amount of the rentals",
    "total_spent": "Sum of total_amount of the user's rentals",
    "avg_rental_amount": "Average total_amount per rental, 2 decimals half up",
    "avg_transaction_amount": "Average total_amount per rental, 2 decimals half up",
    "max_rental_amount": "Largest total_amount of a rental",
    "max_transaction_amount": "Largest total_amount of a rental",
    "min_rental_amount": "Smallest total_amount of a rental",
    "min_transaction_amount": "Smallest total_amount of a rental",
    "total_rental_hours": "Sum of rental_duration_hours, 2 decimals half up",
    "avg_rental_duration_hours": "Average rental_duration_hours, 2 decimals half up",
    "min_rental_duration_hours": "Shortest rental_duration_hours",
    "max_rental_duration_hours": "Longest rental_duration_hours",
    "unique_vehicles": "Distinct vehicles rented",
    "unique_vehicles_rented": "Distinct vehicles the user rented",
    "unique_users": "Distinct users renting",
    "spending_category": "Top (>= 90), High (>= 75), Medium (>= 50), Low (>= 25) or Occasional "
    "Spender, by spending_percentile",
    "spending_percentile": "percent_rank by total_spent x 100, 2 decimals",
    # Columns the analyses (DESIGN 4) compute over the KPI tables:
    "cumulative_revenue": "Running total of total_revenue up to this day",
    "revenue_7_day_avg": "Average total_revenue of this day and the 6 before, 2 decimals",
    "revenue_share_pct": "This row's share of the revenue of all rows, in percent, 2 decimals",
    "locations": "Locations in the group",
}
"""What a KPI or analysis column means, by name, for the columns whose ``Column`` has no
description of its own (a name means the same in every table that has it)."""


def column_description(column: Column) -> str:
    return column.description or COLUMN_DESCRIPTIONS.get(column.name, "")
