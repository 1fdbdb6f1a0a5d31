"""The whole asset graph on the aws deployment's resources, against the moto server.

The resources are ``aws_resources(settings)`` as the ``aws`` deployment builds them, pointed at
moto and a test bucket, with no EMR cluster setting (each run gets a transient cluster from the
template) and EMR polling every 0 s; the crawl poll interval, which is no setting, is set to 0
on the built catalog resource. What moto does, is done for real: the four CSV exports are
objects under ``landing/``, the raw assets copy them to ``raw/``, the code bundle and the EMR
bootstrap script with its wheels are uploaded, the cluster is created with its bootstrap action,
given its idle timeout and terminated at the end of the run, the steps are added, the Glue
database and crawlers are created and started, the Athena queries run in the workgroup, and the
IO manager writes Parquet under ``analyses/`` and registers Glue tables.

The run is over the rentals partitions, as a backfill of every partition launches it: the
rentals exports under ``landing/`` are registered as ``rental_batches`` partitions first and
the run carries their range tags (the sample's one ``rental_transactions.csv`` is ``full``).

Driven by the test, inside moto's in-process models (never in the code under test), because
moto cannot do it:

* EMR runs nothing: moto cannot run Spark and its steps never finish. ``fake_emr`` makes each
  step's second DescribeStep find it COMPLETED after a simulated job ran (FAILED, with the
  traceback as its stderr, when the simulated job raises). The job parses the step's own
  arguments with the real job's parser (lake root, zones, ``--tables``, ``--batches``,
  ``--max-reject-rate``, Pipes bootstrap parameters), reads the raw zone as the real job does
  (rentals: the ``batch=<key>/`` folders of ``--batches``), writes small Parquet files with the
  contract's columns and types (synthetic rows, no Spark) in the real job's layout
  (``processed/rentals/rental_date=<day>/``, ``processed/rejected_rows/<table>.parquet`` and
  ``rentals-<batch>.parquet``, the key index under ``_state/rental_keys/batch=<key>/``,
  ``kpi/<table>/``), decides its checks with the real verdicts of ``spark_jobs.quality``, and
  reports through Dagster Pipes with the jobs' own ``spark_jobs.reporting.PipesReporter``: the
  materializations (row_count, path, batches, ...) and the asset checks that transform_job.py
  and kpi_job.py report. Its figures are those the real job would find: records in per raw
  file from the manifests in S3, rejects per reason from the sample's planted bad rows, KPI
  row counts from the Parquet it wrote.
* Glue crawlers do not crawl: ``crawls`` ends each crawl at its second GetCrawler after creating
  one table per folder of the crawled zone that holds Parquet, with the footer's columns and
  its ``<column>=<value>/`` folders as partitions (the crawler's table level is the table).
* Athena runs no SQL and returns no rows unless results are seeded: as each query starts, its
  result is queued in moto (what ``/moto-api/static/athena/query-results`` does), computed by
  running the same SQL with DuckDB over the Parquet files of the Glue tables it names (the
  analyses use SQL both engines accept).

Every AWS call the resources make is recorded and checked against the runner IAM policy
(runner_permissions.py). The full graph takes about 9 s, the other runs 2-3 s each.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_pipes import PipesContext

from car_rental_platform.assets.analyses import ANALYSES
from car_rental_platform.assets.catalog import CATALOGED, catalog_key
from car_rental_platform.assets.kpi import KPI_CHECKS, kpi_key
from car_rental_platform.assets.processed import PROCESSED_CHECKS, processed_key
from car_rental_platform.aws_names import run_job_flow_request
from car_rental_platform.code_bundle import (
    bootstrap_key,
    bootstrap_keys,
    build_bootstrap,
    build_bundle,
)
from car_rental_platform.definitions import ASSETS
from car_rental_platform.partitions import (
    RANGE_END,
    RANGE_START,
    landed_batches,
    range_tags,
    register,
)
from car_rental_platform.raw_records import land
from car_rental_platform.resources.aws import aws_resources
from car_rental_platform.resources.aws.glue_tables import glue_type
from car_rental_platform.sample_data.generator import SampleSummary, generate
from spark_jobs import cli, kpi_job, quality, rental_batches, transform_job
from spark_jobs.cleaning import BATCH_RANK, ROW_ORDER, SOURCE_FILE
from spark_jobs.contract import (
    BATCH_FOLDER,
    DEFAULT_MAX_REJECT_RATE,
    FULL_BATCH,
    KPI_BY_NAME,
    KPI_TABLES,
    LANDED_FOLDER,
    LOCATIONS,
    OCCASIONAL_SPENDER,
    PROCESSED_TABLES,
    REJECTED_ROWS_COLUMNS,
    REJECTED_ROWS_TABLE,
    RENTALS,
    SOURCE_TABLES,
    SPENDING_CATEGORIES,
    USERS,
    VEHICLES,
    WEEKDAYS,
    Check,
    Column,
    RentalBatch,
    SourceTable,
    Zone,
    batch_of_key,
    batch_order,
)
from spark_jobs.kpi_job import PREVIEW_ROWS, parse_tables
from spark_jobs.markdown import markdown_table
from spark_jobs.quality import CheckOutcome
from spark_jobs.raw_format import MANIFEST, Manifest, combined
from spark_jobs.rental_batches import BATCH, DATE, KEPT
from spark_jobs.reporting import PipesReporter
from spark_jobs.transform_job import EMPTY_FILE
from tests.aws.runner_permissions import Where, denied
from tests.aws.support import (
    AwsCalls,
    AwsEnv,
    Crawl,
    FakeEmr,
    ScriptedCrawls,
    StepCall,
    crawler_target,
    moto_glue,
    moto_s3,
    object_bytes,
    object_keys,
    put_object,
    query_result,
)

# dg.open_pipes_session itself calls a preview API of Dagster's; nothing to act on here.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.PreviewWarning")

ACCOUNT = "123456789012"  # moto's
DATABASE = "car_rental_db"
WORKGROUP = "car-rental"
SAMPLE_RENTALS = 400  # 27 planted rejects: 6.75 %, within the default 10 % reject rate
ALL_KPIS = [t.name for t in KPI_TABLES]
LAKE_ARGS = ["--raw-zone", "raw", "--processed-zone", "processed", "--kpi-zone", "kpi"]
LANDING = "landing/"


# --- the simulated Spark jobs ---------------------------------------------------------------

ARROW_TYPES = {
    "string": pa.string(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "decimal(18,2)": pa.decimal128(18, 2),
}
VOCABULARY: dict[str, tuple[str, ...]] = {
    "city": ("Lyon", "Paris", "Nice"),
    "state": ("ARA", "IDF", "PACA"),
    "vehicle_type": ("basic", "premium", "high_end"),
    "spending_category": (*(name for _, name in SPENDING_CATEGORIES), OCCASIONAL_SPENDER),
    "day_of_week": WEEKDAYS,
}
KPI_ROWS = {
    "location_metrics": 12,
    "vehicle_type_metrics": 3,
    "brand_metrics": 12,
    "daily_metrics": 30,
    "user_metrics": 25,
    "hourly_metrics": 24,
    "day_of_week_metrics": 7,
}
ANALYSIS_ROWS = {
    "top_locations_by_revenue": 10,  # LIMIT 10 of 12 locations
    "vehicle_types_by_rentals": 3,
    "top_spenders": 5,  # every fifth of 25 users is a 'Top Spender'
    "daily_revenue_trend": 30,
    "hourly_pattern": 24,
    "weekday_pattern": 7,
    "top_brands_by_revenue": 10,  # LIMIT 10 of 12 brands
    "city_state_rollup": 3,  # three (state, city) pairs among the 12 locations
}


def _value(column: Column, row: int) -> Any:
    if column.name in VOCABULARY:
        words = VOCABULARY[column.name]
        return words[row % len(words)]
    if column.name == "day_number":
        return row + 1
    kind = column.type
    if kind == "string":
        return f"{column.name}-{row:04}"
    if kind in ("int", "bigint"):
        return row
    if kind == "double":
        return 1.5 * (row + 1)
    if kind == "date":
        return date(2024, 1, 1) + timedelta(days=row)
    if kind == "timestamp":
        return datetime(2024, 1, 1) + timedelta(hours=row)
    return Decimal(row * 125 + 1000).scaleb(-2)  # money: 10.00, 11.25, ...


def synthetic_table(columns: tuple[Column, ...], rows: int) -> pa.Table:
    """``rows`` rows of the contract's columns and types (keys unique by construction)."""
    return pa.table(
        {
            column.name: pa.array(
                [_value(column, row) for row in range(rows)], ARROW_TYPES[column.type]
            )
            for column in columns
        }
    )


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


