"""The seven KPI tables of DESIGN section 3.3 as pure functions over processed DataFrames.

Money is ``decimal(18,2)`` end to end, so sums agree exactly across tables and rounding to two
decimals is half up; hours are doubles rounded half up to two decimals.

Each KPI column is computed by a ``Formula``, which names the columns it reads; the functions
below only arrange the formulas into groupings and joins. The column lineage of the KPI assets
(``column_lineage``) is read from the same formulas, so it cannot drift from the Spark code.
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
    LOCATIONS,
    OCCASIONAL_SPENDER,
    RENTALS,
    SPENDING_CATEGORIES,
    UNKNOWN,
    USER_METRICS,
    USERS,
    VEHICLE_TYPE_METRICS,
    VEHICLES,
    WEEKDAYS,
    KpiTable,
    SourceTable,
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


def _same(column: Column) -> Column:
    return column


@dataclass(frozen=True)
class Formula:
    """One KPI column: the columns it reads and the Spark expression over them.

    ``reads`` names each column as ``table.column`` for a processed table's column (the frame
    the expression runs on holds it under its bare name), or by its bare name for a column the
    same KPI table computes first. ``expression`` is given ``F.col`` of each, in order, and
    reads no other column: what ``reads`` names is what the column is computed from.
    """

    name: str
    reads: tuple[str, ...]
    expression: Callable[..., Column] = _same

    def column(self) -> Column:
        columns = (F.col(read.rpartition(".")[2]) for read in self.reads)
        return self.expression(*columns).alias(self.name)


@dataclass(frozen=True)
class Grouping:
    """Rentals grouped by ``key``, with the ``measures`` (aggregates) of each group."""

    key: Formula
    measures: tuple[Formula, ...]

    def aggregate(self, rentals: DataFrame) -> DataFrame:
        return rentals.groupBy(self.key.column()).agg(*(m.column() for m in self.measures))


@dataclass(frozen=True)
class KpiFormulas:
    """Every formula of one KPI table, as its function arranges them."""

    groupings: tuple[Grouping, ...]
    derived: tuple[Formula, ...] = ()
    """Computed from the groupings' columns, each from those before it."""
    joined: tuple[Formula, ...] = ()
    """Attributes of a processed dimension table, joined on the table's key."""

    @property
    def formulas(self) -> tuple[Formula, ...]:
        grouped = tuple(f for g in self.groupings for f in (g.key, *g.measures))
        return grouped + self.derived + self.joined


def processed(table: SourceTable, column: str) -> str:
    """``table.column`` of a processed table's column; a column the contract lacks is refused."""
    if column not in {c.name for c in table.processed_columns}:
        raise KeyError(f"processed {table.name} has no column {column!r}")
    return f"{table.name}.{column}"


RENTAL_ID = processed(RENTALS, "rental_id")
AMOUNT = processed(RENTALS, "total_amount")
DURATION = processed(RENTALS, "rental_duration_hours")
RENTED_VEHICLE = processed(RENTALS, "vehicle_id")
RENTING_USER = processed(RENTALS, "user_id")


def rentals_counted(name: str) -> Formula:
    """The number of rentals: their key is what is counted (Spark counts the rows)."""
    return Formula(name, (RENTAL_ID,), lambda _rental_id: F.count(F.lit(1)))


def of_amount(name: str, aggregate: Callable[[Column], Column]) -> Formula:
    return Formula(name, (AMOUNT,), aggregate)


def of_duration(name: str, aggregate: Callable[[Column], Column]) -> Formula:
    return Formula(name, (DURATION,), lambda duration: hours(aggregate(duration)))


def distinct(name: str, read: str) -> Formula:
    return Formula(name, (read,), F.countDistinct)


def attribute(table: SourceTable, column: str) -> Formula:
    """A processed column under its own name."""
    return Formula(column, (processed(table, column),))


def total_money(column: Column) -> Column:
    return money(F.sum(column))


def average_money(column: Column) -> Column:
    return money(F.avg(column))


def with_vehicle_attributes(rentals: DataFrame, vehicles: DataFrame) -> DataFrame:
    """Rentals with vehicle_type and brand; 'unknown' when the vehicle (or the value) is missing."""
    attributes = vehicles.select("vehicle_id", "vehicle_type", "brand")
    return rentals.join(attributes, "vehicle_id", "left").withColumns(
        {
            "vehicle_type": F.coalesce(F.col("vehicle_type"), F.lit(UNKNOWN)),
            "brand": F.coalesce(F.col("brand"), F.lit(UNKNOWN)),
        }
    )


