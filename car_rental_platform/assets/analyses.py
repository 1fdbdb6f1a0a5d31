"""Analyses: the queries users ran by hand in Athena (DESIGN 4), as assets.

Each is SQL over the catalog, run by the query engine (DuckDB locally, Athena on AWS), so the
statements stick to what both dialects share. Results go through the lakehouse IO manager:
Parquet under ``<lake>/analyses/<name>/``, registered in the catalog, previewed in the UI.
"""

from dataclasses import dataclass

import dagster as dg
import pandas as pd

from car_rental_platform.assets.catalog import catalog_key
from car_rental_platform.assets.common import OWNERS, REFRESH_OVER_CHECKED_DATA
from car_rental_platform.assets.kpi import kpi_key
from car_rental_platform.dashboard.pages import LOCATIONS, REVENUE_TREND, SPENDERS, VEHICLES, Page
from car_rental_platform.partitions import SINGLE_RUN
from car_rental_platform.resources.dashboard import DashboardLinks
from car_rental_platform.resources.query import QueryEngine
from spark_jobs.contract import (
    BRAND_METRICS,
    DAILY_METRICS,
    DAY_OF_WEEK_METRICS,
    HOURLY_METRICS,
    LOCATION_METRICS,
    USER_METRICS,
    VEHICLE_TYPE_METRICS,
    Zone,
)


@dataclass(frozen=True)
class Analysis:
    name: str
    description: str
    sql: str
    """A statement with ``{table}`` placeholders for the catalog tables it reads."""
    reads: tuple[str, ...]
    page: Page
    """The dashboard page that charts this analysis."""


REVENUE_COLUMNS = ("total_revenue", "total_spent")
COUNT_COLUMNS = ("total_transactions", "total_rentals", "total_pickups")
CITY_STATE_ROLLUP = "city_state_rollup"