PART = "part-00000-simulated.snappy.parquet"
"""The one part a simulated Spark write leaves in each folder."""


def write_spark_output(folder_uri: str, table: pa.Table) -> None:
    """What ``df.write.mode("overwrite").parquet(folder)`` leaves in S3: one part and _SUCCESS."""
    bucket, folder = _split(folder_uri)
    _delete_under(bucket, folder)
    put_object(bucket, f"{folder}/{PART}", _parquet(table))
    put_object(bucket, f"{folder}/_SUCCESS", b"")


def newest_landing(folder_uri: str) -> str:
    """The newest ``landed=<UTC>/`` folder with a manifest under a snapshot's raw folder (the
    folder itself when there is none, as ``spark_jobs.lake_files.newest_landing`` does)."""
    bucket, key = _split(folder_uri)
    landings = [
        k.rsplit("/", 1)[0]
        for k in object_keys(bucket, f"{key}/{LANDED_FOLDER}")
        if k.endswith(f"/{MANIFEST}")
    ]
    return f"s3://{bucket}/{max(landings)}" if landings else folder_uri


def _data_lines(body: bytes) -> list[str]:
    lines = [line for line in body.decode("utf-8-sig").splitlines() if line.strip()]
    return lines[1:]


def _with_values(table: pa.Table, **values: list[Any]) -> pa.Table:
    """``table`` with some columns' values replaced (same types)."""
    for name, column in values.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.array(column, table.schema.field(name).type))
    return table


def synthetic_rentals(rows: int) -> pa.Table:
    """Processed rentals whose derived columns are derived: ``rental_date`` and ``rental_hour``
    of ``rental_start_time`` (hourly from 2024-01-01: 24 rows per ``rental_date`` folder)."""
    table = synthetic_table(RENTALS.processed_columns, rows)
    starts = table["rental_start_time"].to_pylist()
    return _with_values(
        table,
        rental_date=[start.date() for start in starts],
        rental_hour=[start.hour for start in starts],
    )


def _delete_under(bucket: str, folder: str) -> None:
    for key in object_keys(bucket, folder + "/"):
        moto_s3().delete_object(bucket, key)


def write_hive_output(folder_uri: str, table: pa.Table, column: str) -> list[str]:
    """What ``df.write.mode("overwrite").partitionBy(column).parquet(folder)`` leaves in S3:
    one ``<column>=<value>/`` folder per value, holding one part without that column, and
    _SUCCESS; no row: one empty part with every column (what transform_job writes then)."""
    if not table.num_rows:
        write_spark_output(folder_uri, table)
        return []
    bucket, folder = _split(folder_uri)
    _delete_under(bucket, folder)
    values = table[column].to_pylist()
    data = table.drop_columns([column])
    folders = []
    for value in sorted(set(values)):
        rows = data.filter(pa.array([v == value for v in values]))
        name = f"{column}={_text(value)}"
        put_object(bucket, f"{folder}/{name}/{PART}", _parquet(rows))
        folders.append(name)
    put_object(bucket, f"{folder}/_SUCCESS", b"")
    return folders


def parquet_keys(folder_uri: str) -> list[str]:
    """Keys of the Parquet files under a folder (its ``k=v/`` folders too)."""
    bucket, folder = _split(folder_uri)
    return [key for key in object_keys(bucket, folder + "/") if key.endswith(".parquet")]


def parquet_rows(folder_uri: str) -> int:
    """Rows of every Parquet file under a folder, from the footers."""
    bucket, _ = _split(folder_uri)
    return sum(
        pq.read_metadata(pa.BufferReader(object_bytes(bucket, key))).num_rows
        for key in parquet_keys(folder_uri)
    )


def read_manifest(folder_uri: str) -> Manifest:
    """``cleaning.read_manifest`` on moto's S3, failing as it does when there is none."""
    bucket, folder = _split(folder_uri)
    try:
        return Manifest.from_json(object_bytes(bucket, f"{folder}/{MANIFEST}").decode())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{folder_uri}/{MANIFEST} not found: {folder_uri} was not landed completely"
        ) from None


def landed_rental_batches(folder_uri: str) -> dict[RentalBatch, str]:
    """``rental_batches.landed_batches`` on moto's S3: the ``batch=<key>/`` folders holding a
    manifest, in batch order."""
    bucket, folder = _split(folder_uri)
    found = {}
    for key in object_keys(bucket, f"{folder}/{BATCH_FOLDER}"):
        name, _, file_name = key[len(folder) + 1 :].partition("/")
        if file_name == MANIFEST:
            found[batch_of_key(name[len(BATCH_FOLDER) :])] = f"{folder_uri}/{name}"
    if not found:
        raise FileNotFoundError(f"no rentals export landed under {folder_uri}")
    return {batch: found[batch] for batch in batch_order(found)}


