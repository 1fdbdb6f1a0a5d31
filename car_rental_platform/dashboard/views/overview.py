"""Overview: the headline figures of the selected period, and where they come from."""

import streamlit as st

from car_rental_platform.dashboard import ui
from car_rental_platform.dashboard.instance import last_refreshed, open_instance
from car_rental_platform.dashboard.pages import OVERVIEW
from spark_jobs.contract import RENTALS

with ui.page(OVERVIEW, needs=(RENTALS.name,)) as view:
    figures = view.data.overview(view.period)
    revenue, rentals, users, average = st.columns(4)
    revenue.metric("Total revenue", ui.money(figures.revenue), border=True)
    rentals.metric("Rentals", ui.count(figures.rentals), border=True)
    users.metric(
        "Active users", ui.count(figures.active_users), border=True, help="Users who rented."
    )
    average.metric("Average rental", ui.money(figures.average_rental), border=True)
    st.markdown(f"**Period covered:** {view.period.label()}")
    with open_instance() as instance:
        refreshed = last_refreshed(instance) if instance is not None else None
    st.markdown(
        "**Last refreshed:** "
        + (
            refreshed.strftime("%Y-%m-%d %H:%M:%S UTC")
            if refreshed is not None
            else "not recorded (no catalog materialization in this Dagster instance)"
        )
    )
    trend = view.data.daily_trend(view.period)
    st.subheader("Revenue per day")
    st.area_chart(trend, x="rental_date", y="total_revenue", x_label="date", y_label="revenue")
    view.filter_caption(note="Figures from the processed rentals table.")
