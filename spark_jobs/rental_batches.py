"""Incremental rentals: which batches a run must rewrite, the key index, and in-place publishing.

The rentals are many landed batches (the full file and daily exports, DESIGN 3.5). A run names
the batches it processes; the others are already in ``processed/rentals``. Which copy of a
repeated ``rental_id`` is kept depends on every batch holding it, so the lake keeps a **key
index** (``<root>/_state/rental_keys/batch=<key>/``): each batch's valid rows' key and
position, whether it was kept, and its ``rental_date``. With it:

- a batch cleaned alone sees the earlier positions of its keys in other batches
  (``earlier_positions``), so it decides duplicates exactly as a run over every batch would;
- a batch processed before a later one it shares keys with (days out of order, a corrected
  re-landing) changes which copy the later one keeps: ``affected_batches`` adds every batch
  whose decision changes, and the run rewrites it too;
- only the ``rental_date=`` folders holding rows of the rewritten batches are rewritten
  (``publish_dates``), each swapped into place whole.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.cleaning import (
    BATCH_RANK,
    FIRST_SEEN,
    REASON,
    ROW_ORDER,
    SOURCE_FILE,
    Cleaned,
    Validation,
    annotate,
    position,
)
from spark_jobs.contract import (
    BATCH_FOLDER,
    RENTALS,
    RejectReason,
    RentalBatch,
    Zone,
    batch_folder,
    batch_of_key,
    batch_order,
    table_path,
)
from spark_jobs.lake_files import LakeFiles
from spark_jobs.raw_format import MANIFEST

KEY_INDEX = "rental_keys"
"""Folder of the key index under ``Zone.STATE``."""
BATCH = "batch"
KEPT = "kept"
DATE = "rental_date"
INDEX_SCHEMA = T.StructType(
    [
        T.StructField(RENTALS.key, T.StringType()),
        T.StructField(BATCH_RANK, T.LongType()),
        T.StructField(SOURCE_FILE, T.StringType()),
        T.StructField(ROW_ORDER, T.LongType()),
        T.StructField(KEPT, T.BooleanType()),
        T.StructField(DATE, T.DateType()),
        T.StructField(BATCH, T.StringType()),
    ]
)


def index_path(args: argparse.Namespace) -> str:
    return f"{args.lake_root.rstrip('/')}/{Zone.STATE.value}/{KEY_INDEX}"


def folder_key(path: str) -> str:
    """The batch key of a ``batch=<key>`` folder (its path or its name)."""
    return path.rsplit("/", 1)[-1][len(BATCH_FOLDER) :]


def landed_batches(spark: SparkSession, folder: str) -> dict[RentalBatch, str]:
    """The rentals batches landed completely (with a manifest) under ``folder``, in batch
    order; a landing still copying is a hidden sibling folder, which the pattern skips."""
    manifests = LakeFiles(spark, folder).glob(f"{folder.rstrip('/')}/{BATCH_FOLDER}*/{MANIFEST}")
    found = {}
    for manifest, _ in manifests:  # one call: the folders are looked up in the JVM
        path = manifest.rsplit("/", 1)[0]
        found[batch_of_key(folder_key(path))] = path
    if not found:
        raise FileNotFoundError(
            f"no rentals export landed under {folder} ({BATCH_FOLDER}<key>/ with {MANIFEST}): "
            "materialize raw/rentals first"
        )
    return {batch: found[batch] for batch in batch_order(found)}


def requested_batches(
    value: str | None, landed: dict[RentalBatch, str], folder: str
) -> list[RentalBatch]:
    """The batches named by ``--batches`` (all landed ones when absent), each checked landed."""
    if value is None:
        return list(landed)
    requested = batch_order(batch_of_key(k.strip()) for k in value.split(",") if k.strip())
    missing = [b.key for b in requested if b not in landed]
    if missing:
        raise SystemExit(
            f"--batches: {missing} not landed under {folder}; landed: {[b.key for b in landed]}"
        )
    return requested


PUBLISHING = "_publishing"
"""Marker in the index folder while a partial run swaps folders in: if a run finds it, the
previous one died mid-publish, and the table is rebuilt whole rather than trusted."""


def rebuild_reason(spark: SparkSession, args: argparse.Namespace) -> str | None:
    """Why a partial run cannot trust the lake (None: it can): a publish was interrupted, or
    ``processed/rentals`` exists without its key index (a lake from an older version, or an
    index deleted)."""
    files = LakeFiles(spark, args.lake_root)
    index = index_path(args)
    if files.exists(f"{index}/{PUBLISHING}"):
        return f"an earlier run stopped while publishing ({index}/{PUBLISHING})"
    table = table_path(args.lake_root, args.processed_zone, RENTALS.name)
    if files.exists(table) and not files.exists(index):
        return f"{table} has no key index at {index}"
    return None


def start_publishing(
    spark: SparkSession, args: argparse.Namespace, batches: Sequence[RentalBatch]
) -> None:
    LakeFiles(spark, args.lake_root).write_text(
        f"{index_path(args)}/{PUBLISHING}", ",".join(b.key for b in batches)
    )


def read_index(spark: SparkSession, path: str) -> DataFrame:
    """The key index (empty before the first run)."""
    if not LakeFiles(spark, path).exists(path):
        return spark.createDataFrame([], INDEX_SCHEMA)
    return spark.read.schema(INDEX_SCHEMA).option("basePath", path).parquet(path)


def _first_positions(rows: DataFrame) -> DataFrame:
    return rows.groupBy(RENTALS.key).agg(F.min(position()).alias(FIRST_SEEN))


def valid_positions(raw: DataFrame) -> DataFrame:
    """Key and position of every row that passes all checks but the duplicate one."""
    checked = annotate(RENTALS, raw)
    return checked.where(F.col(REASON).isNull()).select(
        RENTALS.key, BATCH_RANK, SOURCE_FILE, ROW_ORDER
    )


def indexed_batches(spark: SparkSession, args: argparse.Namespace) -> list[RentalBatch]:
    """The batches the key index holds (its ``batch=<key>/`` folders): what is published."""
    path = index_path(args)
    files = LakeFiles(spark, path)
    found = files.glob(f"{path}/{BATCH_FOLDER}*")
    return batch_order(batch_of_key(folder_key(path)) for path, _ in found)


def appended_last(requested: Sequence[RentalBatch], indexed: Sequence[RentalBatch]) -> bool:
    """Every requested batch comes after every other batch published (the nightly case: the
    newest export). Then no other batch's kept copies can change: a key's first position is
    among the earlier batches whenever they hold it, whatever the requested ones hold."""
    others = [b.rank for b in indexed if b not in requested]
    return not others or min(b.rank for b in requested) > max(others)


def affected_batches(
    requested: Sequence[RentalBatch], new_positions: DataFrame, index: DataFrame
) -> list[RentalBatch]:
    """Batches outside ``requested`` whose kept copies change when ``requested`` is replaced.

    Only keys of the requested batches (new or old rows) can change hands; for those, the first
    position is found with the requested batches' old rows and with their new ones, and a batch
    is affected when one of its rows was first and is no longer, or the other way round.
    """
    names = [b.key for b in requested]
    old = index.where(F.col(BATCH).isin(names))
    keys = old.select(RENTALS.key).union(new_positions.select(RENTALS.key)).distinct()
    others = index.where(~F.col(BATCH).isin(names)).join(keys, RENTALS.key, "left_semi").cache()
    columns = [RENTALS.key, BATCH_RANK, SOURCE_FILE, ROW_ORDER]
    before = _first_positions(others.select(columns).union(old.select(columns)))
    after = _first_positions(others.select(columns).union(new_positions.select(columns)))
    here = position()
    changed = (
        others.join(before.withColumnRenamed(FIRST_SEEN, "_before"), RENTALS.key)
        .join(after.withColumnRenamed(FIRST_SEEN, "_after"), RENTALS.key)
        .where((here == F.col("_before")) != (here == F.col("_after")))
        .select(BATCH)
        .distinct()
        .collect()
    )
    others.unpersist()
    return batch_order(batch_of_key(row[BATCH]) for row in changed)


def earlier_positions(
    index: DataFrame, batches: Sequence[RentalBatch], raw: DataFrame
) -> DataFrame:
    """First position of each key of ``raw`` among the batches not being rewritten."""
    key = Validation.of(RENTALS).typed[RENTALS.key]
    keys = raw.select(key.alias(RENTALS.key)).where(F.col(RENTALS.key).isNotNull()).distinct()
    outside = index.where(~F.col(BATCH).isin([b.key for b in batches]))
    return _first_positions(outside.join(keys, RENTALS.key, "left_semi"))


def batch_key(batches: Iterable[RentalBatch]) -> Column:
    """The batch key of a row, from its ``BATCH_RANK``."""
    mapping = F.create_map(*[F.lit(x) for b in batches for x in (b.rank, b.key)])
    return mapping[F.col(BATCH_RANK)]


def index_rows(cleaned: Cleaned, batches: Sequence[RentalBatch]) -> DataFrame:
    """The index rows of the cleaned batches: their valid rows, kept or duplicate."""
    reason = F.col(REASON)
    valid = reason.isNull() | (reason == RejectReason.DUPLICATE_KEY.value)
    return cleaned.annotated.where(valid).select(
        F.col(RENTALS.key),
        F.col(BATCH_RANK),
        F.col(SOURCE_FILE),
        F.col(ROW_ORDER),
        reason.isNull().alias(KEPT),
        F.when(reason.isNull(), F.to_date("rental_start_time")).alias(DATE),
        batch_key(batches).alias(BATCH),
    )


@dataclass(frozen=True)
class Dates:
    """The ``rental_date`` folders a partial rewrite touches, and the keys leaving them."""

    touched: list[str]
    leaving: DataFrame
    """Keys kept before from the rewritten batches: their rows are replaced."""


def touched_dates(index: DataFrame, batches: Sequence[RentalBatch], staged: DataFrame) -> Dates:
    old = index.where(F.col(BATCH).isin([b.key for b in batches]) & F.col(KEPT))
    dates = old.select(DATE).union(staged.select(DATE)).distinct().collect()
    touched = sorted(row[DATE].isoformat() for row in dates if row[DATE] is not None)
    # The staged keys leave too: a folder already holding one (a run interrupted after
    # swapping it) must not keep it beside the staged copy.
    return Dates(touched, old.select(RENTALS.key).union(staged.select(RENTALS.key)))


def publish_dates(
    spark: SparkSession, table_folder: str, staged: str, merged: str, dates: Dates
) -> None:
    """Rewrite the touched ``rental_date=`` folders: their rows from other batches plus the
    staged rows, each folder written aside and swapped in whole (a folder left empty goes)."""
    files = LakeFiles(spark, table_folder)
    new_rows = spark.read.parquet(staged)
    schema = new_rows.schema
    parts = [new_rows]
    existing = [d for d in dates.touched if files.exists(f"{table_folder}/{DATE}={d}")]
    if existing:
        current = (
            spark.read.schema(schema)
            .option("basePath", table_folder)
            .parquet(*[f"{table_folder}/{DATE}={d}" for d in existing])
        )
        parts.append(current.join(dates.leaving, RENTALS.key, "left_anti"))
    union = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    union.repartition(DATE).write.mode("overwrite").partitionBy(DATE).parquet(merged)
    for day in dates.touched:
        folder = f"{DATE}={day}"
        if files.exists(f"{merged}/{folder}"):
            files.replace(f"{merged}/{folder}", f"{table_folder}/{folder}")
        else:
            files.delete(f"{table_folder}/{folder}")
    files.delete(merged)


def staged_index(args: argparse.Namespace) -> str:
    return f"{args.lake_root.rstrip('/')}/{Zone.STAGING.value}/{KEY_INDEX}"


def stage_index(args: argparse.Namespace, rows: DataFrame) -> None:
    """Write the rewritten batches' index rows aside, one folder per batch."""
    rows.repartition(BATCH).write.mode("overwrite").partitionBy(BATCH).parquet(staged_index(args))