LOCATION_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            Formula("location_id", (processed(RENTALS, "pickup_location"),)),
            (
                rentals_counted("total_pickups"),
                of_amount("total_revenue", total_money),
                of_amount("avg_transaction_amount", average_money),
                of_amount("max_transaction_amount", F.max),
                of_amount("min_transaction_amount", F.min),
                distinct("unique_vehicles", RENTED_VEHICLE),
                distinct("unique_users", RENTING_USER),
            ),
        ),
        Grouping(
            Formula("location_id", (processed(RENTALS, "dropoff_location"),)),
            (rentals_counted("total_dropoffs"),),
        ),
    ),
    joined=(
        attribute(LOCATIONS, "location_id"),
        attribute(LOCATIONS, "location_name"),
        attribute(LOCATIONS, "city"),
        attribute(LOCATIONS, "state"),
    ),
)


def location_metrics(inputs: KpiInputs) -> DataFrame:
    pickups, dropoffs = (
        grouping.aggregate(inputs.rentals) for grouping in LOCATION_FORMULAS.groupings
    )
    names = inputs.locations.select(*(f.column() for f in LOCATION_FORMULAS.joined))
    ids = (
        names.select("location_id")
        .union(pickups.select("location_id"))
        .union(dropoffs.select("location_id"))
        .distinct()
    )
    joined = ids.join(names, "location_id", "left").join(pickups, "location_id", "left")
    joined = joined.join(dropoffs, "location_id", "left").fillna(
        0, subset=["total_pickups", "total_dropoffs", "unique_vehicles", "unique_users"]
    )
    joined = joined.withColumn("total_revenue", F.coalesce("total_revenue", F.lit(0)))
    return conform(joined.orderBy("location_id"), LOCATION_METRICS)


VEHICLE_TYPE_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            attribute(VEHICLES, "vehicle_type"),
            (
                rentals_counted("total_rentals"),
                of_amount("total_revenue", total_money),
                of_amount("avg_rental_amount", average_money),
                of_duration("total_rental_hours", F.sum),
                of_duration("avg_rental_duration_hours", F.avg),
                of_duration("min_rental_duration_hours", F.min),
                of_duration("max_rental_duration_hours", F.max),
                distinct("unique_vehicles", RENTED_VEHICLE),
            ),
        ),
    ),
)


def vehicle_type_metrics(inputs: KpiInputs) -> DataFrame:
    rentals = with_vehicle_attributes(inputs.rentals, inputs.vehicles)
    (by_type,) = VEHICLE_TYPE_FORMULAS.groupings
    return conform(by_type.aggregate(rentals).orderBy("vehicle_type"), VEHICLE_TYPE_METRICS)


BRAND_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            attribute(VEHICLES, "brand"),
            (
                rentals_counted("total_rentals"),
                of_amount("total_revenue", total_money),
                of_amount("avg_rental_amount", average_money),
                distinct("unique_vehicles", RENTED_VEHICLE),
            ),
        ),
    ),
)


def brand_metrics(inputs: KpiInputs) -> DataFrame:
    rentals = with_vehicle_attributes(inputs.rentals, inputs.vehicles)
    (by_brand,) = BRAND_FORMULAS.groupings
    return conform(by_brand.aggregate(rentals).orderBy("brand"), BRAND_METRICS)


DAILY_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            attribute(RENTALS, "rental_date"),
            (
                rentals_counted("total_transactions"),
                of_amount("total_revenue", total_money),
                of_amount("avg_transaction_amount", average_money),
                of_amount("max_transaction_amount", F.max),
                of_amount("min_transaction_amount", F.min),
                distinct("unique_users", RENTING_USER),
                distinct("unique_vehicles", RENTED_VEHICLE),
                of_duration("total_rental_hours", F.sum),
            ),
        ),
    ),
)


def daily_metrics(inputs: KpiInputs) -> DataFrame:
    (by_day,) = DAILY_FORMULAS.groupings
    return conform(by_day.aggregate(inputs.rentals).orderBy("rental_date"), DAILY_METRICS)


def spending_percentile(total_spent: Column) -> Column:
    """percent_rank by total_spent x 100, rounded to 2 decimals."""
    # One global ordering is inherent to percent_rank; the input is one row per renting user.
    return F.round(F.percent_rank().over(Window.orderBy(total_spent)) * 100, 2)


def spending_category(percentile: Column) -> Column:
    """Category from the (rounded) percentile shown in the same row, highest bound first."""
    bound, name = SPENDING_CATEGORIES[0]
    category = F.when(percentile >= bound, F.lit(name))
    for bound, name in SPENDING_CATEGORIES[1:]:
        category = category.when(percentile >= bound, F.lit(name))
    return category.otherwise(F.lit(OCCASIONAL_SPENDER))


