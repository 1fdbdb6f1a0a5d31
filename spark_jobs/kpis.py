"""The seven KPI tables of DESIGN section 3.3 as pure functions over processed DataFrames.

Money is ``decimal(18,2)`` end to end, so sums agree exactly across tables and rounding to two
decimals is half up; hours are doubles rounded half up to two decimals.

Each KPI column is computed by a ``Formula`` (or, aggregated, a ``Measure``), which names the
columns it reads; the functions below only arrange them into groupings and joins. The column
lineage of the KPI assets (``column_lineage``) is read from the same formulas, so it cannot drift
from the Spark code.

A grouping is aggregated in two steps, ``Grouping.partials`` (per group: counts, sums, minima,
maxima, distinct counts) then ``Grouping.finished`` (averages and rounding). The partials are
what the KPI job keeps between runs: rentals only added since (a new day) are aggregated alone
and merged in (``Grouping.appended``), which gives what a full recompute gives, without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

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


class Kind(StrEnum):
    """How a measure aggregates, and so how two groups' partials of it merge."""

    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    AVG = "avg"
    DISTINCT = "distinct"


PARTIALS: dict[Kind, tuple[str, ...]] = {
    Kind.COUNT: ("n",),
    Kind.SUM: ("s",),
    Kind.MIN: ("v",),
    Kind.MAX: ("v",),
    Kind.AVG: ("s", "n"),
    Kind.DISTINCT: ("d",),
}
"""The partial columns of each kind: a count, a sum, a value, a distinct count."""
AGGREGATES: dict[Kind, Callable[[Column], Column]] = {
    Kind.COUNT: lambda _value: F.count(F.lit(1)),
    Kind.SUM: F.sum,
    Kind.MIN: F.min,
    Kind.MAX: F.max,
    Kind.AVG: F.avg,
    Kind.DISTINCT: F.count_distinct,
}
"""Each kind as one Spark aggregate over the column it reads."""
NEW_PAIRS = "p"
"""A distinct measure's count of (group, value) pairs the added rows bring that none held."""
ADDED = "_added"


def mean(total: Column, count: Column, total_type: T.DataType) -> Column:
    """``avg`` from its sum and count, exactly as Spark's ``avg`` computes it: a decimal(p, s)
    mean is the decimal(p + 10, s) sum over the count, as decimal(p + 4, s + 4)."""
    if isinstance(total_type, T.DecimalType):
        result = T.DecimalType(total_type.precision - 6, total_type.scale + 4)
        return (total / count.cast(T.DecimalType(20, 0))).cast(result)
    return total / count


@dataclass(frozen=True)
class Measure:
    """One aggregated KPI column: the ``kind`` of aggregate of the column ``read``, then
    ``finish`` (rounding) on the result."""

    name: str
    read: str
    kind: Kind
    finish: Callable[[Column], Column] = _same

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.read,)

    def column(self) -> Column:
        """The measure as one aggregate: what its partials, finished, come to."""
        value = F.col(self.read.rpartition(".")[2])
        return self.finish(AGGREGATES[self.kind](value)).alias(self.name)

    def part(self, partial: str) -> str:
        return f"_{partial}_{self.name}"

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.part(p) for p in PARTIALS[self.kind])

    def partials(self) -> list[Column]:
        value = F.col(self.read.rpartition(".")[2])
        if self.kind is Kind.AVG:  # a mean merges as its sum and count
            aggregates = (AGGREGATES[Kind.SUM](value), F.count(value))
        else:
            aggregates = (AGGREGATES[self.kind](value),)
        return [a.alias(name) for a, name in zip(aggregates, self.parts, strict=True)]

    def merged(self, types: dict[str, T.DataType]) -> list[Column]:
        """Partials of a group from the kept (``<part>``) and the added (``<part>_added``)."""
        columns = []
        for partial in PARTIALS[self.kind]:
            part = self.part(partial)
            kept, added = F.col(part), F.col(part + ADDED)
            if partial == "v":
                both = F.least(kept, added) if self.kind is Kind.MIN else F.greatest(kept, added)
            elif partial == "d":  # the pairs no kept row held
                fresh = F.coalesce(F.col(self.part(NEW_PAIRS)), F.lit(0))
                both = F.coalesce(kept, F.lit(0)) + fresh
            else:  # sums and counts add up; one side missing leaves the other's
                total = (kept + added).cast(types[part])
                both = F.when(kept.isNull(), added).when(added.isNull(), kept).otherwise(total)
            columns.append(both.alias(part))
        return columns

    def finished(self, types: dict[str, T.DataType]) -> Column:
        if self.kind is Kind.AVG:
            total, count = self.parts
            value = mean(F.col(total), F.col(count), types[total])
        else:
            value = F.col(self.parts[0])
        return self.finish(value).alias(self.name)


