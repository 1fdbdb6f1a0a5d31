"""Rejected rows by table and reason with a sample, and the latest asset-check results."""

import streamlit as st

from car_rental_platform.dashboard import ui
from car_rental_platform.dashboard.instance import latest_check_results, open_instance
from car_rental_platform.dashboard.pages import DATA_QUALITY
from spark_jobs.contract import REJECTED_ROWS_TABLE

ALL_TABLES = "all tables"

with ui.page(DATA_QUALITY, needs=(REJECTED_ROWS_TABLE,)) as view:
    view.filter_caption(
        applies=False, note="a rejected row keeps its raw line, not a parsed rental date."
    )
    rejected = view.data.rejected_by_reason()
    st.metric("Rejected rows", ui.count(int(rejected["rejected_rows"].sum())), border=True)
    st.subheader("Rejected rows by table and reason")
    st.bar_chart(
        rejected,
        x="source_table",
        y="rejected_rows",
        color="reason",
        horizontal=True,
        x_label="",
        y_label="rejected rows",
    )
    st.dataframe(rejected, hide_index=True)
    st.subheader("Sample of rejected records")
    tables = sorted(rejected["source_table"].unique())
    chosen = st.selectbox("Table", [ALL_TABLES, *tables], key="rejected_table")
    sample = view.data.rejected_sample(None if chosen == ALL_TABLES else chosen)
    st.dataframe(sample, hide_index=True)
    st.subheader("Latest check results")
    with open_instance() as instance:
        checks = latest_check_results(instance) if instance is not None else None
    if checks is None or checks.empty:
        st.info("No check results recorded in this Dagster instance (DAGSTER_HOME).")
    else:
        failed = int((~checks["passed"]).sum())
        st.caption(f"{len(checks)} checks, {failed} not passed (a WARN is kept data, counted).")
        st.dataframe(checks, hide_index=True)
