"""What the KPI job keeps between runs, so that a new day costs what the day holds.

Every KPI grouping's partials (``kpis.Grouping.partials``: counts, sums, minima, maxima and
distinct counts per group) are kept in ``<root>/_state/kpi_groups/<grouping>/``, with
``_covers.json``: which processed inputs they were computed from (the files of each batch of
the rentals' key index, and a digest of the vehicles' types and brands). A later run compares
that with the lake:

- only new batches since (a new day, late arrivals, a backfill of later days) and nothing else
  changed: the rows those batches kept are the rentals added, and each grouping merges their
  partials into the kept ones (``kpis.Appending``), without reading the rest of the history
  but for the few rows sharing a distinct-counted vehicle or user with an added rental;
- anything else (a batch rewritten or removed, a vehicle's type or brand changed, no state,
  fewer than all seven tables, an earlier run stopped while publishing): every rental is
  aggregated again. Users and locations are only joined onto finished tables, each run.

The partials are written with the tables and published after them, under a ``_publishing``
marker, so a run that stops between the two leaves a marker, and the next run starts over.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs import rental_batches
from spark_jobs.contract import BATCH_FOLDER, KPI_TABLES, RENTALS, Zone
from spark_jobs.kpis import (
    GROUPINGS,
    VEHICLE_ATTRIBUTES,
    Appending,
    distinct_columns,
    distinct_values,
)
from spark_jobs.lake_files import LakeFiles

STATE_FOLDER = "kpi_groups"
COVERS = "_covers.json"
PUBLISHING = "_publishing"


def state_path(args: argparse.Namespace) -> str:
    return f"{args.lake_root.rstrip('/')}/{Zone.STATE.value}/{STATE_FOLDER}"


def staged_path(args: argparse.Namespace) -> str:
    return f"{args.lake_root.rstrip('/')}/{Zone.STAGING.value}/{STATE_FOLDER}"


def _files(files: LakeFiles, pattern: str) -> dict[str, list[str]]:
    """Folder name -> its data files' names, for the folders ``pattern`` matches."""
    found: dict[str, list[str]] = {}
    for path, is_folder in files.glob(pattern):
        folder, _, name = path.rpartition("/")
        if not is_folder and not name.startswith((".", "_")):
            found.setdefault(folder.rsplit("/", 1)[1], []).append(name)
    return {folder: sorted(names) for folder, names in sorted(found.items())}


def vehicles_digest(vehicles: DataFrame) -> str:
    """Rows and an order-free digest of what the groupings read of the vehicles: a snapshot
    landed again unchanged keeps it, a changed type or brand does not."""
    row = vehicles.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.xxhash64(*VEHICLE_ATTRIBUTES).cast(T.DecimalType(38, 0))).alias("digest"),
    ).first()
    return f"{row['rows']}:{row['digest']}"


def covers(spark: SparkSession, args: argparse.Namespace, vehicles: DataFrame) -> dict:
    """The inputs of the partials as they are now: the files of each batch of the rentals' key
    index (a rewrite gives them new names), the vehicles' digest, the groupings' signatures."""
    index = rental_batches.index_path(args)
    batches = _files(LakeFiles(spark, args.lake_root), f"{index}/{BATCH_FOLDER}*/*")
    return {
        "batches": {rental_batches.folder_key(name): names for name, names in batches.items()},
        "vehicles": vehicles_digest(vehicles),
        "groupings": {name: grouping.signature for name, grouping in GROUPINGS.items()},
    }


@dataclass(frozen=True)
class Plan:
    """How this run aggregates: ``added`` batches merged into the kept partials, or (None)
    every rental again, for ``reason``."""

    now: dict
    added: list[str] | None
    reason: str
    every_table: bool = True
    """All seven tables computed: only then are the partials kept with them."""

    @property
    def summary(self) -> str:
        """How the tables were aggregated, for the log and the tables' metadata."""
        how = "merged into the kept partials" if self.added is not None else "every rental"
        return f"{how}: {self.reason}"