def headline_metadata(frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """Revenue and rentals summed over the analysis's rows, as numbers the Plots tab can chart.

    For a top-N table that is the top N's share, which is the figure worth watching over runs.
    """
    figures: dict[str, dg.MetadataValue] = {}
    revenue = next((c for c in REVENUE_COLUMNS if c in frame.columns), None)
    count = next((c for c in COUNT_COLUMNS if c in frame.columns), None)
    if revenue is not None:
        figures["total_revenue"] = dg.MetadataValue.float(round(float(frame[revenue].sum()), 2))
    if count is not None:
        figures["total_rentals"] = dg.MetadataValue.int(int(frame[count].sum()))
    return figures


ANALYSES = (
    Analysis(
        "top_locations_by_revenue",
        "The 10 pick-up locations with the most revenue.",
        "SELECT location_id, location_name, city, state, total_revenue, total_pickups "
        "FROM {location_metrics} ORDER BY total_revenue DESC, location_id LIMIT 10",
        (LOCATION_METRICS.name,),
        LOCATIONS,
    ),
    Analysis(
        "vehicle_types_by_rentals",
        "Vehicle types ranked by number of rentals, with revenue and average duration.",
        "SELECT vehicle_type, total_rentals, total_revenue, avg_rental_duration_hours "
        "FROM {vehicle_type_metrics} ORDER BY total_rentals DESC, vehicle_type",
        (VEHICLE_TYPE_METRICS.name,),
        VEHICLES,
    ),
    Analysis(
        "top_spenders",
        "The 20 users who spent the most among the 'Top Spender' category.",
        "SELECT user_id, first_name, last_name, email, total_spent, total_rentals, "
        "spending_percentile FROM {user_metrics} WHERE spending_category = 'Top Spender' "
        "ORDER BY total_spent DESC, user_id LIMIT 20",
        (USER_METRICS.name,),
        SPENDERS,
    ),
    Analysis(
        "daily_revenue_trend",
        "Revenue per day with its running total and 7-day moving average.",
        "SELECT rental_date, total_transactions, total_revenue, "
        "SUM(total_revenue) OVER (ORDER BY rental_date ROWS UNBOUNDED PRECEDING) "
        "AS cumulative_revenue, "
        "ROUND(AVG(CAST(total_revenue AS DOUBLE)) OVER (ORDER BY rental_date "
        "ROWS BETWEEN 6 PRECEDING AND CURRENT ROW), 2) AS revenue_7_day_avg "
        "FROM {daily_metrics} ORDER BY rental_date",
        (DAILY_METRICS.name,),
        REVENUE_TREND,
    ),
    Analysis(
        "hourly_pattern",
        "Transactions and revenue by start hour, with each hour's share of revenue.",
        "SELECT hour_of_day, total_transactions, total_revenue, avg_transaction_amount, "
        "ROUND(100 * CAST(total_revenue AS DOUBLE) / "
        "NULLIF(SUM(CAST(total_revenue AS DOUBLE)) OVER (), 0), 2) AS revenue_share_pct "
        "FROM {hourly_metrics} ORDER BY hour_of_day",
        (HOURLY_METRICS.name,),
        VEHICLES,
    ),
    Analysis(
        "weekday_pattern",
        "Transactions and revenue by weekday (1 = Monday), with each day's share of revenue.",
        "SELECT day_number, day_of_week, total_transactions, total_revenue, "
        "avg_transaction_amount, ROUND(100 * CAST(total_revenue AS DOUBLE) / "
        "NULLIF(SUM(CAST(total_revenue AS DOUBLE)) OVER (), 0), 2) AS revenue_share_pct "
        "FROM {day_of_week_metrics} ORDER BY day_number",
        (DAY_OF_WEEK_METRICS.name,),
        VEHICLES,
    ),
    Analysis(
        "top_brands_by_revenue",
        "The 10 brands with the most revenue.",
        "SELECT brand, total_rentals, total_revenue, avg_rental_amount, unique_vehicles "
        "FROM {brand_metrics} ORDER BY total_revenue DESC, brand LIMIT 10",
        (BRAND_METRICS.name,),
        VEHICLES,
    ),
)


def _out(name: str, description: str) -> dg.AssetOut:
    """An analysis table: a multi-asset of one output, the asset decorator's single-run
    backfill policy being beta (it warns on every load)."""
    return dg.AssetOut(
        key=[Zone.ANALYSES.value, name],
        description=description,
        group_name="analyses",
        kinds={"sql", "pandas", "duckdb", "athena"},
        owners=OWNERS,
        automation_condition=REFRESH_OVER_CHECKED_DATA,
    )


def build_analysis_asset(analysis: Analysis) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"{Zone.ANALYSES.value}__{analysis.name}",
        outs={"result": _out(analysis.name, analysis.description)},
        deps=[catalog_key(t) for t in analysis.reads],
        backfill_policy=SINGLE_RUN,
    )
    def _analysis(
        context: dg.AssetExecutionContext, engine: QueryEngine, dashboard: DashboardLinks
    ) -> pd.DataFrame:
        sql = analysis.sql.format(**{t: engine.table_name(t) for t in analysis.reads})
        frame = engine.query(sql)
        context.add_output_metadata(
            {
                **headline_metadata(frame),
                "dashboard": dashboard.page_url(analysis.page),
                "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```"),
            }
        )
        return frame

    return _analysis


@dg.multi_asset(
    name=f"{Zone.ANALYSES.value}__{CITY_STATE_ROLLUP}",
    outs={
        "result": _out(
            CITY_STATE_ROLLUP,
            "Location metrics rolled up to city and state (unknown locations as one group).",
        )
    },
    ins={"location_metrics": dg.AssetIn(kpi_key(LOCATION_METRICS.name))},
    deps=[catalog_key(LOCATION_METRICS.name)],
    backfill_policy=SINGLE_RUN,
)
def city_state_rollup(
    context: dg.AssetExecutionContext, location_metrics: pd.DataFrame, dashboard: DashboardLinks
) -> pd.DataFrame:
    """Loads the Spark-written KPI table through the IO manager, then aggregates in pandas."""
    grouped = location_metrics.groupby(["state", "city"], dropna=False, as_index=False).agg(
        locations=("location_id", "count"),
        total_pickups=("total_pickups", "sum"),
        total_dropoffs=("total_dropoffs", "sum"),
        total_revenue=("total_revenue", "sum"),
    )
    grouped["total_revenue"] = grouped["total_revenue"].astype(float).round(2)
    context.add_output_metadata(
        {**headline_metadata(grouped), "dashboard": dashboard.page_url(LOCATIONS)}
    )
    return grouped.sort_values(["total_revenue", "state", "city"], ascending=[False, True, True])


ANALYSIS_ASSETS = [*[build_analysis_asset(a) for a in ANALYSES], city_state_rollup]
ANALYSIS_BY_NAME = {a.name: a for a in ANALYSES}