@dataclass(frozen=True)
class SimulatedInput:
    """One input as the simulated transform read it from the raw zone."""

    table: SourceTable
    lines: list[str]
    manifest: Manifest
    rejected_by_file: dict[str, dict[str, int]]
    """Rejected rows per reason, per file of ``rejected_rows`` (``<table>``, ``rentals-<key>``)."""
    batches: list[RentalBatch] = field(default_factory=list)

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for by_reason in self.rejected_by_file.values():
            for reason, rows in by_reason.items():
                counts[reason] = counts.get(reason, 0) + rows
        return dict(sorted(counts.items()))

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def kept(self) -> int:
        return self.manifest.records - self.rows_rejected


def rejected_table(table: str, source: str, by_reason: dict[str, int]) -> pa.Table:
    """Synthetic ``rejected_rows`` rows of one file: the table's planted rejects by reason."""
    reasons = [reason for reason, rows in sorted(by_reason.items()) for _ in range(rows)]
    rows = synthetic_table(REJECTED_ROWS_COLUMNS, len(reasons))
    count = len(reasons)
    return _with_values(
        rows, source_table=[table] * count, source_file=[source] * count, reason=reasons
    )


def write_rejected_rows(folder_uri: str, files: dict[str, pa.Table], whole: bool) -> None:
    """``transform_job.publish_rejected_rows``: ``<name>.parquet`` per snapshot and rentals
    batch cleaned (none left for a name without rejects); with ``whole`` files of no name go
    too; ``none.parquet`` (empty) when the folder would hold no file."""
    bucket, folder = _split(folder_uri)
    for name, table in files.items():
        key = f"{folder}/{name}.parquet"
        if table.num_rows:
            put_object(bucket, key, _parquet(table))
        else:
            moto_s3().delete_object(bucket, key)
    if whole:
        for key in object_keys(bucket, folder + "/"):
            name = key[len(folder) + 1 :]
            if name.removesuffix(".parquet") not in files and not name.startswith((".", "_")):
                moto_s3().delete_object(bucket, key)
    if not any(key.endswith(".parquet") for key in object_keys(bucket, folder + "/")):
        empty = synthetic_table(REJECTED_ROWS_COLUMNS, 0)
        put_object(bucket, f"{folder}/{EMPTY_FILE}", _parquet(empty))


def key_index(rentals: pa.Table, batch: RentalBatch, source: str) -> pa.Table:
    """The key index rows of one batch (its kept rows), ``BATCH`` naming its folder."""
    rows = rentals.num_rows
    return pa.table(
        {
            RENTALS.key: rentals[RENTALS.key],
            BATCH_RANK: pa.array([batch.rank] * rows, pa.int64()),
            SOURCE_FILE: pa.array([source] * rows, pa.string()),
            ROW_ORDER: pa.array(range(rows), pa.int64()),
            KEPT: pa.array([True] * rows, pa.bool_()),
            DATE: rentals[DATE],
            BATCH: pa.array([batch.key] * rows, pa.string()),
        }
    )