USER_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            attribute(RENTALS, "user_id"),
            (
                rentals_counted("total_rentals"),
                of_amount("total_spent", F.sum),
                of_amount("avg_rental_amount", average_money),
                of_amount("max_rental_amount", F.max),
                of_amount("min_rental_amount", F.min),
                of_duration("total_rental_hours", F.sum),
                of_duration("avg_rental_duration_hours", F.avg),
                distinct("unique_vehicles_rented", RENTED_VEHICLE),
            ),
        ),
    ),
    derived=(
        Formula("spending_percentile", ("total_spent",), spending_percentile),
        Formula("spending_category", ("spending_percentile",), spending_category),
    ),
    joined=(
        attribute(USERS, "first_name"),
        attribute(USERS, "last_name"),
        attribute(USERS, "email"),
        attribute(USERS, "is_active"),
    ),
)


def user_metrics(inputs: KpiInputs) -> DataFrame:
    (by_user,) = USER_FORMULAS.groupings
    per_user = by_user.aggregate(inputs.rentals)
    for formula in USER_FORMULAS.derived:
        per_user = per_user.withColumn(formula.name, formula.column())
    users = inputs.users.select("user_id", *(f.column() for f in USER_FORMULAS.joined))
    result = per_user.join(users, "user_id", "left")
    return conform(result.orderBy("user_id"), USER_METRICS)


HOURLY_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            Formula("hour_of_day", (processed(RENTALS, "rental_hour"),)),
            (
                rentals_counted("total_transactions"),
                of_amount("total_revenue", total_money),
                of_amount("avg_transaction_amount", average_money),
            ),
        ),
    ),
)


def hourly_metrics(inputs: KpiInputs) -> DataFrame:
    (by_hour,) = HOURLY_FORMULAS.groupings
    return conform(by_hour.aggregate(inputs.rentals).orderBy("hour_of_day"), HOURLY_METRICS)


def iso_day_number(date: Column) -> Column:
    """1 = Monday ... 7 = Sunday (Spark's dayofweek is 1 = Sunday ... 7 = Saturday)."""
    return (F.dayofweek(date) + 5) % 7 + 1


def weekday_name(day_number: Column) -> Column:
    return F.element_at(F.array(*[F.lit(day) for day in WEEKDAYS]), day_number)


DAY_OF_WEEK_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            Formula("day_number", (processed(RENTALS, "rental_date"),), iso_day_number),
            (
                rentals_counted("total_transactions"),
                of_amount("total_revenue", total_money),
                of_amount("avg_transaction_amount", average_money),
            ),
        ),
    ),
    derived=(Formula("day_of_week", ("day_number",), weekday_name),),
)


def day_of_week_metrics(inputs: KpiInputs) -> DataFrame:
    (by_day,) = DAY_OF_WEEK_FORMULAS.groupings
    result = by_day.aggregate(inputs.rentals)
    for formula in DAY_OF_WEEK_FORMULAS.derived:
        result = result.withColumn(formula.name, formula.column())
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
KPI_FORMULAS: dict[str, KpiFormulas] = {
    LOCATION_METRICS.name: LOCATION_FORMULAS,
    VEHICLE_TYPE_METRICS.name: VEHICLE_TYPE_FORMULAS,
    BRAND_METRICS.name: BRAND_FORMULAS,
    DAILY_METRICS.name: DAILY_FORMULAS,
    USER_METRICS.name: USER_FORMULAS,
    HOURLY_METRICS.name: HOURLY_FORMULAS,
    DAY_OF_WEEK_METRICS.name: DAY_OF_WEEK_FORMULAS,
}
"""The formulas each KPI function arranges, by table: where its column lineage is read from."""


def column_lineage(table: KpiTable) -> dict[str, tuple[tuple[str, str], ...]]:
    """Each column of a KPI table -> the processed (table, column)s it is computed from.

    Read from the table's formulas: a column that reads another column of the same table is
    computed from what that one is computed from, and a column several formulas compute (a
    key built from several groupings and joins) from all of theirs.
    """
    formulas: dict[str, list[Formula]] = {}
    for formula in KPI_FORMULAS[table.name].formulas:
        formulas.setdefault(formula.name, []).append(formula)

    def sources(name: str) -> tuple[tuple[str, str], ...]:
        if name not in formulas:
            raise KeyError(f"{table.name}.{name}: no formula computes this column")
        found: dict[tuple[str, str], None] = {}
        for formula in formulas[name]:
            for read in formula.reads:
                processed, _, column = read.rpartition(".")
                reached = [(processed, column)] if processed else sources(column)
                found.update(dict.fromkeys(reached))
        return tuple(found)

    return {column.name: sources(column.name) for column in table.columns}
