"""What the dashboard shows, as SQL over the catalog through the platform's query engine.

No Streamlit here: every figure a page shows comes from one method, so tests can compare the
page with the catalog. The SQL keeps to what DuckDB and Athena share. Table names come from the
contract and the analysis definitions, never from literals.

KPI and analysis tables are aggregated over all dates. When the date filter narrows the period,
the figures that can be recomputed cheaply are recomputed from the processed ``rentals`` table
(and ``daily_metrics`` for weekdays); the rest say that the filter does not apply to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from car_rental_platform.assets.analyses import ANALYSIS_ASSETS, ANALYSIS_BY_NAME, CITY_STATE_ROLLUP
from car_rental_platform.assets.catalog import CATALOGED, catalog_key
from car_rental_platform.resources.query import QueryEngine
from spark_jobs.contract import (
    DAILY_METRICS,
    LOCATIONS,
    REJECTED_ROWS_TABLE,
    RENTALS,
    UNKNOWN,
    USER_METRICS,
    VEHICLES,
    WEEKDAYS,
)

TOP_LOCATIONS = ANALYSIS_BY_NAME["top_locations_by_revenue"].name
VEHICLE_TYPES = ANALYSIS_BY_NAME["vehicle_types_by_rentals"].name
TOP_SPENDERS = ANALYSIS_BY_NAME["top_spenders"].name
DAILY_TREND = ANALYSIS_BY_NAME["daily_revenue_trend"].name
HOURLY = ANALYSIS_BY_NAME["hourly_pattern"].name
WEEKDAY = ANALYSIS_BY_NAME["weekday_pattern"].name
TOP_BRANDS = ANALYSIS_BY_NAME["top_brands_by_revenue"].name
TOP_N_LOCATIONS = 10
TOP_N_BRANDS = 10
REJECTED_SAMPLE_ROWS = 20
RUN_COMMAND = "make run"

ASSET_OF_TABLE: dict[str, str] = {
    **{t: catalog_key(t).to_user_string() for tables in CATALOGED.values() for t in tables},
    **{a.key.path[-1]: a.key.to_user_string() for a in ANALYSIS_ASSETS},
}
"""Catalog table -> the asset whose materialization creates it."""


class DashboardDataError(Exception):
    """Data a page needs is not there; the message says what to run."""


class NoDataYetError(DashboardDataError):
    """Nothing has been materialized into the catalog yet."""

    def __init__(self, database: str) -> None:
        super().__init__(
            f"No data yet: the catalog database {database} has no tables. "
            f"Run `{RUN_COMMAND}` to materialize the lake, then reload this page."
        )


class MissingTablesError(DashboardDataError):
    """Some tables are missing: names each one and the asset to materialize."""

    def __init__(self, database: str, tables: Iterable[str]) -> None:
        self.tables = sorted(tables)
        assets = [ASSET_OF_TABLE.get(t, t) for t in self.tables]
        selection = ",".join(f"+{a}" for a in assets)
        super().__init__(
            f"Missing catalog table(s) {', '.join(f'{database}.{t}' for t in self.tables)}: "
            f"materialize the asset(s) {', '.join(assets)} in the Dagster UI, or run "
            f"`dagster asset materialize --select '{selection}' -m car_rental_platform.definitions`"
            f" (or `{RUN_COMMAND}` for everything)."
        )


@dataclass(frozen=True)
class Period:
    """An inclusive range of rental dates (UTC)."""

    start: date
    end: date

    def where(self, column: str = "rental_date") -> str:
        """A filter on a date (or timestamp) column, in SQL both engines accept."""
        return (
            f"CAST({column} AS DATE) BETWEEN DATE '{self.start.isoformat()}' "
            f"AND DATE '{self.end.isoformat()}'"
        )

    def label(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


@dataclass(frozen=True)
class Overview:
    revenue: float
    rentals: int
    active_users: int
    average_rental: float


class DashboardData:
    """The dashboard's queries; ``run`` executes SQL (the engine's, or a cached wrapper)."""

    def __init__(
        self, engine: QueryEngine, run: Callable[[str], pd.DataFrame] | None = None
    ) -> None:
        self.engine = engine
        self.database = engine.database
        self._run = run or engine.query

    def sql(self, statement: str) -> pd.DataFrame:
        return self._run(statement)

    def t(self, table: str) -> str:
        return self.engine.table_name(table)

    def tables(self) -> set[str]:
        """Tables of the catalog database (``information_schema`` exists in both engines)."""
        database = self.database.replace("'", "''")
        frame = self.sql(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{database}'"
        )
        return set(frame["table_name"])

    def require(self, *tables: str) -> None:
        """Raise a DashboardDataError naming what to run when any table is absent."""
        present = self.tables()
        if not present:
            raise NoDataYetError(self.database)
        missing = set(tables) - present
        if missing:
            raise MissingTablesError(self.database, missing)

    def full_period(self) -> Period | None:
        """First and last rental date with rentals, or None when there are none."""
        frame = self.sql(
            f"SELECT min(rental_date) AS first_day, max(rental_date) AS last_day "
            f"FROM {self.t(DAILY_METRICS.name)}"
        )
        first, last = frame["first_day"][0], frame["last_day"][0]
        if pd.isna(first) or pd.isna(last):
            return None
        return Period(pd.Timestamp(first).date(), pd.Timestamp(last).date())

    # --- overview and trend ---------------------------------------------------------------

    def overview(self, period: Period) -> Overview:
        """Totals over the period, from the processed rentals (active = rented in the period)."""
        frame = self.sql(
            "SELECT count(*) AS rentals, sum(total_amount) AS revenue, "
            "count(DISTINCT user_id) AS active_users, avg(total_amount) AS average_rental "
            f"FROM {self.t(RENTALS.name)} WHERE {period.where()}"
        )
        row = frame.iloc[0]
        rentals = int(row["rentals"])
        return Overview(
            revenue=float(row["revenue"]) if rentals else 0.0,
            rentals=rentals,
            active_users=int(row["active_users"]),
            average_rental=float(row["average_rental"]) if rentals else 0.0,
        )

    def daily_trend(self, period: Period) -> pd.DataFrame:
        """The daily revenue trend analysis, restricted to the period."""
        frame = self.sql(
            "SELECT rental_date, total_transactions, total_revenue, revenue_7_day_avg "
            f"FROM {self.t(DAILY_TREND)} WHERE {period.where()} ORDER BY rental_date"
        )
        frame["rental_date"] = pd.to_datetime(frame["rental_date"])
        return frame

    # --- locations ------------------------------------------------------------------------

    def location_revenue(self, period: Period, full: Period) -> pd.DataFrame:
        """Revenue and pick-ups per pick-up location: the KPI when unfiltered, else rentals."""
        if period == full:
            return self.sql(
                "SELECT location_id, location_name, city, state, total_revenue, total_pickups "
                f"FROM {self.t(TOP_LOCATIONS)} ORDER BY total_revenue DESC, location_id"
            )
        frame = self.sql(
            "SELECT r.pickup_location AS location_id, l.location_name, l.city, l.state, "
            "sum(r.total_amount) AS total_revenue, count(*) AS total_pickups "
            f"FROM {self.t(RENTALS.name)} r LEFT JOIN {self.t(LOCATIONS.name)} l "
            f"ON l.location_id = r.pickup_location WHERE {period.where('r.rental_date')} "
            "GROUP BY r.pickup_location, l.location_name, l.city, l.state "
            f"ORDER BY total_revenue DESC, location_id LIMIT {TOP_N_LOCATIONS}"
        )
        return frame

    def city_state(self, period: Period, full: Period) -> pd.DataFrame:
        """Revenue and pick-ups per city and state (unknown locations as one group)."""
        if period == full:
            return self.sql(
                "SELECT state, city, locations, total_pickups, total_revenue "
                f"FROM {self.t(CITY_STATE_ROLLUP)} ORDER BY total_revenue DESC, state, city"
            )
        return self.sql(
            "SELECT l.state, l.city, count(DISTINCT r.pickup_location) AS locations, "
            "count(*) AS total_pickups, sum(r.total_amount) AS total_revenue "
            f"FROM {self.t(RENTALS.name)} r LEFT JOIN {self.t(LOCATIONS.name)} l "
            f"ON l.location_id = r.pickup_location WHERE {period.where('r.rental_date')} "
            "GROUP BY l.state, l.city ORDER BY total_revenue DESC, l.state, l.city"
        )

    def location_map(self, period: Period) -> pd.DataFrame:
        """Known locations with coordinates and their pick-up revenue in the period."""
        return self.sql(
            "SELECT l.location_name, l.latitude, l.longitude, "
            "coalesce(sum(r.total_amount), 0) AS total_revenue "
            f"FROM {self.t(LOCATIONS.name)} l LEFT JOIN {self.t(RENTALS.name)} r "
            f"ON r.pickup_location = l.location_id AND {period.where('r.rental_date')} "
            "WHERE l.latitude IS NOT NULL AND l.longitude IS NOT NULL "
            "GROUP BY l.location_name, l.latitude, l.longitude"
        )

    # --- vehicles and time patterns -------------------------------------------------------

    def vehicle_types(self, period: Period, full: Period) -> pd.DataFrame:
        if period == full:
            return self.sql(
                "SELECT vehicle_type, total_rentals, total_revenue "
                f"FROM {self.t(VEHICLE_TYPES)} ORDER BY total_rentals DESC, vehicle_type"
            )
        return self._by_vehicle("vehicle_type", period, limit=None)

    def brands(self, period: Period, full: Period) -> pd.DataFrame:
        if period == full:
            return self.sql(
                "SELECT brand, total_rentals, total_revenue "
                f"FROM {self.t(TOP_BRANDS)} ORDER BY total_revenue DESC, brand"
            )
        return self._by_vehicle("brand", period, limit=TOP_N_BRANDS)

    def _by_vehicle(self, column: str, period: Period, *, limit: int | None) -> pd.DataFrame:
        """Rentals and revenue per vehicle attribute; unknown vehicles as ``unknown``."""
        order = "total_rentals DESC" if column == "vehicle_type" else "total_revenue DESC"
        return self.sql(
            f"SELECT coalesce(v.{column}, '{UNKNOWN}') AS {column}, count(*) AS total_rentals, "
            f"sum(r.total_amount) AS total_revenue FROM {self.t(RENTALS.name)} r "
            f"LEFT JOIN {self.t(VEHICLES.name)} v ON v.vehicle_id = r.vehicle_id "
            f"WHERE {period.where('r.rental_date')} GROUP BY coalesce(v.{column}, '{UNKNOWN}') "
            f"ORDER BY {order}, {column}" + (f" LIMIT {limit}" if limit else "")
        )

    def hourly(self, period: Period, full: Period) -> pd.DataFrame:
        if period == full:
            return self.sql(
                "SELECT hour_of_day, total_transactions, total_revenue "
                f"FROM {self.t(HOURLY)} ORDER BY hour_of_day"
            )
        return self.sql(
            "SELECT rental_hour AS hour_of_day, count(*) AS total_transactions, "
            f"sum(total_amount) AS total_revenue FROM {self.t(RENTALS.name)} "
            f"WHERE {period.where()} GROUP BY rental_hour ORDER BY rental_hour"
        )

    def weekdays(self, period: Period, full: Period) -> pd.DataFrame:
        """Per weekday; when filtered, the period's days of ``daily_metrics`` summed per weekday."""
        if period == full:
            return self.sql(
                "SELECT day_number, day_of_week, total_transactions, total_revenue "
                f"FROM {self.t(WEEKDAY)} ORDER BY day_number"
            )
        days = self.sql(
            "SELECT rental_date, total_transactions, total_revenue "
            f"FROM {self.t(DAILY_METRICS.name)} WHERE {period.where()}"
        )
        days["day_number"] = pd.to_datetime(days["rental_date"]).dt.dayofweek + 1
        grouped = days.groupby("day_number", as_index=False)[
            ["total_transactions", "total_revenue"]
        ].sum()
        grouped.insert(1, "day_of_week", [WEEKDAYS[n - 1] for n in grouped["day_number"]])
        return grouped

    # --- spenders (all dates) -------------------------------------------------------------

    def top_spenders(self) -> pd.DataFrame:
        return self.sql(
            "SELECT user_id, first_name, last_name, email, total_spent, total_rentals, "
            f"spending_percentile FROM {self.t(TOP_SPENDERS)} ORDER BY total_spent DESC, user_id"
        )

    def spending_categories(self) -> pd.DataFrame:
        return self.sql(
            "SELECT spending_category, count(*) AS users, sum(total_spent) AS total_spent "
            f"FROM {self.t(USER_METRICS.name)} GROUP BY spending_category "
            "ORDER BY min(spending_percentile) DESC"
        )

    # --- data quality ---------------------------------------------------------------------

    def rejected_by_reason(self) -> pd.DataFrame:
        return self.sql(
            "SELECT source_table, reason, count(*) AS rejected_rows "
            f"FROM {self.t(REJECTED_ROWS_TABLE)} GROUP BY source_table, reason "
            "ORDER BY source_table, reason"
        )

    def rejected_sample(self, source_table: str | None) -> pd.DataFrame:
        where = ""
        if source_table:
            where = f"WHERE source_table = '{source_table.replace(chr(39), chr(39) * 2)}' "
        return self.sql(
            "SELECT source_table, source_file, line, reason, detail, record "
            f"FROM {self.t(REJECTED_ROWS_TABLE)} {where}"
            f"ORDER BY source_table, reason, record LIMIT {REJECTED_SAMPLE_ROWS}"
        )
