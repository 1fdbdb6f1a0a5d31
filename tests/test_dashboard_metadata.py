"""In the Dagster UI: KPI and analysis materializations carry numeric headline figures (for the
Plots tab) and a link to the dashboard page that charts them."""

from __future__ import annotations

import dagster as dg
import pytest

from car_rental_platform.assets.analyses import ANALYSIS_ASSETS
from car_rental_platform.dashboard.pages import KPI_PAGES
from car_rental_platform.resources.dashboard import DashboardLinks
from car_rental_platform.settings import DEFAULT_DASHBOARD_URL, LocalSettings
from spark_jobs.contract import KPI_TABLES
from tests.graph_fixtures import MaterializedGraph

DB = "car_rental_db"


def materialization(graph: MaterializedGraph, key: dg.AssetKey) -> dict[str, dg.MetadataValue]:
    event = graph.instance.get_latest_materialization_event(key)
    assert event is not None, key
    return dict(event.asset_materialization.metadata)


def test_kpi_assets_record_total_revenue_rentals_and_their_page(graph: MaterializedGraph) -> None:
    totals = graph.query(f"SELECT count(*) AS n, sum(total_amount) AS revenue FROM {DB}.rentals")
    for table in KPI_TABLES:
        metadata = materialization(graph, dg.AssetKey(["kpi", table.name]))
        assert isinstance(metadata["total_revenue"], dg.FloatMetadataValue), table.name
        assert isinstance(metadata["total_rentals"], dg.IntMetadataValue), table.name
        assert metadata["total_revenue"].value == pytest.approx(totals.revenue[0]), table.name
        assert metadata["total_rentals"].value == totals.n[0], table.name
        assert (
            metadata["row_count"].value
            == graph.query(f"SELECT count(*) AS n FROM {DB}.{table.name}").n[0]
        )
        page = KPI_PAGES[table.name].url_path
        assert metadata["dashboard"] == dg.MetadataValue.url(f"{DEFAULT_DASHBOARD_URL}/{page}")


@pytest.mark.parametrize(
    ("name", "revenue_sql", "count_sql", "page"),
    [
        (
            "top_locations_by_revenue",
            "SELECT sum(total_revenue) FROM (SELECT total_revenue FROM {db}.location_metrics "
            "ORDER BY total_revenue DESC, location_id LIMIT 10)",
            "SELECT sum(total_pickups) FROM (SELECT total_pickups, total_revenue, location_id "
            "FROM {db}.location_metrics ORDER BY total_revenue DESC, location_id LIMIT 10)",
            "locations",
        ),
        (
            "daily_revenue_trend",
            "SELECT sum(total_amount) FROM {db}.rentals",
            "SELECT count(*) FROM {db}.rentals",
            "revenue_trend",
        ),
        (
            "city_state_rollup",
            "SELECT sum(total_amount) FROM {db}.rentals",
            "SELECT count(*) FROM {db}.rentals",
            "locations",
        ),
    ],
)
def test_analysis_assets_record_their_figures_and_page(
    graph: MaterializedGraph, name: str, revenue_sql: str, count_sql: str, page: str
) -> None:
    metadata = materialization(graph, dg.AssetKey(["analyses", name]))
    revenue = graph.query(revenue_sql.format(db=DB) + " AS x").iloc[0, 0]
    count = graph.query(count_sql.format(db=DB) + " AS x").iloc[0, 0]
    assert isinstance(metadata["total_revenue"], dg.FloatMetadataValue)
    assert metadata["total_revenue"].value == pytest.approx(float(revenue))
    assert metadata["total_rentals"].value == count
    assert metadata["dashboard"].value == f"{DEFAULT_DASHBOARD_URL}/{page}"


def test_every_analysis_links_to_a_dashboard_page(graph: MaterializedGraph) -> None:
    for assets in ANALYSIS_ASSETS:
        metadata = materialization(graph, assets.key)
        assert metadata["dashboard"].value.startswith(f"{DEFAULT_DASHBOARD_URL}/"), assets.key


def test_the_dashboard_url_is_a_setting() -> None:
    settings = LocalSettings.from_env({"CAR_RENTAL_DASHBOARD_URL": "https://kpi.example.org/"})
    links = DashboardLinks(base_url=settings.dashboard_url)
    assert links.page_url(KPI_PAGES["user_metrics"]).value == "https://kpi.example.org/spenders"
    assert LocalSettings.from_env({}).dashboard_url == "http://127.0.0.1:8501"


def test_kpi_figures_come_from_the_totals_check_and_are_left_out_when_not_measured() -> None:
    from car_rental_platform.assets.kpi import headline_metadata
    from spark_jobs.contract import LOCATION_METRICS, USER_METRICS

    links = DashboardLinks(base_url="http://kpi:1")
    measured = {"table_total_spent": dg.MetadataValue.float(12.5), "table_total_rentals": 3}
    assert headline_metadata(USER_METRICS, measured, links) == {
        "dashboard": dg.MetadataValue.url("http://kpi:1/spenders"),
        "total_revenue": dg.MetadataValue.float(12.5),
        "total_rentals": dg.MetadataValue.int(3),
    }
    assert headline_metadata(LOCATION_METRICS, {"rentals_count": 3}, links) == {
        "dashboard": dg.MetadataValue.url("http://kpi:1/locations")
    }