@dataclass
class SimulatedJobs:
    """transform_job.py and kpi_job.py, as far as Dagster and the lake can tell (no Spark).

    The transform parses the real job's arguments (``--tables``, ``--batches``,
    ``--max-reject-rate``) and decides with the real verdicts (``spark_jobs.quality``) on the
    figures the real job would find; its rows are synthetic. It rewrites the rentals whole, so
    it refuses a run over some of the landed batches (the real job's in-place rewrite of the
    touched ``rental_date=`` folders needs the key index of real rows); and it knows the planted
    rows of the sample's single ``rental_transactions.csv`` (batch ``full``) only. A refusal
    fails the step (``FakeEmr``), with the reason in the run's error.
    """

    sample: SampleSummary

    def _planted(self, table: SourceTable, batch: RentalBatch | None = None) -> dict[str, int]:
        if batch is not None and batch.key != FULL_BATCH:
            raise NotImplementedError(
                f"batch {batch.key}: the sample's planted rows are those of {RENTALS.file_name}"
            )
        return {
            reason: count
            for (name, reason), count in sorted(self.sample.planted.items())
            if name == table.name
        }

    def _read_input(self, args: Any, table: SourceTable) -> SimulatedInput:
        """The canonical copies landing wrote (rentals: the batches of ``--batches``, or every
        landed one), their manifests, and the sample's planted rejects."""
        folder = cli.lake_path(args, "raw_zone", table.raw_name)
        if table is not RENTALS:
            folder = newest_landing(folder)
            manifest = read_manifest(folder)
            bucket, key = _split(folder)
            lines = _data_lines(object_bytes(bucket, f"{key}/{table.file_name}"))
            return SimulatedInput(table, lines, manifest, {table.name: self._planted(table)})
        landed = landed_rental_batches(folder)
        batches = rental_batches.requested_batches(args.batches, landed, folder)
        if set(batches) != set(landed):
            raise NotImplementedError(
                f"--batches {[b.key for b in batches]} of landed {[b.key for b in landed]}: the "
                "simulated transform rewrites every landed batch"
            )
        lines, manifests, rejected = [], [], {}
        for batch in batches:
            manifests.append(read_manifest(landed[batch]))
            bucket, key = _split(landed[batch])
            lines += _data_lines(object_bytes(bucket, f"{key}/{table.file_name}"))
            rejected[f"{RENTALS.name}-{batch.key}"] = self._planted(table, batch)
        return SimulatedInput(table, lines, combined(manifests), rejected, batches)

    def transform(self, call: StepCall, pipes: PipesContext) -> None:
        args = transform_job.parse_args(call.job_args)
        reporter = PipesReporter(pipes)
        chosen = transform_job.published_tables(args.tables)
        inputs = [self._read_input(args, t) for t in transform_job.inputs_of(chosen)]
        outcomes = {item.table.name: self._checks(args, item, inputs) for item in inputs}
        failures = quality.blocking_failures(outcomes)
        for item in inputs:
            reporter.log(
                f"{item.table.name}: {item.manifest.records} records in, {item.kept} kept, "
                f"{item.rows_rejected} rejected ({item.manifest.source})"
            )
        if REJECTED_ROWS_TABLE in chosen:
            self._publish_rejected_rows(args, reporter, inputs)
        if failures:
            reporter.log(f"Not published: blocking check(s) failed: {', '.join(failures)}")
        else:
            for item in (i for i in inputs if i.table.name in chosen):
                path = cli.lake_path(args, "processed_zone", item.table.name)
                metadata = {
                    "row_count": item.kept,
                    "rows_in": item.manifest.records,
                    "rows_rejected": item.rows_rejected,
                    "rejected_by_reason": item.rejected_by_reason,
                    "source": item.manifest.source,
                    "encoding": item.manifest.encoding,
                }
                if item.table is RENTALS:
                    metadata |= self._publish_rentals(args, item, path)
                else:
                    rows = synthetic_table(item.table.processed_columns, item.kept)
                    write_spark_output(path, rows)
                reporter.report(f"{Zone.PROCESSED}/{item.table.name}", {**metadata, "path": path})
        for table, checks in outcomes.items():
            if table in chosen:  # Pipes accepts checks of the step's assets only
                for check, outcome in checks.items():
                    reporter.check(f"{Zone.PROCESSED}/{table}", check, outcome)

    @staticmethod
    def _checks(
        args: Any, item: SimulatedInput, inputs: list[SimulatedInput]
    ) -> dict[Check, CheckOutcome]:
        rows_in, kept = item.manifest.records, item.kept
        problems = sorted(
            ((reason, rows, "") for reason, rows in item.rejected_by_reason.items()),
            key=lambda problem: -problem[1],
        )
        outcomes = {
            Check.ROWS_CONSERVED: quality.conservation_verdict(
                rows_in, kept, item.rows_rejected, item.manifest.source
            ),
            Check.PRIMARY_KEY_UNIQUE: quality.unique_key_verdict(kept, kept, [item.table.key]),
            Check.REJECT_RATE: quality.reject_rate_verdict(
                rows_in, item.rejected_by_reason, args.max_reject_rate, problems
            ),
        }
        if item.table is RENTALS:
            outcomes[Check.REFERENCES_KNOWN] = _unknown_references(args, inputs)
        return outcomes

    @staticmethod
    def _publish_rentals(args: Any, item: SimulatedInput, path: str) -> dict[str, Any]:
        """The table (Hive-partitioned by rental_date) and the key index, both replaced whole."""
        rentals = synthetic_rentals(item.kept)
        write_hive_output(path, rentals, DATE)
        (batch,) = item.batches  # the sample's one export (``_planted``)
        index = key_index(rentals, batch, item.manifest.source)
        write_hive_output(rental_batches.index_path(args), index, BATCH)
        return {
            "batch_rows_kept": item.kept,
            "batches": [b.key for b in item.batches],
            "batches_also_rewritten": [],
            "rental_date_folders_rewritten": "all",
        }

    @staticmethod
    def _publish_rejected_rows(
        args: Any, reporter: PipesReporter, inputs: list[SimulatedInput]
    ) -> None:
        path = cli.lake_path(args, "processed_zone", REJECTED_ROWS_TABLE)
        files = {
            name: rejected_table(item.table.name, item.manifest.source, by_reason)
            for item in inputs
            for name, by_reason in item.rejected_by_file.items()
        }
        write_rejected_rows(path, files, whole=len(inputs) == len(SOURCE_TABLES))
        union = pa.concat_tables(files.values())
        preview_rows = union.slice(0, transform_job.PREVIEW_ROWS).to_pylist()
        head = [tuple(row.values()) for row in preview_rows]
        reporter.report(
            f"{Zone.PROCESSED}/{REJECTED_ROWS_TABLE}",
            {
                "row_count": parquet_rows(path),
                "rows_rejected_now": union.num_rows,
                "rejected_by_table": {i.table.name: i.rejected_by_reason for i in inputs},
                "path": path,
                "preview": {"raw_value": markdown_table(head, union.column_names), "type": "md"},
            },
        )

    def kpis(self, call: StepCall, pipes: PipesContext) -> None:
        args = kpi_job.parse_args(call.job_args)
        reporter = PipesReporter(pipes)
        names = parse_tables(args.tables)
        reporter.log(f"computing {len(names)} KPI table(s): {', '.join(names)}")
        for name in names:
            path = cli.lake_path(args, "kpi_zone", name)
            table = synthetic_table(KPI_BY_NAME[name].columns, KPI_ROWS[name])
            write_spark_output(path, table)
            head = [tuple(row.values()) for row in table.slice(0, PREVIEW_ROWS).to_pylist()]
            preview = markdown_table(head, table.column_names)
            reporter.report(
                f"{Zone.KPI}/{name}",
                {
                    "row_count": table.num_rows,
                    "path": path,
                    "preview": {"raw_value": preview, "type": "md"},
                },
            )
        for name in names:
            key = KPI_BY_NAME[name].key
            rows = KPI_ROWS[name]
            for check, metadata in (
                (Check.TOTALS_MATCH_RENTALS, {"rentals_count": rows}),
                (Check.NOT_EMPTY, {"rows": rows}),
                (Check.PRIMARY_KEY_UNIQUE, {"rows": rows, "duplicate_rows": 0, "key": key[0]}),
            ):
                reporter.check(f"{Zone.KPI}/{name}", check, CheckOutcome(True, metadata))


def _unknown_references(args: Any, inputs: list[SimulatedInput]) -> CheckOutcome:
    """What quality.unknown_references measures, counted on the raw lines (a warning); the
    snapshots not in the run as published before (raw lines of those processed already)."""
    rows = {item.table.name: item.lines for item in inputs}
    for table in (VEHICLES, USERS, LOCATIONS):
        if table.name in rows:
            continue
        if not parquet_keys(cli.lake_path(args, "processed_zone", table.name)):
            reason = "vehicles, users and locations are not all processed yet"
            return CheckOutcome(False, {"reason": reason}, severity="WARN")
        bucket, folder = _split(newest_landing(cli.lake_path(args, "raw_zone", table.raw_name)))
        rows[table.name] = _data_lines(object_bytes(bucket, f"{folder}/{table.file_name}"))

    def ids(table: str, column: str, source: tuple[str, ...]) -> list[str]:
        """The column's values on the canonical lines (``_line``, values, two empty columns)
        that hold no quoted comma."""
        index = source.index(column) + 1
        fields = (line.split(",") for line in rows[table])
        return [f[index].strip() for f in fields if len(f) == len(source) + 3 and not f[-2]]

    rental_columns = RENTALS.column_names
    known = {
        "user_id": set(ids(USERS.name, "user_id", USERS.column_names)),
        "vehicle_id": set(ids(VEHICLES.name, "vehicle_id", VEHICLES.column_names)),
        "pickup_location": set(ids(LOCATIONS.name, "location_id", LOCATIONS.column_names)),
    }
    known["dropoff_location"] = known["pickup_location"]
    counts = {
        f"rentals_with_unknown_{label}": sum(
            value not in known[column] for value in ids(RENTALS.name, column, rental_columns)
        )
        for label, column in (
            ("user", "user_id"),
            ("vehicle", "vehicle_id"),
            ("pickup_location", "pickup_location"),
            ("dropoff_location", "dropoff_location"),
        )
    }
    return CheckOutcome(passed=not any(counts.values()), metadata=counts, severity="WARN")


