"""spark-submit job: raw CSVs -> processed Parquet tables and ``rejected_rows``.

    spark-submit spark_jobs/transform_job.py --lake-root LAKE_ROOT [--tables rentals,users]
        [--batches full,2024-03-01]

Reads the canonical copies landing wrote in ``<root>/raw/<raw_name>/`` for the inputs of
``--tables`` (snapshots: the newest ``landed=<UTC>/`` folder; rentals: the ``batch=<key>/``
folders of ``--batches`` and any batch whose kept copies they change, DESIGN 3.5), stages the
cleaned tables, checks them, and publishes ``<root>/processed/<table>/`` only when every blocking
check passed (``<root>/processed/rejected_rows/`` always). A re-run is idempotent; rows in,
kept and rejected by reason are reported per table.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import cli, quality, rental_batches
from spark_jobs.cleaning import (
    REASON,
    Cleaned,
    Validation,
    clean,
    raw_alias,
    read_manifest,
    read_raw,
    read_raw_batches,
)
from spark_jobs.contract import (
    DEFAULT_MAX_REJECT_RATE,
    LOCATIONS,
    PROCESSED_TABLES,
    REJECTED_ROWS_TABLE,
    RENTALS,
    SOURCE_TABLES,
    USERS,
    VEHICLES,
    Check,
    RejectReason,
    RentalBatch,
    SourceTable,
    Zone,
    batch_order,
)
from spark_jobs.lake_files import LakeFiles, newest_landing
from spark_jobs.markdown import markdown_table
from spark_jobs.publish import publish, staging_path
from spark_jobs.quality import CheckOutcome, Problem
from spark_jobs.raw_format import Manifest, combined
from spark_jobs.reporting import Reporter

PREVIEW_ROWS = 10
"""Rejected rows shown on ``processed/rejected_rows``: actual records with their reason."""
PARALLEL_TABLES = 4
"""The four inputs are cleaned at once: small tables' Spark jobs fill the cores left idle
between the big table's stages, and at small sizes job start-up latency overlaps."""


REJECTED_FILE = "_file"
"""Which file of ``processed/rejected_rows/`` a rejected row goes to: ``<table>.parquet`` for a
snapshot, ``rentals-<batch>.parquet`` per rentals batch, so a run replaces only its own."""


EMPTY_FILE = "none.parquet"
"""The one file of ``rejected_rows`` when no input has a rejected row."""


@dataclass(frozen=True)
class Input:
    """One input to clean; for the rentals, which batches and how they are published."""

    cleaned: Cleaned
    manifest: Manifest
    rejected_file: Column
    batches: list[RentalBatch] = field(default_factory=list)
    """Rentals batches rewritten by this run (requested, and those whose kept copies change)."""
    requested: list[RentalBatch] = field(default_factory=list)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    whole: bool = True
    """Every landed batch is rewritten: the table is replaced whole, not date by date."""
    index: DataFrame | None = None


def clean_inputs(
    spark: SparkSession, args: argparse.Namespace, tables: list[SourceTable], reporter: Reporter
) -> list[Input]:
    """Read and clean the inputs (lazily; nothing is computed yet, but the rentals' plan)."""
    inputs = []
    for table in tables:
        folder = cli.lake_path(args, "raw_zone", table.raw_name)
        if table is RENTALS:
            inputs.append(rentals_input(spark, args, folder, reporter))
        else:
            folder = newest_landing(spark, folder)
            manifest = read_manifest(spark, folder)
            cleaned = clean(table, read_raw(spark, table, folder, manifest))
            inputs.append(Input(cleaned, manifest, F.lit(table.name)))
    return inputs


