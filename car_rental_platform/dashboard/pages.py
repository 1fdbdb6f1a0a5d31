"""The dashboard's pages: their URL paths and which lake tables each one shows.

Pure Python (no Streamlit), so asset code can link a table's materialization to its page.
"""

from __future__ import annotations

from dataclasses import dataclass

from spark_jobs.contract import (
    BRAND_METRICS,
    DAILY_METRICS,
    DAY_OF_WEEK_METRICS,
    HOURLY_METRICS,
    LOCATION_METRICS,
    USER_METRICS,
    VEHICLE_TYPE_METRICS,
)


@dataclass(frozen=True)
class Page:
    """One page of the app: its script under ``views/`` and the path after the base URL."""

    script: str
    title: str
    icon: str
    url_path: str
    """Empty for the default page: Streamlit serves it at the base URL itself."""


OVERVIEW = Page("overview", "Overview", ":material/dashboard:", "")
REVENUE_TREND = Page("revenue_trend", "Revenue trend", ":material/show_chart:", "revenue_trend")
LOCATIONS = Page("locations", "Locations", ":material/location_on:", "locations")
VEHICLES = Page("vehicles", "Vehicles and time patterns", ":material/directions_car:", "vehicles")
SPENDERS = Page("spenders", "Top spenders", ":material/person:", "spenders")
DATA_QUALITY = Page("data_quality", "Data quality", ":material/rule:", "data_quality")

PAGES: tuple[Page, ...] = (OVERVIEW, REVENUE_TREND, LOCATIONS, VEHICLES, SPENDERS, DATA_QUALITY)

KPI_PAGES: dict[str, Page] = {
    LOCATION_METRICS.name: LOCATIONS,
    VEHICLE_TYPE_METRICS.name: VEHICLES,
    BRAND_METRICS.name: VEHICLES,
    DAILY_METRICS.name: REVENUE_TREND,
    USER_METRICS.name: SPENDERS,
    HOURLY_METRICS.name: VEHICLES,
    DAY_OF_WEEK_METRICS.name: VEHICLES,
}
"""The page that charts each KPI table (the analyses name theirs in their definitions)."""
