"""The dashboard in a real browser: ``streamlit run`` on a free port over the sample lake, each
page loaded in Debian's headless Chromium, its charts drawn, no error box, a screenshot taken.

``.ci/run`` installs Chromium when it is absent; without it (a developer's machine) the test is
skipped, and in CI (``CI`` set) it fails instead, so a green CI always means the browser ran.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from car_rental_platform.dashboard.pages import (
    DATA_QUALITY,
    LOCATIONS,
    OVERVIEW,
    REVENUE_TREND,
    SPENDERS,
    VEHICLES,
    Page,
)
from car_rental_platform.resources.dashboard import DashboardLinks
from tests.browser import CHROMIUM, DevTools, chromium, streamlit_server, wait_for
from tests.dashboard_support import APP
from tests.graph_fixtures import MaterializedGraph

PAGE_TIMEOUT_SECONDS = 60
EXPECTED: dict[Page, dict[str, int]] = {
    OVERVIEW: {"charts": 1, "metrics": 4},
    REVENUE_TREND: {"charts": 1, "metrics": 3, "tables": 1},
    LOCATIONS: {"charts": 2, "maps": 1, "tables": 1},
    VEHICLES: {"charts": 4},
    SPENDERS: {"charts": 1, "tables": 1},
    DATA_QUALITY: {"charts": 1, "metrics": 1, "tables": 3},
}
"""What each page must show once it has run: drawn charts, maps, metrics, data tables."""

STATE = """JSON.stringify({
  title: (document.querySelector('h1') || {}).innerText || null,
  charts: [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
    .filter(c => c.querySelector('canvas, svg')).length,
  maps: [...document.querySelectorAll('[data-testid="stDeckGlJsonChart"]')]
    .filter(c => c.querySelector('canvas')).length,
  metrics: document.querySelectorAll('[data-testid="stMetric"]').length,
  tables: document.querySelectorAll('[data-testid="stDataFrame"]').length,
  errors: [...document.querySelectorAll(
    '[data-testid="stException"], [data-testid="stAlertContentError"], ' +
    '[data-testid="stAlertContentWarning"], [role="dialog"]')].map(e => e.innerText),
})"""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)",
)


def page_state(browser: DevTools, page: Page) -> dict | None:
    """The page's state once it shows its title and everything expected, else None."""
    state = json.loads(browser.evaluate(STATE))
    if state["errors"]:
        raise AssertionError(f"{page.script}: error box {state['errors']}")
    expected = EXPECTED[page]
    done = state["title"] == page.title and all(state[k] >= n for k, n in expected.items())
    return state if done else None


def test_every_page_renders_its_charts_in_chromium(
    graph: MaterializedGraph, tmp_path: Path
) -> None:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} missing: .ci/run installs it"
    env = {
        **os.environ,
        "CAR_RENTAL_LAKE_ROOT": graph.settings.lake_root,
        "CAR_RENTAL_SOURCE_DIR": graph.settings.source_dir,
        "DAGSTER_HOME": graph.instance.root_directory,
    }
    env.pop("CAR_RENTAL_DEPLOYMENT", None)
    env.pop("CAR_RENTAL_CATALOG_PATH", None)
    with (
        streamlit_server(APP, env, tmp_path / "streamlit.log") as url,
        chromium(tmp_path / "profile", height=2400) as browser,
    ):
        for page, expected in EXPECTED.items():
            browser.navigate(DashboardLinks(base_url=url).page_url(page).value)  # the UI's links
            state = wait_for(
                f"page {page.script} with {expected}",
                lambda page=page: page_state(browser, page),
                PAGE_TIMEOUT_SECONDS,
            )
            # Exactly what was expected, no more: a page that lost a chart fails too.
            assert {k: state[k] for k in expected} == expected, page.script
            png = browser.screenshot(tmp_path / f"{page.script}.png")
            assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, page.script