# --- the simulated crawler and Athena -------------------------------------------------------


def crawl_what_is_there(backend: Any, crawler: Any) -> None:
    """One table per folder of the crawled zone holding Parquet, columns from its footer.

    As the crawler's table level pins tables to ``<zone>/<table>/``: ``<column>=<value>/``
    folders under a table are its partitions (partition keys typed ``string``, one Glue
    partition per folder), never tables of their own. Files named ``_*`` or ``.*`` (Spark's
    bookkeeping) are not data.
    """
    bucket, zone = _split(crawler_target(crawler))
    files: dict[str, list[str]] = {}
    partition_keys: dict[str, list[str]] = {}
    partitions: dict[str, dict[tuple[str, ...], str]] = {}
    for key in object_keys(bucket, zone):
        table, *folders, name = key[len(zone) :].split("/")
        if not name.endswith(".parquet") or name.startswith(("_", ".")):
            continue
        files.setdefault(table, []).append(key)
        pairs = [folder.partition("=") for folder in folders]
        if pairs and all(sep for _, sep, _ in pairs):
            partition_keys[table] = [column for column, _, _ in pairs]
            location = f"s3://{bucket}/{zone}{table}/{'/'.join(folders)}/"
            partitions.setdefault(table, {})[tuple(value for _, _, value in pairs)] = location
    database = crawler.database_name
    for table, keys in sorted(files.items()):
        schema = pq.read_schema(pa.BufferReader(object_bytes(bucket, keys[0])))
        descriptor = {
            "Columns": [{"Name": f.name, "Type": glue_type(f.type)} for f in schema],
            "Location": f"s3://{bucket}/{zone}{table}/",
        }
        table_input = {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet"},
            "PartitionKeys": [
                {"Name": column, "Type": "string"} for column in partition_keys.get(table, [])
            ],
            "StorageDescriptor": descriptor,
        }
        if table in backend.get_database(database).tables:
            backend.update_table(database, table, table_input)
        else:
            backend.create_table(database, table, table_input)
        glue_table = backend.get_table(database, table)
        for values, location in sorted(partitions.get(table, {}).items()):
            if str(list(values)) not in glue_table.partitions:
                partition = {"Values": list(values), "StorageDescriptor": {**descriptor}}
                partition["StorageDescriptor"]["Location"] = location
                glue_table.create_partition(partition)


TABLE_REFERENCE = re.compile(r'"(\w+)"\."(\w+)"')


def athena_type(kind: pa.DataType) -> str:
    checks: list[tuple[Callable[[pa.DataType], bool], str]] = [
        (pa.types.is_int32, "integer"),
        (pa.types.is_integer, "bigint"),
        (pa.types.is_floating, "double"),
        (pa.types.is_decimal, "decimal"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "timestamp"),
    ]
    return next((name for check, name in checks if check(kind)), "varchar")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date | datetime):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def run_sql(sql: str, region: str) -> dict[str, Any]:
    """The query's result in moto's format: DuckDB over the Parquet of the tables it names."""
    glue, connection = moto_glue(region), duckdb.connect()
    for database, table in sorted(set(TABLE_REFERENCE.findall(sql))):
        location = glue.get_table(database, table).as_dict()["StorageDescriptor"]["Location"]
        bucket, folder = _split(location)
        parts = [
            pq.read_table(pa.BufferReader(object_bytes(bucket, key)))
            for key in object_keys(bucket, folder)
            if key.endswith(".parquet")
        ]
        connection.register("data", pa.concat_tables(parts))
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
        connection.execute(f'CREATE TABLE "{database}"."{table}" AS SELECT * FROM data')
        connection.unregister("data")
    result = connection.sql(sql).to_arrow_table()
    columns = {field.name: athena_type(field.type) for field in result.schema}
    rows = [[_text(row[name]) for name in columns] for row in result.to_pylist()]
    return query_result(columns, rows)


@dataclass
class Queries:
    sql: list[str]
    errors: list[str]


@pytest.fixture
def athena_answers(monkeypatch: pytest.MonkeyPatch, aws_env: AwsEnv) -> Queries:
    """Each query's result is queued in moto as the query starts (moto pops it right then)."""
    from moto.athena.models import AthenaBackend, QueryResults

    original = AthenaBackend.start_query_execution
    queries = Queries([], [])

    def start_query_execution(backend: Any, **kwargs: Any) -> str:
        sql = kwargs["query"]
        queries.sql.append(sql)
        try:
            result = run_sql(sql, aws_env.region)
        except Exception as error:  # a wrong query must fail the test, with its reason
            queries.errors.append(f"{error!r} in {sql}")
            result = query_result({}, [])
        backend.query_results_queue.append(QueryResults(**result))
        return original(backend, **kwargs)

    monkeypatch.setattr(AthenaBackend, "start_query_execution", start_query_execution)
    return queries


# --- set-up ---------------------------------------------------------------------------------


@dataclass
class Deployment:
    aws_env: AwsEnv
    sample: SampleSummary
    landed: Path

    @property
    def bucket(self) -> str:
        return self.aws_env.bucket

    def resources(self, **settings: str) -> dict[str, Any]:
        resources = aws_resources(
            {
                "CAR_RENTAL_BUCKET": self.bucket,
                "CAR_RENTAL_AWS_REGION": self.aws_env.region,
                "CAR_RENTAL_AWS_ENDPOINT_URL": self.aws_env.endpoint_url,
                "CAR_RENTAL_EMR_POLL_SECONDS": "0",
                **settings,
            }
        )
        # Not a setting: GetCrawler every 0 s instead of 15 s.
        resources["catalog"] = _with(resources["catalog"], poll_interval_seconds=0)
        return resources

    def landed_range(self, instance: dg.DagsterInstance) -> dict[str, str]:
        """Run tags over every rentals export under ``landing/``, registered as partitions
        first: what the landing sensor and a backfill of all partitions launch."""
        s3 = self.aws_env.client("s3")
        listing = s3.list_objects_v2(Bucket=self.bucket, Prefix=LANDING)
        names = [item["Key"].removeprefix(LANDING) for item in listing.get("Contents", [])]
        return range_tags(instance, register(instance, landed_batches(names)))

    def where(self) -> Where:
        emr = self.aws_env.client("emr")

        def cluster_tags(cluster_id: str) -> dict[str, str]:
            cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
            return {tag["Key"]: tag["Value"] for tag in cluster["Tags"]}

        return Where(self.bucket, self.aws_env.region, ACCOUNT, cluster_tags=cluster_tags)