Rows = Callable[[DataFrame], DataFrame]
"""What a grouping's key needs added to the rentals (the vehicles' attributes), or nothing."""


def _rows(rentals: DataFrame) -> DataFrame:
    return rentals


@dataclass(frozen=True)
class Grouping:
    """Rentals grouped by ``key``, with the ``measures`` (aggregates) of each group.

    ``name`` names the grouping's partials where the KPI job keeps them between runs.
    """

    name: str
    key: Formula
    measures: tuple[Measure, ...]

    @property
    def signature(self) -> list[str]:
        """What the partials hold: a state kept under another signature is not merged into."""
        return [self.key.name, *(f"{m.name}:{m.kind}({m.read})" for m in self.measures)]

    def partials(self, rows: DataFrame) -> DataFrame:
        """Per group, the partial columns of every measure."""
        return rows.groupBy(self.key.column()).agg(
            *(c for m in self.measures for c in m.partials())
        )

    def finished(self, partials: DataFrame) -> DataFrame:
        types = {f.name: f.dataType for f in partials.schema.fields}
        return partials.select(self.key.name, *(m.finished(types) for m in self.measures))

    def appended(self, kept: DataFrame, added: DataFrame, before: DataFrame) -> DataFrame:
        """The partials ``kept`` (of the rows before) merged with the added rows' partials.

        ``before`` holds at least every earlier row sharing a distinct measure's value with
        an added row: a (group, value) pair of the added rows counts once more only when no
        such row held it.
        """
        key = self.key.name
        new = self.partials(added)
        new = new.select(key, *(F.col(c).alias(c + ADDED) for c in new.columns if c != key))
        for measure in (m for m in self.measures if m.kind is Kind.DISTINCT):
            pair = [self.key.column(), F.col(measure.read.rpartition(".")[2])]
            added_pairs = added.select(*pair).distinct()
            held = before.select(*pair).distinct()
            fresh = added_pairs.join(held, added_pairs.columns, "left_anti").groupBy(key).count()
            new = new.join(fresh.withColumnRenamed("count", measure.part(NEW_PAIRS)), key, "left")
        types = {f.name: f.dataType for f in kept.schema.fields}
        return kept.join(new, kept[key].eqNullSafe(new[key]), "full_outer").select(
            F.coalesce(kept[key], new[key]).alias(key),
            *(c for m in self.measures for c in m.merged(types)),
        )


def distinct_values(groupings: tuple[Grouping, ...]) -> list[str]:
    """The rentals columns distinct measures count (what ``Grouping.appended``'s ``before``
    must cover)."""
    reads = (m.read for g in groupings for m in g.measures if m.kind is Kind.DISTINCT)
    return sorted({read.rpartition(".")[2] for read in reads})


def distinct_columns(groupings: tuple[Grouping, ...]) -> list[str]:
    """The rentals columns ``Grouping.appended``'s ``before`` is read for: the rental key,
    and what the keys and distinct measures of the groupings with a distinct measure read (a
    key of the vehicles' reads the vehicle_id it is joined on, ``with_vehicle_attributes``)."""
    counting = [g for g in groupings if any(m.kind is Kind.DISTINCT for m in g.measures)]
    reads = [r for g in counting for r in g.key.reads]
    reads += [m.read for g in counting for m in g.measures if m.kind is Kind.DISTINCT]
    columns = {read.partition(".")[2] for read in reads if read.startswith(f"{RENTALS.name}.")}
    if any(read.startswith(f"{VEHICLES.name}.") for read in reads):
        columns.add(VEHICLES.key)
    return sorted({RENTALS.key, *columns})


class Aggregation:
    """How ``KpiInputs.grouped`` gets a grouping's partials: from every rental (this class),
    or merged with those kept from an earlier run (``Appending``)."""

    def partials(self, grouping: Grouping, rows: Rows, rentals: DataFrame) -> DataFrame:
        return grouping.partials(rows(rentals))


@dataclass(frozen=True)
class Appending(Aggregation):
    """Partials kept from an earlier run, merged with those of the rentals added since."""

    kept: Callable[[str], DataFrame]
    """A grouping's kept partials, by its name."""
    added: DataFrame
    before: DataFrame
    """The earlier rentals sharing a distinct-counted value with an added one (their
    ``distinct_columns`` only)."""

    def partials(self, grouping: Grouping, rows: Rows, rentals: DataFrame) -> DataFrame:
        return grouping.appended(self.kept(grouping.name), rows(self.added), rows(self.before))