def rentals_input(
    spark: SparkSession, args: argparse.Namespace, folder: str, reporter: Reporter
) -> Input:
    """The rentals batches of ``--batches`` (all landed ones by default), and any batch whose
    kept copies they change, cleaned against the key index of the others."""
    landed = rental_batches.landed_batches(spark, folder)
    requested = rental_batches.requested_batches(args.batches, landed, folder)
    index = rental_batches.read_index(spark, rental_batches.index_path(args))
    rebuild = rental_batches.rebuild_reason(spark, args)
    batches, earlier = list(requested), None
    if rebuild and set(requested) != set(landed):
        reporter.log(f"rentals: every landed batch rewritten: {rebuild}")
        batches = list(landed)
    manifests = {b.key: read_manifest(spark, landed[b]) for b in batches}
    appended = rental_batches.appended_last(batches, rental_batches.indexed_batches(spark, args))
    while set(batches) != set(landed) and not appended:
        # Until no more batch changes hands: a batch pulled in is cleaned from its current
        # export, which may in turn move keys kept in a third batch.
        pairs = [(b, manifests[b.key]) for b in batches]
        new = rental_batches.valid_positions(read_raw_batches(spark, RENTALS, folder, pairs))
        extra = [b for b in rental_batches.affected_batches(batches, new, index) if b in landed]
        if not extra:
            break
        reporter.log(
            f"rentals: batch(es) {[b.key for b in extra]} share rental_ids with "
            f"{[b.key for b in batches]} and keep other copies now: rewritten too"
        )
        batches = batch_order([*batches, *extra])
        manifests |= {
            b.key: read_manifest(spark, landed[b]) for b in batches if b.key not in manifests
        }
    whole = set(batches) == set(landed)
    pairs = [(b, manifests[b.key]) for b in batches]
    raw = read_raw_batches(spark, RENTALS, folder, pairs)
    if not whole:
        earlier = rental_batches.earlier_positions(index, batches, raw)
    rejected_file = F.concat(F.lit(f"{RENTALS.name}-"), rental_batches.batch_key(batches))
    return Input(
        clean(RENTALS, raw, earlier),
        combined([m for _, m in pairs]),
        rejected_file,
        batches,
        requested,
        manifests,
        whole,
        index,
    )


@dataclass(frozen=True)
class Written:
    """One input after its kept rows are staged; ``rejected`` is cached (it is small)."""

    input: Input
    staged: str
    kept: int
    rejected: DataFrame
    rejected_by_reason: dict[str, int]
    rejected_by_file: dict[str, int]
    problems: list[Problem]
    """(what failed, rows, example values) of the rejected rows, most frequent first."""

    @property
    def table(self) -> SourceTable:
        return self.input.cleaned.table

    @property
    def manifest(self) -> Manifest:
        return self.input.manifest

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


def write_table(spark: SparkSession, args: argparse.Namespace, item: Input, staged: str) -> Written:
    """Stage the kept rows, then collect the rejected ones (and, for rentals, stage the key
    index): three passes over the input, four for the rentals.

    Finding repeated keys is one grouped pass (cached, it is small); writing the kept rows
    and selecting the failing ones are one pass each. Nothing wide is cached, so memory stays
    flat as inputs grow. The failing rows are cached before their detail and JSON record are
    built, so those wide expressions run on them alone, in a stage of their own.
    """
    cleaned = item.cleaned
    repeated = cleaned.repeated_keys.cache()
    partition_by = cleaned.table.partition_by
    kept_rows = cleaned.kept
    if partition_by:  # one file per folder, not one per task and folder (small files)
        kept_rows = kept_rows.repartition(*partition_by)
    kept_rows.write.mode("overwrite").partitionBy(*partition_by).parquet(staged)
    kept = spark.read.schema(cleaned.kept.schema).parquet(staged).count()
    if partition_by and not kept:
        # No rows, no partition folder, no file: readers would find no schema. One empty file
        # holding every column keeps an empty table readable (0 rows, not an error).
        spark.createDataFrame([], cleaned.kept.schema).write.mode("overwrite").parquet(staged)
    failing = cleaned.failing().cache()
    rejected = failing.rejected_with(item.rejected_file.alias(REJECTED_FILE)).cache()
    by_file_reason = rejected.groupBy(REJECTED_FILE, "reason").count().collect()
    counts: dict[str, int] = {}
    files: dict[str, int] = {}
    for row in by_file_reason:
        counts[row["reason"]] = counts.get(row["reason"], 0) + row["count"]
        files[row[REJECTED_FILE]] = files.get(row[REJECTED_FILE], 0) + row["count"]
    problems = reject_problems(failing, counts) if counts else []
    if item.batches:  # while the repeated keys are cached: the index reuses them
        rental_batches.stage_index(args, rental_batches.index_rows(cleaned, item.batches))
    failing.annotated.unpersist()
    repeated.unpersist()
    return Written(item, staged, kept, rejected, dict(sorted(counts.items())), files, problems)