def plan(
    spark: SparkSession, args: argparse.Namespace, tables: list[str], vehicles: DataFrame
) -> Plan:
    now = covers(spark, args, vehicles)
    files = LakeFiles(spark, args.lake_root)
    state = state_path(args)

    def full(reason: str) -> Plan:
        return Plan(now, None, reason)

    if tables != [t.name for t in KPI_TABLES]:
        return Plan(now, None, "not every KPI table is computed", every_table=False)
    if files.exists(f"{state}/{PUBLISHING}"):
        return full(f"an earlier run stopped while publishing ({state}/{PUBLISHING})")
    if files.exists(f"{rental_batches.index_path(args)}/{rental_batches.PUBLISHING}"):
        return full("processed/rentals is being rewritten")
    if not files.exists(f"{state}/{COVERS}"):
        return full("no partials kept from an earlier run")
    before = json.loads(files.read_text(f"{state}/{COVERS}"))
    if before.get("groupings") != now["groupings"]:
        return full("the KPI formulas changed since the partials were kept")
    if before.get("vehicles") != now["vehicles"]:
        return full("the vehicles' types or brands changed since the partials were kept")
    changed = [b for b, names in before["batches"].items() if now["batches"].get(b) != names]
    if changed:
        return full(f"rentals batch(es) {changed} rewritten or removed since the last run")
    added = [b for b in now["batches"] if b not in before["batches"]]
    if not added:
        return full("no rentals batch added since the last run")
    return Plan(now, added, f"rentals batch(es) {added} added since the last run")


def appending(
    spark: SparkSession, args: argparse.Namespace, rentals: DataFrame, plan: Plan
) -> Appending:
    """The ``kpis.Appending`` of ``plan``'s added batches: their kept rows (read from their
    ``rental_date`` folders only) and the earlier rows sharing a counted value with them.

    Both are computed here, once, before the tables are (several at a time): each grouping
    reads them from memory instead of scanning the rentals again.
    """
    index = rental_batches.read_index(spark, rental_batches.index_path(args))
    keys = index.where(F.col(rental_batches.BATCH).isin(plan.added) & F.col(rental_batches.KEPT))
    keys = keys.select(RENTALS.key, rental_batches.DATE).cache()
    dates = [row[0] for row in keys.select(rental_batches.DATE).distinct().collect()]
    added = rentals.where(F.col(rental_batches.DATE).isin(dates))
    added = added.join(keys.select(RENTALS.key), RENTALS.key, "left_semi").cache()
    added.count()
    keys.unpersist()
    before = sharing(rentals, added).cache()
    before.count()
    state = state_path(args)

    def kept(name: str) -> DataFrame:
        return spark.read.parquet(f"{state}/{name}")

    return Appending(kept=kept, added=added, before=before)


def sharing(rentals: DataFrame, added: DataFrame) -> DataFrame:
    """The rentals, but for the ``added`` ones, that share a distinct-counted value (a
    vehicle, a user) with an added one, with the columns the distinct-counting groupings'
    keys and measures read (``kpis.distinct_columns``).

    One pass over the rentals: each counted column is looked up in the (broadcast) set of
    the added rows' values, at most one per vehicle or user, and a row is kept when any is
    found.
    """
    groupings = tuple(GROUPINGS.values())
    flags = {column: f"_shares_{column}" for column in distinct_values(groupings)}
    shared = rentals.select(*distinct_columns(groupings))
    for column, flag in flags.items():
        values = added.select(column).distinct().withColumn(flag, F.lit(True))
        shared = shared.join(F.broadcast(values), column, "left")
    found = reduce(Column.__or__, (F.col(flag).isNotNull() for flag in flags.values()))
    shared = shared.where(found).drop(*flags.values())
    return shared.join(added.select(RENTALS.key), RENTALS.key, "left_anti")


def stage(spark: SparkSession, args: argparse.Namespace) -> Callable[[str, DataFrame], DataFrame]:
    """``KpiInputs.stage`` for the job: write a grouping's partials aside, read them back."""

    def write(name: str, partials: DataFrame) -> DataFrame:
        path = f"{staged_path(args)}/{name}"
        partials.coalesce(1).write.mode("overwrite").parquet(path)
        return spark.read.parquet(path)

    return write


def start_publishing(spark: SparkSession, args: argparse.Namespace) -> None:
    LakeFiles(spark, args.lake_root).write_text(f"{state_path(args)}/{PUBLISHING}", "")


def publish(spark: SparkSession, args: argparse.Namespace, plan: Plan) -> None:
    """After the tables: the staged partials and what they cover into place, or, when the
    tables published do not match the partials (a subset), none kept at all."""
    files = LakeFiles(spark, args.lake_root)
    state, staged = state_path(args), staged_path(args)
    if plan.every_table:
        files.replace(staged, state)
        files.write_text(f"{state}/{COVERS}", json.dumps(plan.now, indent=1, sort_keys=True))
    else:
        files.delete(staged)
        files.delete(state)
