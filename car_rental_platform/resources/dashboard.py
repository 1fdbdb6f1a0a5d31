"""Where the analysts' dashboard is served, so asset metadata can link to its pages."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from car_rental_platform.dashboard.pages import Page
from car_rental_platform.settings import DEFAULT_DASHBOARD_URL


class DashboardLinks(dg.ConfigurableResource):
    """Builds links from a materialization to the dashboard page that charts it."""

    base_url: str = Field(
        default=DEFAULT_DASHBOARD_URL,
        description="URL the dashboard is served at (CAR_RENTAL_DASHBOARD_URL), no trailing /.",
    )

    def page_url(self, page: Page) -> dg.UrlMetadataValue:
        return dg.MetadataValue.url(f"{self.base_url.rstrip('/')}/{page.url_path}")