COLUMN_REASONS = (
    RejectReason.MISSING_REQUIRED_VALUE,
    RejectReason.UNPARSEABLE_VALUE,
    RejectReason.VALUE_OUT_OF_RANGE,
)


def reject_problems(failing: Cleaned, counts: dict[str, int]) -> list[Problem]:
    """What made rows fail, per column (with example values) and per other reason.

    One aggregate over the (cached) failing rows: per column check, the rows it failed and
    the smallest and largest offending raw values as examples. A row failing on two columns
    counts under both.
    """
    checks = Validation.of(failing.table, raw_alias)
    rejected_for_a_value = F.col(REASON).isin([reason.value for reason in COLUMN_REASONS])
    column_checks = [
        (rejected_for_a_value & condition, message, raw_alias(message.split(" ", 1)[0]))
        for condition, message in (*checks.missing, *checks.unparseable, *checks.out_of_range)
    ]
    row = failing.annotated.agg(
        *[
            aggregate(F.when(condition, value)).alias(f"_{i}_{name}")
            for i, (condition, _, column) in enumerate(column_checks)
            for name, aggregate, value in (
                ("n", F.count, F.lit(1)),
                ("low", F.min, F.col(column)),
                ("high", F.max, F.col(column)),
            )
        ]
    ).first()
    problems = []
    for i, (_, message, _) in enumerate(column_checks):
        if row[f"_{i}_n"]:
            examples = dict.fromkeys((row[f"_{i}_low"], row[f"_{i}_high"]))
            problems.append((message, int(row[f"_{i}_n"]), ", ".join(map(repr, examples))))
    for reason, rows in counts.items():
        if reason not in COLUMN_REASONS:
            problems.append((reason, rows, ""))
    return sorted(problems, key=lambda item: -item[1])


def reject_rate(item: Written, limit: float) -> CheckOutcome:
    return quality.reject_rate_verdict(
        item.manifest.records, item.rejected_by_reason, limit, item.problems
    )


def conservation(item: Written, kept_by_batch: dict[str, int]) -> CheckOutcome:
    """Rows in = kept + rejected, for the input and (rentals) for each batch rewritten."""
    outcome = quality.conservation_verdict(
        item.manifest.records, item.kept, item.rows_rejected, item.manifest.source
    )
    uneven = {}
    for key, manifest in item.input.manifests.items():  # one per batch rewritten
        kept = kept_by_batch.get(key, 0)
        rejected = item.rejected_by_file.get(f"{RENTALS.name}-{key}", 0)
        if manifest.records != kept + rejected:
            uneven[key] = f"{manifest.records} in, {kept} kept, {rejected} rejected"
    if not uneven:
        return outcome
    return CheckOutcome(False, {**outcome.metadata, "batches_not_conserved": uneven})


def snapshot_frames(
    spark: SparkSession, args: argparse.Namespace, staged: dict[str, DataFrame]
) -> dict[str, DataFrame] | None:
    """The three snapshots as this run staged them, else as published (None: not all exist)."""
    frames = {}
    for table in (VEHICLES, USERS, LOCATIONS):
        if table.name in staged:
            frames[table.name] = staged[table.name]
            continue
        path = cli.lake_path(args, "processed_zone", table.name)
        if not LakeFiles(spark, path).exists(path):
            return None
        frames[table.name] = spark.read.parquet(path)
    return frames


def table_checks(
    spark: SparkSession,
    args: argparse.Namespace,
    written: list[Written],
    limit: float,
    others_kept: DataFrame | None,
    kept_by_batch: dict[str, int],
) -> dict[str, dict[Check, CheckOutcome]]:
    """Every processed check of the inputs cleaned, on what was staged (what would be
    published); the rentals' keys also against the kept keys of the batches not rewritten
    (``new_keys_unique``: those were unique when published)."""
    staged = {w.table.name: spark.read.parquet(w.staged) for w in written}
    outcomes: dict[str, dict[Check, CheckOutcome]] = {}
    for item in written:
        keys = staged[item.table.name].select(item.table.key)
        if item.table is RENTALS and others_kept is not None:
            unique = quality.new_keys_unique(keys, others_kept, RENTALS.key)
        else:
            unique = quality.duplicate_keys(keys, [item.table.key])
        outcomes[item.table.name] = {
            Check.ROWS_CONSERVED: conservation(item, kept_by_batch),
            Check.PRIMARY_KEY_UNIQUE: unique,
            Check.REJECT_RATE: reject_rate(item, limit),
        }
    if RENTALS.name in staged:
        snapshots = snapshot_frames(spark, args, staged)
        if snapshots is None:
            outcome = CheckOutcome(
                False,
                {"reason": "vehicles, users and locations are not all processed yet"},
                severity="WARN",
            )
        else:
            outcome = quality.unknown_references(
                staged[RENTALS.name],
                snapshots[VEHICLES.name],
                snapshots[USERS.name],
                snapshots[LOCATIONS.name],
            )
        outcomes[RENTALS.name][Check.REFERENCES_KNOWN] = outcome
    return outcomes