@dataclass(frozen=True)
class KpiInputs:
    """The processed tables the KPIs read, and how groupings are aggregated over them.

    ``stage`` sees each grouping's partials before they are finished (the KPI job writes them
    aside and reads them back, so they are computed once and kept for the next run).
    """

    rentals: DataFrame
    vehicles: DataFrame
    users: DataFrame
    locations: DataFrame
    aggregation: Aggregation = field(default_factory=Aggregation)
    stage: Callable[[str, DataFrame], DataFrame] = lambda _name, partials: partials

    def grouped(self, grouping: Grouping, rows: Rows = _rows) -> DataFrame:
        """``grouping`` over the rentals (``rows`` adds what its key needs), finished."""
        partials = self.aggregation.partials(grouping, rows, self.rentals)
        return grouping.finished(self.stage(grouping.name, partials))


@dataclass(frozen=True)
class KpiFormulas:
    """Every formula of one KPI table, as its function arranges them."""

    groupings: tuple[Grouping, ...]
    derived: tuple[Formula, ...] = ()
    """Computed from the groupings' columns, each from those before it."""
    joined: tuple[Formula, ...] = ()
    """Attributes of a processed dimension table, joined on the table's key."""

    @property
    def formulas(self) -> tuple[Formula | Measure, ...]:
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


def rentals_counted(name: str) -> Measure:
    """The number of rentals: their key is what is counted (Spark counts the rows)."""
    return Measure(name, RENTAL_ID, Kind.COUNT)


def of_amount(name: str, kind: Kind, finish: Callable[[Column], Column] = _same) -> Measure:
    return Measure(name, AMOUNT, kind, finish)


def of_duration(name: str, kind: Kind) -> Measure:
    return Measure(name, DURATION, kind, hours)


def distinct(name: str, read: str) -> Measure:
    return Measure(name, read, Kind.DISTINCT)


def attribute(table: SourceTable, column: str) -> Formula:
    """A processed column under its own name."""
    return Formula(column, (processed(table, column),))


VEHICLE_ATTRIBUTES = ("vehicle_id", "vehicle_type", "brand")
"""What of the vehicles the groupings read (users and locations are only joined on finished
tables): the partials hold while these are unchanged."""


def with_vehicle_attributes(rentals: DataFrame, vehicles: DataFrame) -> DataFrame:
    """Rentals with vehicle_type and brand; 'unknown' when the vehicle (or the value) is missing."""
    attributes = vehicles.select(*VEHICLE_ATTRIBUTES)
    return rentals.join(attributes, "vehicle_id", "left").withColumns(
        {
            "vehicle_type": F.coalesce(F.col("vehicle_type"), F.lit(UNKNOWN)),
            "brand": F.coalesce(F.col("brand"), F.lit(UNKNOWN)),
        }
    )


LOCATION_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            "pickups",
            Formula("location_id", (processed(RENTALS, "pickup_location"),)),
            (
                rentals_counted("total_pickups"),
                of_amount("total_revenue", Kind.SUM, money),
                of_amount("avg_transaction_amount", Kind.AVG, money),
                of_amount("max_transaction_amount", Kind.MAX),
                of_amount("min_transaction_amount", Kind.MIN),
                distinct("unique_vehicles", RENTED_VEHICLE),
                distinct("unique_users", RENTING_USER),
            ),
        ),
        Grouping(
            "dropoffs",
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
    pickups, dropoffs = (inputs.grouped(grouping) for grouping in LOCATION_FORMULAS.groupings)
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
            "vehicle_types",
            attribute(VEHICLES, "vehicle_type"),
            (
                rentals_counted("total_rentals"),
                of_amount("total_revenue", Kind.SUM, money),
                of_amount("avg_rental_amount", Kind.AVG, money),
                of_duration("total_rental_hours", Kind.SUM),
                of_duration("avg_rental_duration_hours", Kind.AVG),
                of_duration("min_rental_duration_hours", Kind.MIN),
                of_duration("max_rental_duration_hours", Kind.MAX),
                distinct("unique_vehicles", RENTED_VEHICLE),
            ),
        ),
    ),
)


def vehicle_type_metrics(inputs: KpiInputs) -> DataFrame:
    (by_type,) = VEHICLE_TYPE_FORMULAS.groupings
    by_type = inputs.grouped(by_type, lambda rows: with_vehicle_attributes(rows, inputs.vehicles))
    return conform(by_type.orderBy("vehicle_type"), VEHICLE_TYPE_METRICS)


