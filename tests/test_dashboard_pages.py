"""Every dashboard page rendered headlessly (Streamlit's AppTest) on the materialized sample lake,
its figures compared with the catalog's, and the date filter's effect on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from car_rental_platform.dashboard.pages import (
    DATA_QUALITY,
    LOCATIONS,
    OVERVIEW,
    PAGES,
    REVENUE_TREND,
    SPENDERS,
    VEHICLES,
)
from tests.dashboard_support import charts, metrics, money, new_app, open_page, point_at
from tests.graph_fixtures import MaterializedGraph

DB = "car_rental_db"


@pytest.fixture
def app(graph: MaterializedGraph, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    point_at(graph, monkeypatch)
    return new_app()


def first_week(graph: MaterializedGraph) -> tuple[date, date]:
    first = graph.query(f"SELECT min(rental_date) AS d FROM {DB}.daily_metrics").d[0]
    start = pd.Timestamp(first).date()
    return start, start + timedelta(days=6)


def select_dates(app: AppTest, start: date, end: date) -> None:
    app.date_input(key="period").set_value((start, end)).run()
    assert not app.exception


@dataclass(frozen=True)
class Totals:
    n: int
    revenue: float
    users: int
    average: float


def rentals_totals(graph: MaterializedGraph, where: str = "TRUE") -> Totals:
    row = graph.query(
        "SELECT count(*) AS n, sum(total_amount) AS revenue, count(DISTINCT user_id) AS users, "
        f"avg(total_amount) AS average FROM {DB}.rentals WHERE {where}"
    ).iloc[0]
    return Totals(int(row.n), float(row.revenue), int(row.users), float(row.average))


def test_overview_shows_the_catalogs_totals_period_and_refresh_time(
    app: AppTest, graph: MaterializedGraph
) -> None:
    open_page(app, OVERVIEW)
    totals = rentals_totals(graph)
    renting_users = graph.query(f"SELECT count(*) AS n FROM {DB}.user_metrics").n[0]
    assert metrics(app) == {
        "Total revenue": money(totals.revenue),
        "Rentals": f"{totals.n:,}",
        "Active users": f"{renting_users:,}",
        "Average rental": money(totals.average),
    }
    assert totals.users == renting_users  # active = rented at least once: user_metrics' grain
    days = graph.query(f"SELECT min(rental_date) AS a, max(rental_date) AS b FROM {DB}.rentals")
    text = " ".join(m.value for m in app.markdown)
    assert f"**Period covered:** {days.a[0]:%Y-%m-%d} to {days.b[0]:%Y-%m-%d}" in text
    catalog_keys = {
        e.asset_key
        for e in graph.result.get_asset_materialization_events()
        if e.asset_key.path[0] == "catalog"
    }
    assert len(catalog_keys) == 12
    last = max(graph.instance.get_latest_materialization_event(k).timestamp for k in catalog_keys)
    stamp = pd.Timestamp(last, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"**Last refreshed:** {stamp}" in text
    [daily] = charts(app)
    assert len(daily) == graph.query(f"SELECT count(*) AS n FROM {DB}.daily_metrics").n[0]
    assert daily.total_revenue.sum() == pytest.approx(totals.revenue)
    assert not app.warning and not app.error


def test_trend_page_charts_every_day_of_the_analysis(
    app: AppTest, graph: MaterializedGraph
) -> None:
    open_page(app, REVENUE_TREND)
    trend = graph.query(f"SELECT * FROM {DB}.daily_revenue_trend ORDER BY rental_date")
    assert metrics(app) == {
        "Revenue in period": money(trend.total_revenue.sum()),
        "Rentals in period": f"{trend.total_transactions.sum():,}",
        "Days with rentals": f"{len(trend):,}",
    }
    [line] = charts(app)
    # Streamlit melts the two series into long form: one row per day and series.
    series, values = "color -- streamlit-generated", "value -- streamlit-generated"
    revenue = line[line[series] == "revenue"]
    average = line[line[series] == "7-day average"]
    assert len(revenue) == len(average) == len(trend)
    assert revenue[values].tolist() == trend.total_revenue.tolist()
    assert average[values].tolist() == trend.revenue_7_day_avg.tolist()


def test_date_filter_changes_trend_and_totals_consistently(
    app: AppTest, graph: MaterializedGraph
) -> None:
    start, end = first_week(graph)
    where = f"rental_date BETWEEN DATE '{start}' AND DATE '{end}'"
    week = rentals_totals(graph, where)
    full = rentals_totals(graph)
    assert 0 < week.n < full.n
    days = graph.query(f"SELECT * FROM {DB}.daily_metrics WHERE {where}")
    assert days.total_transactions.sum() == week.n  # the two sources agree on the week

    open_page(app, OVERVIEW)
    assert metrics(app)["Total revenue"] == money(full.revenue)
    select_dates(app, start, end)
    overview = metrics(app)
    assert overview == {
        "Total revenue": money(week.revenue),
        "Rentals": f"{week.n:,}",
        "Active users": f"{week.users:,}",
        "Average rental": money(week.average),
    }
    assert [len(c) for c in charts(app)] == [len(days)]

    open_page(app, REVENUE_TREND)  # the filter stays selected across pages
    trend = metrics(app)
    assert trend["Revenue in period"] == overview["Total revenue"]
    assert trend["Rentals in period"] == overview["Rentals"]
    assert trend["Days with rentals"] == f"{len(days)}"
    assert any("(filtered)" in c.value for c in app.caption)


def test_locations_page_shows_the_top_ten_and_the_rollup(
    app: AppTest, graph: MaterializedGraph
) -> None:
    open_page(app, LOCATIONS)
    top, rollup = charts(app)
    expected = graph.query(f"SELECT * FROM {DB}.top_locations_by_revenue")
    assert len(top) == 10
    assert sorted(top.total_revenue, reverse=True) == expected.total_revenue.tolist()
    shown = app.dataframe[0].value
    catalog = graph.query(f"SELECT * FROM {DB}.city_state_rollup")
    assert shown.total_revenue.sum() == pytest.approx(catalog.total_revenue.sum())
    assert shown.total_pickups.sum() == catalog.total_pickups.sum() == rentals_totals(graph).n
    assert len(rollup) == len(catalog)
    locations = graph.query(f"SELECT count(*) AS n FROM {DB}.locations").n[0]
    assert len(app.get("deck_gl_json_chart")) == 1 and locations > 0


def test_locations_page_recomputes_the_selected_dates_from_rentals(
    app: AppTest, graph: MaterializedGraph
) -> None:
    start, end = first_week(graph)
    select_dates(app, start, end)
    open_page(app, LOCATIONS)
    top, _ = charts(app)
    week = graph.query(
        f"SELECT pickup_location, sum(total_amount) AS revenue FROM {DB}.rentals "
        f"WHERE rental_date BETWEEN DATE '{start}' AND DATE '{end}' "
        "GROUP BY pickup_location ORDER BY revenue DESC, pickup_location LIMIT 10"
    )
    assert sorted(top.total_revenue, reverse=True) == week.revenue.tolist()
    shown = app.dataframe[0].value
    assert (
        shown.total_pickups.sum()
        == rentals_totals(graph, f"rental_date BETWEEN DATE '{start}' AND DATE '{end}'").n
    )


def test_vehicles_page_charts_types_brands_hours_and_weekdays(
    app: AppTest, graph: MaterializedGraph
) -> None:
    open_page(app, VEHICLES)
    types, brands, hours, weekdays = charts(app)
    by_type = graph.query(f"SELECT vehicle_type, total_rentals FROM {DB}.vehicle_type_metrics")
    assert dict(zip(types.vehicle_type, types.total_rentals, strict=True)) == dict(
        zip(by_type.vehicle_type, by_type.total_rentals, strict=True)
    )
    top_brands = graph.query(f"SELECT brand, total_revenue FROM {DB}.top_brands_by_revenue")
    assert sorted(brands.brand) == sorted(top_brands.brand)
    rentals = rentals_totals(graph).n
    assert hours.total_transactions.sum() == weekdays.total_transactions.sum() == rentals
    assert weekdays.weekday.tolist()[0] == "1 Monday"

    start, end = first_week(graph)  # a week: each weekday once
    select_dates(app, start, end)
    types, brands, hours, weekdays = charts(app)
    week = rentals_totals(graph, f"rental_date BETWEEN DATE '{start}' AND DATE '{end}'").n
    assert types.total_rentals.sum() == hours.total_transactions.sum() == week
    assert weekdays.total_transactions.sum() == week and len(weekdays) == 7


def test_spenders_page_table_and_categories(app: AppTest, graph: MaterializedGraph) -> None:
    open_page(app, SPENDERS)
    expected = graph.query(f"SELECT user_id FROM {DB}.top_spenders")
    assert app.dataframe[0].value.user_id.tolist() == expected.user_id.tolist()
    [categories] = charts(app)
    per_category = graph.query(
        f"SELECT spending_category, count(*) AS n FROM {DB}.user_metrics GROUP BY ALL"
    )
    assert dict(zip(categories.spending_category, categories.users, strict=True)) == dict(
        zip(per_category.spending_category, per_category.n, strict=True)
    )
    assert "does not apply" in app.info[0].value


def test_data_quality_page_rejections_and_check_results(
    app: AppTest, graph: MaterializedGraph
) -> None:
    open_page(app, DATA_QUALITY)
    planted = graph.sample.planted
    assert metrics(app) == {"Rejected rows": f"{sum(planted.values()):,}"}
    by_reason, sample, checks = (frame.value for frame in app.dataframe)
    assert {(r.source_table, r.reason): r.rejected_rows for r in by_reason.itertuples()} == planted
    assert len(sample) == 20 and set(sample.columns) >= {"source_table", "line", "reason", "record"}
    assert (sample.line >= 2).all()  # each rejected record's line in its export (1: header)
    app.selectbox(key="rejected_table").select("locations").run()
    sample = app.dataframe[1].value
    locations_rejected = sum(n for (table, _), n in planted.items() if table == "locations")
    assert set(sample.source_table) == {"locations"} and len(sample) == locations_rejected
    assert len(checks) == 4 * 3 + 1 + 7 * 3
    not_passed = checks[~checks.passed]
    assert not_passed[["asset", "check", "severity"]].values.tolist() == [
        ["processed/rentals", "references_known", "WARN"]
    ]


def test_before_the_first_materialization_every_page_says_to_run_make_run(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAR_RENTAL_DEPLOYMENT", raising=False)
    monkeypatch.delenv("CAR_RENTAL_CATALOG_PATH", raising=False)
    monkeypatch.setenv("CAR_RENTAL_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no_home"))
    app = new_app()
    for page in PAGES:
        open_page(app, page)
        assert [w.value for w in app.warning] == [
            "No data yet: the catalog database car_rental_db has no tables. "
            "Run `make run` to materialize the lake, then reload this page."
        ], page
        assert not app.error
    assert not (tmp_path / "lake" / "catalog" / "car_rental.duckdb").exists()  # read-only


def test_a_missing_table_names_the_asset_to_materialize(
    graph: MaterializedGraph, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog with daily_metrics only: the spenders page names its two missing tables."""
    catalog = tmp_path / "partial.duckdb"
    daily = f"{graph.settings.lake_root}/kpi/daily_metrics/**/*.parquet"
    with duckdb.connect(str(catalog)) as connection:
        connection.execute(f"CREATE SCHEMA {DB}")
        connection.execute(f"CREATE VIEW {DB}.daily_metrics AS SELECT * FROM '{daily}'")
    point_at(graph, monkeypatch)
    monkeypatch.setenv("CAR_RENTAL_CATALOG_PATH", str(catalog))
    app = new_app()
    open_page(app, SPENDERS)
    [warning] = [w.value for w in app.warning]
    assert warning.startswith(
        f"Missing catalog table(s) {DB}.top_spenders, {DB}.user_metrics: materialize the "
        "asset(s) analyses/top_spenders, catalog/user_metrics in the Dagster UI, or run "
        "`dagster asset materialize --select '+analyses/top_spenders,+catalog/user_metrics'"
    )
    assert not charts(app)