def _with(resource: dg.ConfigurableResource, **changes: Any) -> Any:
    """The same resource with some fields changed."""
    fields = {name: getattr(resource, name) for name in type(resource).model_fields}
    return type(resource)(**{**fields, **changes})


@pytest.fixture
def deployment(aws_env: AwsEnv, tmp_path: Path) -> Deployment:
    """The bucket and the workgroup setup_all creates, and the four exports under landing/."""
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket=aws_env.bucket)
    aws_env.client("athena").create_work_group(
        Name=WORKGROUP,
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{aws_env.bucket}/athena_results/"}
        },
    )
    landed = tmp_path / "exports"
    sample = generate(landed, rentals=SAMPLE_RENTALS, seed=1)
    for table in SOURCE_TABLES:
        s3.upload_file(str(landed / table.file_name), aws_env.bucket, f"landing/{table.file_name}")
    return Deployment(aws_env, sample, landed)


@pytest.fixture
def instance() -> dg.DagsterInstance:
    """In memory: the processed assets read the raw row counts back from it."""
    return dg.DagsterInstance.ephemeral()


def _materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Asset key -> its materialization's metadata, plain values."""
    return {
        event.asset_key.to_user_string(): {
            k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }


def _failures(result: dg.ExecuteInProcessResult) -> str:
    errors = [e.step_failure_data.error for e in result.get_step_failure_events()]
    return "\n".join(error.to_string() for error in errors if error is not None)


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def _spec_keys(specs: list[dg.AssetCheckSpec]) -> set[tuple[str, str]]:
    return {(spec.asset_key.to_user_string(), spec.name) for spec in specs}


# --- the tests ------------------------------------------------------------------------------


def test_the_whole_graph_runs_on_the_aws_resources(
    deployment: Deployment,
    fake_emr: FakeEmr,
    crawls: ScriptedCrawls,
    athena_answers: Queries,
    aws_calls: AwsCalls,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    """Every asset, check and AWS call of a full run (see the module docstring for what the
    test plays: the two Spark steps, the two crawls and the Athena results)."""
    aws_env, bucket, sample = deployment.aws_env, deployment.bucket, deployment.sample
    jobs = SimulatedJobs(sample)
    fake_emr.outcomes += [FakeEmr.run(jobs.transform), FakeEmr.run(jobs.kpis)]
    crawls.crawls += [Crawl(crawl_what_is_there), Crawl(crawl_what_is_there)]
    tags = deployment.landed_range(instance)
    assert tags == {RANGE_START: FULL_BATCH, RANGE_END: FULL_BATCH}  # the one export: "full"

    result = dg.materialize(
        ASSETS,
        resources=deployment.resources(),
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )

    assert fake_emr.errors == []
    assert athena_answers.errors == []
    assert result.success, _failures(result)
    materialized = _materializations(result)
    s3 = aws_env.client("s3")

    # Raw: each landed export copied to raw/<raw_name>/<landing>/<file> (rentals: into the
    # folder of its batch, batch=full/; snapshots: landed=<UTC time>/), its data lines counted.
    for table in SOURCE_TABLES:
        folder = f"raw/{table.raw_name}/batch=full"
        if table is not RENTALS:
            folder = _split(newest_landing(f"s3://{bucket}/raw/{table.raw_name}"))[1]
            assert re.fullmatch(rf"raw/{table.raw_name}/landed=\d{{8}}T\d{{12}}Z", folder)
        key = f"{folder}/{table.file_name}"
        metadata = materialized[f"raw/{table.name}"]
        assert metadata["row_count"] == sample.rows[table.file_name]
        assert metadata["path"] == f"s3://{bucket}/{key}"
        assert metadata["source"] == f"s3://{bucket}/landing/{table.file_name}"
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        canonical = tmp_path / f"canonical-{table.file_name}"
        land(deployment.landed / table.file_name, table, "landed", canonical)
        assert body == canonical.read_bytes()  # the canonical copy landing writes
        manifest = s3.get_object(Bucket=bucket, Key=f"{folder}/{MANIFEST}")
        assert json.loads(manifest["Body"].read())["records"] == sample.rows[table.file_name]

    # EMR: one transient cluster; the transform job, then the KPI job for all seven tables.
    transform, kpis = fake_emr.steps
    bundle = build_bundle(tmp_path)
    code = f"s3://{bucket}/scripts/{bundle.digest}"
    submit = ["spark-submit", "--deploy-mode", "client", "--py-files", f"{code}/deps.zip"]
    lake_args = ["--lake-root", f"s3://{bucket}", *LAKE_ARGS]
    assert transform.spark_submit[:-4] == [
        *submit,
        f"{code}/transform_job.py",
        *lake_args,
        "--max-reject-rate",
        str(DEFAULT_MAX_REJECT_RATE),
        "--batches",
        FULL_BATCH,  # the run's partitions
    ]
    assert kpis.spark_submit[:-4] == [
        *submit,
        f"{code}/kpi_job.py",
        *lake_args,
        "--tables",
        ",".join(ALL_KPIS),
    ]
    for call in (transform, kpis):
        assert call.args[-4::2] == ["--dagster-pipes-context", "--dagster-pipes-messages"]
        assert call.pipes_context["run_id"] == result.run_id
    assert transform.cluster_id == kpis.cluster_id
    uploaded = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="scripts/")["Contents"]}
    code_keys = {f"scripts/{bundle.digest}/{name}" for name in bundle.files}
    bootstrap_files = set(bootstrap_keys(build_bootstrap()).values())
    assert bootstrap_key() in bootstrap_files
    assert uploaded == code_keys | bootstrap_files, "the bundle, the bootstrap script, its wheels"
    emr = aws_env.client("emr")
    cluster = emr.describe_cluster(ClusterId=transform.cluster_id)["Cluster"]
    assert cluster["Name"] == f"car-rental-transient-{result.run_id[:8]}"
    assert cluster["Status"]["State"] in ("TERMINATING", "TERMINATED")
    (bootstrap,) = emr.list_bootstrap_actions(ClusterId=cluster["Id"])["BootstrapActions"]
    assert bootstrap["ScriptPath"] == f"s3://{bucket}/{bootstrap_key()}"
    steps = emr.list_steps(ClusterId=cluster["Id"])["Steps"]
    assert sorted(s["Status"]["State"] for s in steps) == ["COMPLETED", "COMPLETED"]

    # Processed and KPI tables: the jobs' figures, where they wrote, where they ran.
    console = "https://us-east-1.console.aws.amazon.com/emr/home?region=us-east-1#/clusterDetails/"
    zones = {
        Zone.PROCESSED: ([t.name for t in SOURCE_TABLES] + [REJECTED_ROWS_TABLE], transform),
        Zone.KPI: (ALL_KPIS, kpis),
    }
    for zone, (tables, call) in zones.items():
        for table in tables:
            metadata = materialized[f"{zone.value}/{table}"]
            assert metadata["path"] == f"s3://{bucket}/{zone.value}/{table}"
            assert parquet_rows(metadata["path"]) == metadata["row_count"]
            assert metadata["emr_cluster_id"] == call.cluster_id
            assert metadata["emr_step_id"] == call.step_id
            assert metadata["emr_cluster_url"] == console + call.cluster_id
    for table in SOURCE_TABLES:
        metadata = materialized[f"processed/{table.name}"]
        planted = sum(n for (name, _), n in sample.planted.items() if name == table.name)
        assert metadata["rows_in"] == sample.rows[table.file_name]
        assert metadata["rows_rejected"] == planted
        assert metadata["row_count"] == sample.rows[table.file_name] - planted
        assert metadata["source"] == f"s3://{bucket}/landing/{table.file_name}"
    rentals = materialized["processed/rentals"]
    assert rentals["batches"] == [FULL_BATCH]
    assert rentals["batches_also_rewritten"] == []
    assert rentals["rental_date_folders_rewritten"] == "all"
    assert rentals["batch_rows_kept"] == rentals["row_count"]
    rejected = materialized["processed/rejected_rows"]
    assert rejected["row_count"] == rejected["rows_rejected_now"] == sum(sample.planted.values())
    assert {name: materialized[f"kpi/{name}"]["row_count"] for name in ALL_KPIS} == KPI_ROWS

    # The lake's layout: rentals Hive-partitioned by rental_date (24 hourly rows a day), the
    # rejected rows one file per snapshot and rentals batch with rejects, the key index of the
    # batch outside every crawled zone.
    days = -(-rentals["row_count"] // 24)
    rental_parts = [
        f"processed/rentals/rental_date={date(2024, 1, 1) + timedelta(days=day)}/{PART}"
        for day in range(days)
    ]
    assert object_keys(bucket, "processed/rentals/") == [
        "processed/rentals/_SUCCESS",
        *rental_parts,
    ]
    with_rejects = {name for (name, _), rows in sample.planted.items() if rows}
    assert object_keys(bucket, "processed/rejected_rows/") == sorted(
        f"processed/rejected_rows/{name if name != RENTALS.name else 'rentals-full'}.parquet"
        for name in with_rejects
    )
    assert object_keys(bucket, f"{Zone.STATE.value}/") == [
        "_state/rental_keys/_SUCCESS",
        f"_state/rental_keys/batch={FULL_BATCH}/{PART}",
    ]

    # Checks: every declared check evaluated, from the jobs' reports and Dagster's own.
    checks = _checks(result)
    assert set(checks) == _spec_keys(PROCESSED_CHECKS) | _spec_keys(KPI_CHECKS)
    for (key, name), evaluation in checks.items():
        if name != Check.REFERENCES_KNOWN:
            assert evaluation.passed, (key, name, evaluation.metadata)
    conserved = checks[("processed/rentals", Check.ROWS_CONSERVED.value)].metadata
    assert conserved["raw_rows"].value == sample.rows[RENTALS.file_name]
    references = checks[("processed/rentals", Check.REFERENCES_KNOWN.value)]
    assert references.severity == dg.AssetCheckSeverity.WARN
    assert set(references.metadata) == {
        "rentals_with_unknown_user",
        "rentals_with_unknown_vehicle",
        "rentals_with_unknown_pickup_location",
        "rentals_with_unknown_dropoff_location",
    }

    # Catalog: both zones crawled by crawlers the resource created; every table reported.
    # Each crawler targets its zone with tables pinned to <zone>/<table>/, so the rental_date=
    # folders are the rentals table's partitions; _state/ and _staging/ are crawled by none.
    glue = aws_env.client("glue")
    role = f"arn:aws:iam::{ACCOUNT}:role/car-rental-glue-crawler-role"
    for zone, tables in CATALOGED.items():
        crawler = glue.get_crawler(Name=f"car-rental-{zone.value}-crawler")["Crawler"]
        assert crawler["Targets"]["S3Targets"][0]["Path"] == f"s3://{bucket}/{zone.value}/"
        grouping = json.loads(crawler["Configuration"])["Grouping"]
        assert grouping["TableLevelConfiguration"] == 2  # <zone>/ is level 1, the table 2
        assert crawler["Role"] == role
        assert crawler["LastCrawl"]["Status"] == "COMPLETED"
        for table in tables:
            metadata = materialized[f"catalog/{table}"]
            assert metadata["crawl_status"] == "created"
            assert metadata["dagster/table_name"] == f"{DATABASE}.{table}"
            assert metadata["location"] == f"s3://{bucket}/{zone.value}/{table}"
            assert sorted(metadata["zone_tables_created"]) == sorted(tables)
    # The Parquet's columns, then the partition key (crawled from the folder names).
    schema = materialized["catalog/rentals"]["dagster/column_schema"]
    assert [c.name for c in schema.columns] == [
        *(c.name for c in RENTALS.processed_columns if c.name not in RENTALS.partition_by),
        *RENTALS.partition_by,
    ]
    catalog_rentals = glue.get_table(DatabaseName=DATABASE, Name=RENTALS.name)["Table"]
    assert [k["Name"] for k in catalog_rentals["PartitionKeys"]] == list(RENTALS.partition_by)
    partitions = glue.get_partitions(DatabaseName=DATABASE, TableName=RENTALS.name)["Partitions"]
    assert sorted(p["StorageDescriptor"]["Location"] for p in partitions) == [
        f"s3://{bucket}/{part.rsplit('/', 1)[0]}/" for part in rental_parts
    ]
    assert crawls.crawls == []

    # Analyses: queried through Athena, written back as Parquet and Glue tables.
    analyses = [a.name for a in ANALYSES] + ["city_state_rollup"]
    assert {name: materialized[f"analyses/{name}"]["row_count"] for name in analyses} == (
        ANALYSIS_ROWS
    )
    names = {t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    assert names == {*CATALOGED[Zone.PROCESSED], *CATALOGED[Zone.KPI], *analyses}  # no rental_keys
    athena = aws_env.client("athena")
    executions = athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    assert len(executions) == len(athena_answers.sql) == len(ANALYSES) + 1  # + the rollup's input
    assert f'SELECT * FROM "{DATABASE}"."location_metrics"' in athena_answers.sql
    for name in analyses:
        table = glue.get_table(DatabaseName=DATABASE, Name=name)["Table"]
        location = table["StorageDescriptor"]["Location"]
        assert location == f"s3://{bucket}/analyses/{name}/"
        key = f"analyses/{name}/part-00000.parquet"
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert pq.read_metadata(pa.BufferReader(body)).num_rows == ANALYSIS_ROWS[name]
    rollup = glue.get_table(DatabaseName=DATABASE, Name="city_state_rollup")["Table"]
    assert [c["Name"] for c in rollup["StorageDescriptor"]["Columns"]] == [
        "state",
        "city",
        "locations",
        "total_pickups",
        "total_dropoffs",
        "total_revenue",
    ]

    # IAM: the runner policy allows every call the resources made.
    assert denied([(c.name, c.params) for c in aws_calls.calls], deployment.where()) == []
    assert {"s3:ListObjectsV2", "emr:RunJobFlow", "glue:CreateCrawler"} <= aws_calls.names


def test_a_kpi_only_selection_submits_one_step_for_that_table(
    deployment: Deployment,
    fake_emr: FakeEmr,
    crawls: ScriptedCrawls,
    aws_calls: AwsCalls,
    instance: dg.DagsterInstance,
) -> None:
    """``kpi/daily_metrics+``: one KPI step on the named long-running cluster, one crawl."""
    aws_env, bucket = deployment.aws_env, deployment.bucket
    request = run_job_flow_request(name="car-rental-spark", bucket=bucket)
    cluster_id = aws_env.client("emr").run_job_flow(**request)["JobFlowId"]
    fake_emr.outcomes.append(FakeEmr.run(SimulatedJobs(deployment.sample).kpis))
    crawls.crawls.append(Crawl(crawl_what_is_there))
    selection = [kpi_key("daily_metrics"), catalog_key("daily_metrics")]

    result = dg.materialize(
        ASSETS,
        selection=selection,
        resources=deployment.resources(CAR_RENTAL_EMR_CLUSTER_NAME="car-rental-spark"),
        instance=instance,
        raise_on_error=False,
    )

    assert result.success, _failures(result)
    (call,) = fake_emr.steps
    assert call.cluster_id == cluster_id
    assert call.job_args == [
        "--lake-root",
        f"s3://{bucket}",
        *LAKE_ARGS,
        "--tables",
        "daily_metrics",
    ]
    materialized = _materializations(result)
    assert set(materialized) == {"kpi/daily_metrics", "catalog/daily_metrics"}
    assert materialized["kpi/daily_metrics"]["row_count"] == KPI_ROWS["daily_metrics"]
    assert materialized["kpi/daily_metrics"]["emr_cluster_id"] == cluster_id
    assert materialized["catalog/daily_metrics"]["crawl_status"] == "created"
    assert set(_checks(result)) == {
        key for key in _spec_keys(KPI_CHECKS) if key[0] == "kpi/daily_metrics"
    }
    assert object_keys(bucket, "kpi/") == [
        "kpi/daily_metrics/_SUCCESS",
        "kpi/daily_metrics/part-00000-simulated.snappy.parquet",
    ]
    tables = aws_env.client("glue").get_tables(DatabaseName=DATABASE)["TableList"]
    assert [t["Name"] for t in tables] == ["daily_metrics"]
    state = aws_env.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
    assert state["State"] not in ("TERMINATING", "TERMINATED"), "not the run's to end"
    assert denied([(c.name, c.params) for c in aws_calls.calls], deployment.where()) == []
    assert "emr:ListClusters" in aws_calls.names
    assert "emr:RunJobFlow" not in aws_calls.names


def test_a_simulated_job_that_raises_fails_its_step_at_once(
    deployment: Deployment, fake_emr: FakeEmr, instance: dg.DagsterInstance
) -> None:
    """The processed tables alone on an empty raw zone: the transform finds no landing of its
    first input (as the real job does, it raises), its step FAILED with the traceback as
    stderr, and the run fails with the reason instead of polling a step left RUNNING until
    its timeout."""
    fake_emr.outcomes.append(FakeEmr.run(SimulatedJobs(deployment.sample).transform))

    result = dg.materialize(
        ASSETS,
        selection=[processed_key(name) for name in PROCESSED_TABLES],
        resources=deployment.resources(),
        instance=instance,
        tags=deployment.landed_range(instance),
        raise_on_error=False,
    )

    assert not result.success
    (call,) = fake_emr.steps
    assert call.option("--batches") == FULL_BATCH
    (error,) = fake_emr.errors
    missing = f"s3://{deployment.bucket}/raw/vehicles/{MANIFEST} not found"
    assert missing in error
    step = deployment.aws_env.client("emr").describe_step(
        ClusterId=call.cluster_id, StepId=call.step_id
    )["Step"]
    assert step["Status"]["State"] == "FAILED"
    failure = _failures(result)
    assert "FileNotFoundError" in failure and missing in failure  # the reason, and its stderr


def test_tables_held_back_by_a_blocking_check_are_not_materialized(
    deployment: Deployment, fake_emr: FakeEmr, instance: dg.DagsterInstance
) -> None:
    """A transform whose blocking check failed publishes the rejected rows alone: the run
    records that one materialization (not an implicit one per held-back table) and fails on
    the check, by name."""

    def held_back(call: StepCall, pipes: PipesContext) -> None:
        reporter = PipesReporter(pipes)
        path = f"s3://{deployment.bucket}/processed/{REJECTED_ROWS_TABLE}"
        reporter.report(f"{Zone.PROCESSED}/{REJECTED_ROWS_TABLE}", {"row_count": 3, "path": path})
        for table in SOURCE_TABLES:  # every check of every table, as the real job reports
            asset = f"{Zone.PROCESSED}/{table.name}"
            for check in (Check.ROWS_CONSERVED, Check.PRIMARY_KEY_UNIQUE):
                reporter.check(asset, check, CheckOutcome(True, {}))
            outcome = CheckOutcome(False, {"rows_in": 10, "rows_rejected": 3})
            reporter.check(asset, Check.REJECT_RATE, outcome)
        reporter.check(
            f"{Zone.PROCESSED}/{RENTALS.name}", Check.REFERENCES_KNOWN, CheckOutcome(True)
        )

    fake_emr.outcomes.append(FakeEmr.run(held_back))
    result = dg.materialize(
        ASSETS,
        selection=[processed_key(name) for name in PROCESSED_TABLES],
        resources=deployment.resources(),
        instance=instance,
        tags=deployment.landed_range(instance),
        raise_on_error=False,
    )
    assert not result.success
    materialized = {m.asset_key for m in result.asset_materializations_for_node("processed_tables")}
    assert materialized == {processed_key(REJECTED_ROWS_TABLE)}
    assert "reject_rate_within_limit" in _failures(result)