BRAND_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            "brands",
            attribute(VEHICLES, "brand"),
            (
                rentals_counted("total_rentals"),
                of_amount("total_revenue", Kind.SUM, money),
                of_amount("avg_rental_amount", Kind.AVG, money),
                distinct("unique_vehicles", RENTED_VEHICLE),
            ),
        ),
    ),
)


def brand_metrics(inputs: KpiInputs) -> DataFrame:
    (by_brand,) = BRAND_FORMULAS.groupings
    by_brand = inputs.grouped(by_brand, lambda rows: with_vehicle_attributes(rows, inputs.vehicles))
    return conform(by_brand.orderBy("brand"), BRAND_METRICS)


DAILY_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            "days",
            attribute(RENTALS, "rental_date"),
            (
                rentals_counted("total_transactions"),
                of_amount("total_revenue", Kind.SUM, money),
                of_amount("avg_transaction_amount", Kind.AVG, money),
                of_amount("max_transaction_amount", Kind.MAX),
                of_amount("min_transaction_amount", Kind.MIN),
                distinct("unique_users", RENTING_USER),
                distinct("unique_vehicles", RENTED_VEHICLE),
                of_duration("total_rental_hours", Kind.SUM),
            ),
        ),
    ),
)


def daily_metrics(inputs: KpiInputs) -> DataFrame:
    (by_day,) = DAILY_FORMULAS.groupings
    return conform(inputs.grouped(by_day).orderBy("rental_date"), DAILY_METRICS)


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
            "users",
            attribute(RENTALS, "user_id"),
            (
                rentals_counted("total_rentals"),
                of_amount("total_spent", Kind.SUM),
                of_amount("avg_rental_amount", Kind.AVG, money),
                of_amount("max_rental_amount", Kind.MAX),
                of_amount("min_rental_amount", Kind.MIN),
                of_duration("total_rental_hours", Kind.SUM),
                of_duration("avg_rental_duration_hours", Kind.AVG),
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
    per_user = inputs.grouped(by_user)
    for formula in USER_FORMULAS.derived:
        per_user = per_user.withColumn(formula.name, formula.column())
    users = inputs.users.select("user_id", *(f.column() for f in USER_FORMULAS.joined))
    result = per_user.join(users, "user_id", "left")
    return conform(result.orderBy("user_id"), USER_METRICS)


HOURLY_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            "hours",
            Formula("hour_of_day", (processed(RENTALS, "rental_hour"),)),
            (
                rentals_counted("total_transactions"),
                of_amount("total_revenue", Kind.SUM, money),
                of_amount("avg_transaction_amount", Kind.AVG, money),
            ),
        ),
    ),
)


def hourly_metrics(inputs: KpiInputs) -> DataFrame:
    (by_hour,) = HOURLY_FORMULAS.groupings
    return conform(inputs.grouped(by_hour).orderBy("hour_of_day"), HOURLY_METRICS)


def iso_day_number(date: Column) -> Column:
    """1 = Monday ... 7 = Sunday (Spark's dayofweek is 1 = Sunday ... 7 = Saturday)."""
    return (F.dayofweek(date) + 5) % 7 + 1


def weekday_name(day_number: Column) -> Column:
    return F.element_at(F.array(*[F.lit(day) for day in WEEKDAYS]), day_number)


DAY_OF_WEEK_FORMULAS = KpiFormulas(
    groupings=(
        Grouping(
            "weekdays",
            Formula("day_number", (processed(RENTALS, "rental_date"),), iso_day_number),
            (
                rentals_counted("total_transactions"),
                of_amount("total_revenue", Kind.SUM, money),
                of_amount("avg_transaction_amount", Kind.AVG, money),
            ),
        ),
    ),
    derived=(Formula("day_of_week", ("day_number",), weekday_name),),
)


def day_of_week_metrics(inputs: KpiInputs) -> DataFrame:
    (by_day,) = DAY_OF_WEEK_FORMULAS.groupings
    result = inputs.grouped(by_day)
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
GROUPINGS: dict[str, Grouping] = {
    g.name: g for formulas in KPI_FORMULAS.values() for g in formulas.groupings
}
"""Every grouping by name: the partials the KPI job keeps, one folder each."""


def column_lineage(table: KpiTable) -> dict[str, tuple[tuple[str, str], ...]]:
    """Each column of a KPI table -> the processed (table, column)s it is computed from.

    Read from the table's formulas: a column that reads another column of the same table is
    computed from what that one is computed from, and a column several formulas compute (a
    key built from several groupings and joins) from all of theirs.
    """
    formulas: dict[str, list[Formula | Measure]] = {}
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
