"""Streamlit glue shared by the pages: the engine, cached queries, the date filter, and errors
shown as sentences (what to run) instead of stack traces."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import streamlit as st

from car_rental_platform.dashboard.data import (
    RUN_COMMAND,
    DashboardData,
    DashboardDataError,
    Period,
)
from car_rental_platform.dashboard.pages import Page
from car_rental_platform.resources.query import QueryEngine
from spark_jobs.contract import DAILY_METRICS

QUERY_TTL_SECONDS = 60
PERIOD_KEY = "period"
DATA_KEY = "dashboard_data"
PERIODS_KEY = "dashboard_periods"


def build_engine() -> QueryEngine:
    """The query engine of the Definitions' deployment (DuckDB or Athena), settings resolved.

    The dashboard only ever calls ``query``, which opens read-only sessions.
    """
    from car_rental_platform.definitions import resources_for
    from car_rental_platform.settings import deployment

    with dg.build_resources({"engine": resources_for(deployment())["engine"]}) as resources:
        return resources.engine


@st.cache_data(ttl=QUERY_TTL_SECONDS, show_spinner=False)
def _cached_query(source: str, sql: str, _engine: QueryEngine) -> pd.DataFrame:
    """One query's result, cached per engine configuration (``source``) and statement."""
    return _engine.query(sql)


def dashboard_data() -> DashboardData:
    engine = build_engine()
    source = repr(engine)
    return DashboardData(engine, run=lambda sql: _cached_query(source, sql, engine))


def selected_period(data: DashboardData) -> tuple[Period, Period] | None:
    """The sidebar's date filter: (selected, full) periods, or None when there is no data."""
    try:
        data.require(DAILY_METRICS.name)
        full = data.full_period()
    except DashboardDataError:
        return None
    if full is None:
        return None
    chosen = st.sidebar.date_input(
        "Rental dates",
        value=(full.start, full.end),
        min_value=full.start,
        max_value=full.end,
        key=PERIOD_KEY,
        help="Every page honours this range where its data has dates; pages say where not.",
    )
    dates = tuple(chosen) if isinstance(chosen, tuple | list) else (chosen,)
    start = dates[0] if dates else full.start
    end = dates[1] if len(dates) > 1 else start
    return Period(start, end), full


@dataclass(frozen=True)
class View:
    """What a page works with: the queries, and the selected and full periods."""

    data: DashboardData
    period: Period
    full: Period

    @property
    def filtered(self) -> bool:
        return self.period != self.full

    def filter_caption(self, *, applies: bool = True, note: str = "") -> None:
        """Say which dates the page shows, and whether the filter applies to it at all."""
        if not applies:
            st.info(f"The date filter does not apply to this page: {note}", icon=":material/info:")
        elif self.filtered:
            st.caption(f"Rental dates {self.period.label()} (filtered). {note}".strip())
        else:
            st.caption(f"All rental dates: {self.full.label()}. {note}".strip())


@contextmanager
def page(spec: Page, *, needs: tuple[str, ...]) -> Iterator[View]:
    """Title, then the page body; missing data or a failing query becomes a plain message."""
    st.title(spec.title)
    data: DashboardData = st.session_state[DATA_KEY]
    periods: tuple[Period, Period] | None = st.session_state.get(PERIODS_KEY)
    try:
        data.require(*needs, DAILY_METRICS.name)
        if periods is None:
            raise DashboardDataError(
                f"The catalog has no rentals yet: run `{RUN_COMMAND}` on data with rentals."
            )
    except DashboardDataError as error:
        st.warning(str(error), icon=":material/warning:")
        st.stop()
    try:
        yield View(data, *periods)
    except DashboardDataError as error:
        st.warning(str(error), icon=":material/warning:")
    except Exception as error:  # a failing query: the engine's message, not a stack trace
        st.error(f"A query of the catalog failed: {error}", icon=":material/error:")


def money(value: float) -> str:
    return f"{value:,.2f}"


def count(value: int) -> str:
    return f"{value:,}"