def inputs_of(chosen: list[str]) -> list[SourceTable]:
    """The inputs a run cleans: those of the chosen tables (all four for rejected_rows alone,
    which holds every input's rejects)."""
    tables = [t for t in SOURCE_TABLES if t.name in chosen]
    return tables or list(SOURCE_TABLES)


def run(spark: SparkSession, args: argparse.Namespace, reporter: Reporter) -> None:
    """Stage, check, then publish the chosen tables together, or none of them.

    The rejected rows are published either way: when a check stops the tables, they are
    what explains it. ``--tables`` narrows what is cleaned and published (a subset of the
    assets materialized from the UI); ``--batches`` narrows the rentals to those batches
    (Dagster partitions), plus any batch whose kept copies they change.
    """
    chosen = set(published_tables(args.tables))
    inputs = clean_inputs(spark, args, inputs_of(sorted(chosen)), reporter)
    staged = [staging_path(args, "processed_zone", i.cleaned.table.name) for i in inputs]
    with ThreadPoolExecutor(max_workers=PARALLEL_TABLES) as pool:
        written = list(pool.map(lambda i, p: write_table(spark, args, i, p), inputs, staged))
    rentals = next((w for w in written if w.table is RENTALS), None)
    others_kept, kept_by_batch, dates = None, {}, None
    if rentals is not None:
        kept_by_batch = rental_batches.staged_kept_by_batch(spark, args)
        if not rentals.input.whole:
            others_kept = rental_batches.kept_keys_outside(
                rentals.input.index, rentals.input.batches
            )
            dates = rental_batches.touched_dates(
                rentals.input.index, rentals.input.batches, spark.read.parquet(rentals.staged)
            )
    outcomes = table_checks(spark, args, written, args.max_reject_rate, others_kept, kept_by_batch)
    failures = quality.blocking_failures(outcomes)
    for item in written:
        reporter.log(
            f"{item.table.name}: {item.manifest.records} records in, {item.kept} kept, "
            f"{item.rows_rejected} rejected ({item.manifest.source})"
        )
    if REJECTED_ROWS_TABLE in chosen:
        publish_rejected_rows(spark, args, reporter, written)
    else:
        for item in written:
            item.rejected.unpersist()
    if failures:
        reporter.log(
            "Not published (the processed tables stay as they were): blocking check(s) "
            f"failed: {', '.join(failures)}"
        )
    else:
        for item in (w for w in written if w.table.name in chosen):
            metadata = {
                "row_count": item.kept,
                "rows_in": item.manifest.records,
                "rows_rejected": item.rows_rejected,
                "rejected_by_reason": item.rejected_by_reason,
                "source": item.manifest.source,
                "encoding": item.manifest.encoding,
            }
            if item is rentals:
                rows = outcomes[RENTALS.name][Check.PRIMARY_KEY_UNIQUE].metadata["rows"]
                metadata |= publish_rentals(spark, args, item, dates, rows, reporter)
                path = cli.lake_path(args, "processed_zone", RENTALS.name)
            else:
                path = publish(spark, args, "processed_zone", item.table.name)
            reporter.report(f"{Zone.PROCESSED}/{item.table.name}", {**metadata, "path": path})
    for table, checks in outcomes.items():
        if table in chosen:  # Pipes accepts checks of the step's assets only
            for check, outcome in checks.items():
                reporter.check(f"{Zone.PROCESSED}/{table}", check, outcome)


