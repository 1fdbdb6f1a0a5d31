"""Vehicle types and brands, and when people rent: by start hour and by weekday."""

import streamlit as st

from car_rental_platform.dashboard import ui
from car_rental_platform.dashboard.data import HOURLY, TOP_BRANDS, VEHICLE_TYPES, WEEKDAY
from car_rental_platform.dashboard.pages import VEHICLES
from spark_jobs.contract import RENTALS
from spark_jobs.contract import VEHICLES as VEHICLES_TABLE

with ui.page(
    VEHICLES,
    needs=(VEHICLE_TYPES, TOP_BRANDS, HOURLY, WEEKDAY, RENTALS.name, VEHICLES_TABLE.name),
) as view:
    view.filter_caption(
        note="Unfiltered: the analyses' tables; filtered: recomputed from processed rentals."
    )
    types, brands = st.columns(2)
    with types:
        st.subheader("Rentals by vehicle type")
        frame = view.data.vehicle_types(view.period, view.full)
        st.bar_chart(
            frame,
            x="vehicle_type",
            y="total_rentals",
            x_label="",
            y_label="rentals",
            sort="-total_rentals",
        )
    with brands:
        st.subheader("Top brands by revenue")
        frame = view.data.brands(view.period, view.full)
        st.bar_chart(
            frame,
            x="brand",
            y="total_revenue",
            x_label="",
            y_label="revenue",
            horizontal=True,
            sort="-total_revenue",
        )
    hours, weekdays = st.columns(2)
    with hours:
        st.subheader("Rentals by start hour (UTC)")
        frame = view.data.hourly(view.period, view.full)
        st.bar_chart(
            frame,
            x="hour_of_day",
            y="total_transactions",
            x_label="hour",
            y_label="rentals",
            sort=False,
        )
    with weekdays:
        st.subheader("Rentals by weekday")
        frame = view.data.weekdays(view.period, view.full)
        frame["weekday"] = frame["day_number"].astype(str) + " " + frame["day_of_week"]
        st.bar_chart(
            frame, x="weekday", y="total_transactions", x_label="", y_label="rentals", sort=False
        )