def staged_kept_by_batch(spark: SparkSession, args: argparse.Namespace) -> dict[str, int]:
    """Rows kept per rewritten batch, from the staged index (a small columnar read)."""
    staged = spark.read.schema(INDEX_SCHEMA).option("basePath", staged_index(args))
    counts = staged.parquet(staged_index(args)).where(F.col(KEPT)).groupBy(BATCH).count()
    return {row[BATCH]: row["count"] for row in counts.collect()}


def kept_keys_outside(index: DataFrame, batches: Sequence[RentalBatch]) -> DataFrame:
    """The kept keys of the batches not rewritten: the rest of ``processed/rentals``."""
    outside = index.where(~F.col(BATCH).isin([b.key for b in batches]) & F.col(KEPT))
    return outside.select(RENTALS.key)


def publish_index(
    spark: SparkSession, args: argparse.Namespace, batches: Sequence[RentalBatch], whole: bool
) -> None:
    """Move the staged index of ``batches`` into place (the whole index when ``whole``)."""
    path, staged = index_path(args), staged_index(args)
    files = LakeFiles(spark, path)
    if whole:
        files.replace(staged, path)
        return
    for batch in batches:
        source = f"{staged}/{batch_folder(batch)}"
        if files.exists(source):
            files.replace(source, f"{path}/{batch_folder(batch)}")
        else:
            files.delete(f"{path}/{batch_folder(batch)}")
    files.delete(staged)
    files.delete(f"{path}/{PUBLISHING}")  # the table and its index agree again


def publish_files(
    spark: SparkSession,
    staged: str,
    target: str,
    column: str,
    names: Sequence[str],
    whole: bool,
) -> str:
    """Move each ``<staged>/<column>=<name>/`` (one Parquet file) to ``<target>/<name>.parquet``.

    A name with nothing staged loses its file; with ``whole``, files of no name go too (the
    layout of an older version, an input no longer landed).
    """
    files = LakeFiles(spark, target)
    wanted = {f"{name}.parquet" for name in names}
    for name in names:
        parts = [path for path, _ in files.glob(f"{staged}/{column}={name}/*.parquet")]
        if len(parts) > 1:
            raise OSError(f"{len(parts)} files staged for {name} in {staged}; expected one")
        if parts:
            files.replace(parts[0], f"{target}/{name}.parquet")
        else:
            files.delete(f"{target}/{name}.parquet")
    if whole:
        for path, _ in files.glob(f"{target}/*"):
            name = path.rsplit("/", 1)[1]
            if name not in wanted and not name.startswith((".", "_")):
                files.delete(path)
    files.delete(staged)
    return target
