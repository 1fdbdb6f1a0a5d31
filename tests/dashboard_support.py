"""Helpers for the dashboard tests: the app under AppTest, and the data behind its charts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from car_rental_platform import dashboard
from car_rental_platform.dashboard.pages import Page
from tests.graph_fixtures import MaterializedGraph

APP = Path(dashboard.__file__).with_name("app.py")
TIMEOUT_SECONDS = 60


def point_at(graph: MaterializedGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment ``make dashboard`` would have after ``make run`` on the graph's lake."""
    monkeypatch.delenv("CAR_RENTAL_DEPLOYMENT", raising=False)
    monkeypatch.delenv("CAR_RENTAL_CATALOG_PATH", raising=False)
    monkeypatch.setenv("CAR_RENTAL_LAKE_ROOT", graph.settings.lake_root)
    monkeypatch.setenv("CAR_RENTAL_SOURCE_DIR", graph.settings.source_dir)
    monkeypatch.setenv("DAGSTER_HOME", graph.instance.root_directory)


def open_page(app: AppTest, page: Page) -> AppTest:
    """Run the app on one page."""
    app.switch_page(f"views/{page.script}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def new_app() -> AppTest:
    """A fresh session with no cached query results, run once so its pages are registered."""
    from car_rental_platform.dashboard.ui import _cached_query

    _cached_query.clear()
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_SECONDS)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def charts(app: AppTest) -> list[pd.DataFrame]:
    """The data of every Vega-Lite chart on the page, in page order."""
    frames = []
    for element in app.get("vega_lite_chart"):
        proto = element.proto
        datasets = list(proto.datasets) or []
        raw = datasets[0].data.data if datasets else proto.data.data
        frames.append(pa.ipc.open_stream(io.BytesIO(raw)).read_pandas())
    return frames


def chart_specs(app: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in app.get("vega_lite_chart")]


def money(value: float) -> str:
    return f"{value:,.2f}"
