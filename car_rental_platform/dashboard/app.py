"""The dashboard's entry point: ``streamlit run car_rental_platform/dashboard/app.py``
(``make dashboard``). One script per page under ``views/``; the sidebar holds the date filter
that every page reads."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from car_rental_platform.dashboard import ui
from car_rental_platform.dashboard.pages import OVERVIEW, PAGES

VIEWS = Path(__file__).with_name("views")

st.set_page_config(
    page_title="Car rental KPIs", page_icon=":material/directions_car:", layout="wide"
)
navigation = st.navigation(
    [
        st.Page(
            VIEWS / f"{page.script}.py",
            title=page.title,
            icon=page.icon,
            url_path=page.url_path or None,
            default=page is OVERVIEW,
        )
        for page in PAGES
    ]
)
data = ui.dashboard_data()
st.session_state[ui.DATA_KEY] = data
st.session_state[ui.PERIODS_KEY] = ui.selected_period(data)
st.sidebar.caption(f"Catalog database `{data.database}` through {type(data.engine).__name__}.")
if st.sidebar.button("Reload data", help="Forget cached query results and query again."):
    st.cache_data.clear()
    st.rerun()
navigation.run()