def publish_rentals(
    spark: SparkSession,
    args: argparse.Namespace,
    item: Written,
    dates: rental_batches.Dates | None,
    table_rows: int,
    reporter: Reporter,
) -> dict[str, object]:
    """Publish the rewritten rentals batches and their index; what the table now holds
    (``table_rows``: the staged rows and the kept rows of the other batches, as the primary
    key check counted them).

    Every landed batch rewritten: the table and the index are replaced whole. Otherwise only
    the ``rental_date=`` folders holding rows of the rewritten batches are rewritten.
    """
    batches = item.input.batches
    if dates is None:
        publish(spark, args, "processed_zone", RENTALS.name)
        rental_batches.publish_index(spark, args, batches, whole=True)
        touched = "all"
    else:
        folder = cli.lake_path(args, "processed_zone", RENTALS.name)
        rental_batches.start_publishing(spark, args, batches)
        rental_batches.publish_dates(spark, folder, item.staged, f"{item.staged}.__merged", dates)
        rental_batches.publish_index(spark, args, batches, whole=False)
        touched = len(dates.touched)
        reporter.log(
            f"rentals: batch(es) {[b.key for b in batches]} rewritten in {touched} "
            f"rental_date folder(s); the table holds {table_rows} rows"
        )
    requested = [b.key for b in item.input.requested]
    return {
        "row_count": table_rows,
        "batch_rows_kept": item.kept,
        "batches": requested,
        "batches_also_rewritten": [b.key for b in batches if b.key not in requested],
        "rental_date_folders_rewritten": touched,
    }


def publish_rejected_rows(
    spark: SparkSession, args: argparse.Namespace, reporter: Reporter, written: list[Written]
) -> None:
    """One file per snapshot and per rentals batch cleaned, each replacing its earlier one."""
    staged = staging_path(args, "processed_zone", REJECTED_ROWS_TABLE)
    union = reduce(DataFrame.unionByName, (w.rejected for w in written))
    union.repartition(REJECTED_FILE).write.mode("overwrite").partitionBy(REJECTED_FILE).parquet(
        staged
    )
    rejected_by_table = {w.table.name: w.rejected_by_reason for w in written}
    total = sum(w.rows_rejected for w in written)
    preview_rows = union.drop(REJECTED_FILE).limit(PREVIEW_ROWS).collect()
    preview = markdown_table(preview_rows, [c for c in union.columns if c != REJECTED_FILE])
    for item in written:
        item.rejected.unpersist()
    names = [
        *[w.table.name for w in written if w.table is not RENTALS],
        *[f"{RENTALS.name}-{b.key}" for w in written for b in w.input.batches],
    ]
    every_input = len(written) == len(SOURCE_TABLES) and all(w.input.whole for w in written)
    path = rental_batches.publish_files(
        spark, staged, cli.lake_path(args, "processed_zone", REJECTED_ROWS_TABLE), REJECTED_FILE,
        names, whole=every_input,
    )  # fmt: skip
    files = LakeFiles(spark, path)
    if not files.glob(f"{path}/*.parquet"):
        # No rejected row anywhere: one empty file keeps the table readable (0 rows).
        empty = union.drop(REJECTED_FILE).where(F.lit(False)).coalesce(1)
        empty.write.mode("overwrite").parquet(staged)
        files.replace(files.glob(f"{staged}/*.parquet")[0][0], f"{path}/{EMPTY_FILE}")
        files.delete(staged)
    reporter.report(
        f"{Zone.PROCESSED}/{REJECTED_ROWS_TABLE}",
        {
            "row_count": spark.read.parquet(path).count(),
            "rows_rejected_now": total,
            "rejected_by_table": rejected_by_table,
            "path": path,
            "preview": {"raw_value": preview, "type": "md"},
        },
    )


def published_tables(value: str | None) -> list[str]:
    """Processed tables to publish, in contract order (no ``--tables``: all five)."""
    return cli.table_list(value, PROCESSED_TABLES, "--tables")


def parser() -> argparse.ArgumentParser:
    parser = cli.base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", help="Comma-separated processed tables to publish (default: all five)."
    )
    parser.add_argument(
        "--batches",
        help="Comma-separated rentals batches (full, YYYY-MM-DD) to rewrite (default: all landed).",
    )
    parser.add_argument(
        "--max-reject-rate",
        type=float,
        default=DEFAULT_MAX_REJECT_RATE,
        help="Share of an input's rows that may be rejected before the tables are held back.",
    )
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    return cli.parse(parser(), argv)


def main(argv: list[str] | None = None) -> None:
    cli.run_job("car-rental-transform", parser(), run, argv)


if __name__ == "__main__":
    main()
