"""The seven KPI tables of DESIGN section 3.3 as pure functions over processed DataFrames.

Money is ``decimal(18,2)`` end to end, so sums agree exactly across tables and rounding to two
decimals is half up; hours are doubles rounded half up to two decimals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.contract import (
    BRAND_METRICS,
    DAILY_METRICS,
    DAY_OF_WEEK_METRICS,
    HOURLY_METRICS,
    LOCATION_METRICS,
    OCCASIONAL_SPENDER,
    SPENDING_CATEGORIES,
    UNKNOWN,
    USER_METRICS,
    VEHICLE_TYPE_METRICS,
    WEEKDAYS,
    KpiTable,
)


@dataclass(frozen=True)
class KpiInputs:
    """The processed tables the KPIs read."""

    rentals: DataFrame
    vehicles: DataFrame
    users: DataFrame
    locations: DataFrame


def money(value: Column) -> Column:
    return F.round(value, 2)


def hours(value: Column) -> Column:
    return F.round(value, 2)


def conform(df: DataFrame, table: KpiTable) -> DataFrame:
    """Select the contract's columns in order, cast to the contract's types."""
    return df.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in table.columns])


def amount() -> Column:
    return F.col("total_amount")


def duration() -> Column:
    return F.col("rental_duration_hours")


def with_vehicle_attributes(rentals: DataFrame, vehicles: DataFrame) -> DataFrame:
    """Rentals with vehicle_type and brand; 'unknown' when the vehicle (or the value) is missing."""
    attributes = vehicles.select("vehicle_id", "vehicle_type", "brand")
    return rentals.join(attributes, "vehicle_id", "left").withColumns(
        {
            "vehicle_type": F.coalesce(F.col("vehicle_type"), F.lit(UNKNOWN)),
            "brand": F.coalesce(F.col("brand"), F.lit(UNKNOWN)),
        }
    )


def location_metrics(inputs: KpiInputs) -> DataFrame:
    rentals = inputs.rentals
    pickups = rentals.groupBy(F.col("pickup_location").alias("location_id")).agg(
        F.count(F.lit(1)).alias("total_pickups"),
        money(F.sum(amount())).alias("total_revenue"),
        money(F.avg(amount())).alias("avg_transaction_amount"),
        F.max(amount()).alias("max_transaction_amount"),
        F.min(amount()).alias("min_transaction_amount"),
        F.countDistinct("vehicle_id").alias("unique_vehicles"),
        F.countDistinct("user_id").alias("unique_users"),
    )
    dropoffs = rentals.groupBy(F.col("dropoff_location").alias("location_id")).agg(
        F.count(F.lit(1)).alias("total_dropoffs")
    )
    ids = (
        inputs.locations.select("location_id")
        .union(pickups.select("location_id"))
        .union(dropoffs.select("location_id"))
        .distinct()
    )
    names = inputs.locations.select("location_id", "location_name", "city", "state")
    joined = ids.join(names, "location_id", "left").join(pickups, "location_id", "left")
    joined = joined.join(dropoffs, "location_id", "left").fillna(
        0, subset=["total_pickups", "total_dropoffs", "unique_vehicles", "unique_users"]
    )
    joined = joined.withColumn("total_revenue", F.coalesce("total_revenue", F.lit(0)))
    return conform(joined.orderBy("location_id"), LOCATION_METRICS)


def vehicle_type_metrics(inputs: KpiInputs) -> DataFrame:
    rentals = with_vehicle_attributes(inputs.rentals, inputs.vehicles)
    result = rentals.groupBy("vehicle_type").agg(
        F.count(F.lit(1)).alias("total_rentals"),
        money(F.sum(amount())).alias("total_revenue"),
        money(F.avg(amount())).alias("avg_rental_amount"),
        hours(F.sum(duration())).alias("total_rental_hours"),
        hours(F.avg(duration())).alias("avg_rental_duration_hours"),
        hours(F.min(duration())).alias("min_rental_duration_hours"),
        hours(F.max(duration())).alias("max_rental_duration_hours"),
        F.countDistinct("vehicle_id").alias("unique_vehicles"),
    )
    return conform(result.orderBy("vehicle_type"), VEHICLE_TYPE_METRICS)


def brand_metrics(inputs: KpiInputs) -> DataFrame:
    rentals = with_vehicle_attributes(inputs.rentals, inputs.vehicles)
    result = rentals.groupBy("brand").agg(
        F.count(F.lit(1)).alias("total_rentals"),
        money(F.sum(amount())).alias("total_revenue"),
        money(F.avg(amount())).alias("avg_rental_amount"),
        F.countDistinct("vehicle_id").alias("unique_vehicles"),
    )
    return conform(result.orderBy("brand"), BRAND_METRICS)


def daily_metrics(inputs: KpiInputs) -> DataFrame:
    result = inputs.rentals.groupBy("rental_date").agg(
        F.count(F.lit(1)).alias("total_transactions"),
        money(F.sum(amount())).alias("total_revenue"),
        money(F.avg(amount())).alias("avg_transaction_amount"),
        F.max(amount()).alias("max_transaction_amount"),
        F.min(amount()).alias("min_transaction_amount"),
        F.countDistinct("user_id").alias("unique_users"),
        F.countDistinct("vehicle_id").alias("unique_vehicles"),
        hours(F.sum(duration())).alias("total_rental_hours"),
    )
    return conform(result.orderBy("rental_date"), DAILY_METRICS)


def spending_category(percentile: Column) -> Column:
    """Category from the (rounded) percentile shown in the same row, highest bound first."""
    bound, name = SPENDING_CATEGORIES[0]
    category = F.when(percentile >= bound, F.lit(name))
    for bound, name in SPENDING_CATEGORIES[1:]:
        category = category.when(percentile >= bound, F.lit(name))
    return category.otherwise(F.lit(OCCASIONAL_SPENDER))


def user_metrics(inputs: KpiInputs) -> DataFrame:
    per_user = inputs.rentals.groupBy("user_id").agg(
        F.count(F.lit(1)).alias("total_rentals"),
        F.sum(amount()).alias("total_spent"),
        money(F.avg(amount())).alias("avg_rental_amount"),
        F.max(amount()).alias("max_rental_amount"),
        F.min(amount()).alias("min_rental_amount"),
        hours(F.sum(duration())).alias("total_rental_hours"),
        hours(F.avg(duration())).alias("avg_rental_duration_hours"),
        F.countDistinct("vehicle_id").alias("unique_vehicles_rented"),
    )
    # One global ordering is inherent to percent_rank; the input is one row per renting user.
    by_spend = Window.orderBy("total_spent")
    percentile = F.round(F.percent_rank().over(by_spend) * 100, 2)
    per_user = per_user.withColumn("spending_percentile", percentile).withColumn(
        "spending_category", spending_category(F.col("spending_percentile"))
    )
    users = inputs.users.select("user_id", "first_name", "last_name", "email", "is_active")
    result = per_user.join(users, "user_id", "left")
    return conform(result.orderBy("user_id"), USER_METRICS)


def hourly_metrics(inputs: KpiInputs) -> DataFrame:
    result = inputs.rentals.groupBy(F.col("rental_hour").alias("hour_of_day")).agg(
        F.count(F.lit(1)).alias("total_transactions"),
        money(F.sum(amount())).alias("total_revenue"),
        money(F.avg(amount())).alias("avg_transaction_amount"),
    )
    return conform(result.orderBy("hour_of_day"), HOURLY_METRICS)


def iso_day_number(date: Column) -> Column:
    """1 = Monday ... 7 = Sunday (Spark's dayofweek is 1 = Sunday ... 7 = Saturday)."""
    return (F.dayofweek(date) + 5) % 7 + 1


def day_of_week_metrics(inputs: KpiInputs) -> DataFrame:
    result = inputs.rentals.groupBy(iso_day_number(F.col("rental_date")).alias("day_number")).agg(
        F.count(F.lit(1)).alias("total_transactions"),
        money(F.sum(amount())).alias("total_revenue"),
        money(F.avg(amount())).alias("avg_transaction_amount"),
    )
    names = F.array(*[F.lit(day) for day in WEEKDAYS])
    result = result.withColumn("day_of_week", F.element_at(names, F.col("day_number")))
    return conform(result.orderBy("day_number"), DAY_OF_WEEK_METRICS)


KPI_FUNCTIONS: dict[str, Callable[[KpiInputs], DataFrame]] = {
    LOCATION_METRICS.name: location_metrics,
    VEHICLE_TYPE_METRICS.name: vehicle_type_metrics,
    BRAND_METRICS.name: brand_metrics,
    DAILY_METRICS.name: daily_metrics,
    USER_METRICS.name: user_metrics,
    HOURLY_METRICS.name: hourly_metrics,
    DAY_OF_WEEK_METRICS.name: day_of_week_metrics,
}
