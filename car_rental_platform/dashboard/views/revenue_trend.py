"""Revenue per day with its 7-day average, over the selected dates."""

import streamlit as st

from car_rental_platform.dashboard import ui
from car_rental_platform.dashboard.data import DAILY_TREND
from car_rental_platform.dashboard.pages import REVENUE_TREND

with ui.page(REVENUE_TREND, needs=(DAILY_TREND,)) as view:
    trend = view.data.daily_trend(view.period)
    revenue, transactions, days = st.columns(3)
    revenue.metric("Revenue in period", ui.money(float(trend["total_revenue"].sum())), border=True)
    transactions.metric(
        "Rentals in period", ui.count(int(trend["total_transactions"].sum())), border=True
    )
    days.metric("Days with rentals", ui.count(len(trend)), border=True)
    st.line_chart(
        trend.rename(columns={"total_revenue": "revenue", "revenue_7_day_avg": "7-day average"}),
        x="rental_date",
        y=["revenue", "7-day average"],
        x_label="date",
        y_label="revenue",
    )
    view.filter_caption(note=f"From the {DAILY_TREND} analysis (7-day average over all dates).")
    st.dataframe(trend.assign(rental_date=trend["rental_date"].dt.date), hide_index=True)
