"""Top pick-up locations by revenue, the city/state roll-up, and a map of the locations."""

import streamlit as st

from car_rental_platform.dashboard import ui
from car_rental_platform.dashboard.data import CITY_STATE_ROLLUP, TOP_LOCATIONS
from car_rental_platform.dashboard.pages import LOCATIONS
from spark_jobs.contract import LOCATIONS as LOCATIONS_TABLE
from spark_jobs.contract import RENTALS

with ui.page(
    LOCATIONS, needs=(TOP_LOCATIONS, CITY_STATE_ROLLUP, RENTALS.name, LOCATIONS_TABLE.name)
) as view:
    view.filter_caption(
        note="Unfiltered: the analyses' tables; filtered: recomputed from processed rentals."
    )
    top = view.data.location_revenue(view.period, view.full)
    top["location"] = top["location_name"].fillna("unknown #" + top["location_id"].astype(str))
    st.subheader("Top 10 pick-up locations by revenue")
    st.bar_chart(
        top,
        x="location",
        y="total_revenue",
        x_label="",
        y_label="revenue",
        horizontal=True,
        sort="-total_revenue",
    )
    rollup = view.data.city_state(view.period, view.full)
    rollup["place"] = rollup["city"].fillna("unknown") + ", " + rollup["state"].fillna("?")
    st.subheader("Revenue by city and state")
    st.bar_chart(
        rollup, x="place", y="total_revenue", x_label="", y_label="revenue", sort="-total_revenue"
    )
    st.dataframe(rollup.drop(columns=["place"]), hide_index=True)
    st.subheader("Where the locations are")
    st.map(view.data.location_map(view.period), latitude="latitude", longitude="longitude")
