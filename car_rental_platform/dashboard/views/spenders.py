"""The top spenders (a sortable table) and how users spread over the spending categories."""

import streamlit as st

from car_rental_platform.dashboard import ui
from car_rental_platform.dashboard.data import TOP_SPENDERS
from car_rental_platform.dashboard.pages import SPENDERS
from spark_jobs.contract import USER_METRICS

with ui.page(SPENDERS, needs=(TOP_SPENDERS, USER_METRICS.name)) as view:
    view.filter_caption(
        applies=False,
        note="spending percentiles and categories rank each user's spending over all dates.",
    )
    st.subheader("Spending categories")
    categories = view.data.spending_categories()
    st.bar_chart(
        categories, x="spending_category", y="users", x_label="", y_label="users", sort=False
    )
    st.subheader("Top spenders (click a column header to sort)")
    st.dataframe(view.data.top_spenders(), hide_index=True)
