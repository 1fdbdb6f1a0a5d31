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

Driven by the test, inside moto's in-process models (never in the code under test), because
moto cannot do it:

* EMR runs nothing: moto cannot run Spark and its steps never finish. ``fake_emr`` makes each
  step's second DescribeStep find it COMPLETED after a simulated job ran. The job reads the
  step's own arguments (lake root, zones, ``--tables``, Pipes bootstrap parameters), writes
  small Parquet files with the contract's columns and types (synthetic rows, no Spark) to
  ``processed/<table>/`` or ``kpi/<table>/``, and reports through Dagster Pipes with the jobs'
  own ``spark_jobs.reporting.PipesReporter``: the materializations (row_count, path, ...) and
  the asset checks that transform_job.py and kpi_job.py report. Its figures are those the real
  job would find: rows in per raw file read back from S3, rejects per reason from the sample's
  planted bad rows, KPI row counts from the Parquet it wrote.
* Glue crawlers do not crawl: ``crawls`` ends each crawl at its second GetCrawler after creating
  one table per folder of the crawled zone that holds Parquet, with the footer's columns.
* Athena runs no SQL and returns no rows unless results are seeded: as each query starts, its
  result is queued in moto (what ``/moto-api/static/athena/query-results`` does), computed by
  running the same SQL with DuckDB over the Parquet files of the Glue tables it names (the
  analyses use SQL both engines accept).

Every AWS call the resources make is recorded and checked against the runner IAM policy
(runner_permissions.py). For speed only, Dagster's Pipes message reader polls every 0.05 s
instead of every second: the full graph then takes about 5 s, the KPI-only run 1 s.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
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
from car_rental_platform.assets.processed import PROCESSED_CHECKS
from car_rental_platform.aws_names import run_job_flow_request
from car_rental_platform.code_bundle import (
    bootstrap_key,
    bootstrap_keys,
    build_bootstrap,
    build_bundle,
)
from car_rental_platform.definitions import ASSETS
from car_rental_platform.raw_records import land
from car_rental_platform.resources.aws import aws_resources
from car_rental_platform.resources.aws.glue_tables import glue_type
from car_rental_platform.sample_data.generator import SampleSummary, generate
from spark_jobs import cli
from spark_jobs.contract import (
    DEFAULT_MAX_REJECT_RATE,
    KPI_BY_NAME,
    KPI_TABLES,
    LOCATIONS,
    OCCASIONAL_SPENDER,
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
    Zone,
)
from spark_jobs.kpi_job import PREVIEW_ROWS, parse_tables
from spark_jobs.markdown import markdown_table
from spark_jobs.quality import CheckOutcome
from spark_jobs.raw_format import MANIFEST
from spark_jobs.reporting import PipesReporter
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
SAMPLE_RENTALS = 200
ALL_KPIS = [t.name for t in KPI_TABLES]
LAKE_ARGS = ["--raw-zone", "raw", "--processed-zone", "processed", "--kpi-zone", "kpi"]


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


def write_spark_output(folder_uri: str, table: pa.Table) -> None:
    """What ``df.write.mode("overwrite").parquet(folder)`` leaves in S3: one part and _SUCCESS."""
    bucket, folder = _split(folder_uri)
    for key in object_keys(bucket, folder + "/"):
        moto_s3().delete_object(bucket, key)
    put_object(bucket, f"{folder}/part-00000-simulated.snappy.parquet", _parquet(table))
    put_object(bucket, f"{folder}/_SUCCESS", b"")


def _data_lines(body: bytes) -> list[str]:
    lines = [line for line in body.decode("utf-8-sig").splitlines() if line.strip()]
    return lines[1:]


@dataclass
class SimulatedJobs:
    """transform_job.py and kpi_job.py, as far as Dagster and the lake can tell (no Spark)."""

    sample: SampleSummary

    def _args(self, call: StepCall, *extra: str) -> Any:
        parser = cli.base_parser("simulated")
        for option in extra:
            parser.add_argument(option)
        return cli.parse(parser, call.job_args)

    def transform(self, call: StepCall, pipes: PipesContext) -> None:
        args = self._args(call)
        reporter = PipesReporter(pipes)
        rejected_by_table: dict[str, dict[str, int]] = {}
        rows: dict[str, list[str]] = {}
        for table in SOURCE_TABLES:
            bucket, folder = _split(cli.lake_path(args, "raw_zone", table.raw_name))
            canonical = object_bytes(bucket, f"{folder}/{table.file_name}")
            rows[table.name] = _data_lines(canonical)
            rejected = {
                reason: count
                for (name, reason), count in sorted(self.sample.planted.items())
                if name == table.name
            }
            rejected_by_table[table.name] = rejected
            rows_in = len(rows[table.name])
            kept = rows_in - sum(rejected.values())
            path = cli.lake_path(args, "processed_zone", table.name)
            write_spark_output(path, synthetic_table(table.processed_columns, kept))
            reporter.report(
                f"{Zone.PROCESSED}/{table.name}",
                {
                    "row_count": kept,
                    "rows_in": rows_in,
                    "rows_rejected": rows_in - kept,
                    "rejected_by_reason": rejected,
                    "path": path,
                },
            )
        total = sum(sum(r.values()) for r in rejected_by_table.values())
        path = cli.lake_path(args, "processed_zone", REJECTED_ROWS_TABLE)
        write_spark_output(path, synthetic_table(REJECTED_ROWS_COLUMNS, total))
        reporter.report(
            f"{Zone.PROCESSED}/{REJECTED_ROWS_TABLE}",
            {"row_count": total, "rejected_by_table": rejected_by_table, "path": path},
        )
        for table in SOURCE_TABLES:
            rows_in = len(rows[table.name])
            kept = rows_in - sum(rejected_by_table[table.name].values())
            asset = f"{Zone.PROCESSED}/{table.name}"
            outcome = CheckOutcome(True, {"rows": kept, "duplicate_rows": 0, "key": table.key})
            reporter.check(asset, Check.PRIMARY_KEY_UNIQUE, outcome)
            conserved = {"raw_rows": rows_in, "kept_rows": kept, "rejected_rows": rows_in - kept}
            reporter.check(asset, Check.ROWS_CONSERVED, CheckOutcome(True, conserved))
            rate = {"rows_in": rows_in, "rows_rejected": rows_in - kept}
            reporter.check(asset, Check.REJECT_RATE, CheckOutcome(True, rate))
        reporter.check(
            f"{Zone.PROCESSED}/{RENTALS.name}",
            Check.REFERENCES_KNOWN,
            _unknown_references(rows),
        )

    def kpis(self, call: StepCall, pipes: PipesContext) -> None:
        args = self._args(call, "--tables")
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


def _unknown_references(rows: dict[str, list[str]]) -> CheckOutcome:
    """What quality.unknown_references measures, counted on the raw lines (a warning)."""

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
    """One table per folder of the crawled zone holding Parquet, columns from its footer."""
    bucket, zone = _split(crawler_target(crawler))
    folders: dict[str, list[str]] = {}
    for key in object_keys(bucket, zone):
        table, _, name = key[len(zone) :].partition("/")
        if name.endswith(".parquet"):
            folders.setdefault(table, []).append(key)
    for table, keys in sorted(folders.items()):
        schema = pq.read_schema(pa.BufferReader(object_bytes(bucket, keys[0])))
        table_input = {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet"},
            "PartitionKeys": [],
            "StorageDescriptor": {
                "Columns": [{"Name": f.name, "Type": glue_type(f.type)} for f in schema],
                "Location": f"s3://{bucket}/{zone}{table}/",
            },
        }
        if table in backend.get_database(crawler.database_name).tables:
            backend.update_table(crawler.database_name, table, table_input)
        else:
            backend.create_table(crawler.database_name, table, table_input)


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

    result = dg.materialize(
        ASSETS, resources=deployment.resources(), instance=instance, raise_on_error=False
    )

    assert athena_answers.errors == []
    assert result.success, _failures(result)
    materialized = _materializations(result)
    s3 = aws_env.client("s3")

    # Raw: each landed export copied to raw/<raw_name>/<file> (rentals: into the folder of
    # its batch, raw/rental_transactions/batch=full/), its data lines counted.
    for table in SOURCE_TABLES:
        folder = f"raw/{table.raw_name}" + ("/batch=full" if table is RENTALS else "")
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
            parquet = f"{zone.value}/{table}/part-00000-simulated.snappy.parquet"
            body = s3.get_object(Bucket=bucket, Key=parquet)["Body"].read()
            assert pq.read_metadata(pa.BufferReader(body)).num_rows == metadata["row_count"]
            assert metadata["emr_cluster_id"] == call.cluster_id
            assert metadata["emr_step_id"] == call.step_id
            assert metadata["emr_cluster_url"] == console + call.cluster_id
    for table in SOURCE_TABLES:
        metadata = materialized[f"processed/{table.name}"]
        planted = sum(n for (name, _), n in sample.planted.items() if name == table.name)
        assert metadata["rows_in"] == sample.rows[table.file_name]
        assert metadata["rows_rejected"] == planted
        assert metadata["row_count"] == sample.rows[table.file_name] - planted
    assert materialized["processed/rejected_rows"]["row_count"] == sum(sample.planted.values())
    assert {name: materialized[f"kpi/{name}"]["row_count"] for name in ALL_KPIS} == KPI_ROWS

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
    glue = aws_env.client("glue")
    role = f"arn:aws:iam::{ACCOUNT}:role/car-rental-glue-crawler-role"
    for zone, tables in CATALOGED.items():
        crawler = glue.get_crawler(Name=f"car-rental-{zone.value}-crawler")["Crawler"]
        assert crawler["Targets"]["S3Targets"][0]["Path"] == f"s3://{bucket}/{zone.value}/"
        assert crawler["Role"] == role
        assert crawler["LastCrawl"]["Status"] == "COMPLETED"
        for table in tables:
            metadata = materialized[f"catalog/{table}"]
            assert metadata["crawl_status"] == "created"
            assert metadata["dagster/table_name"] == f"{DATABASE}.{table}"
            assert metadata["location"] == f"s3://{bucket}/{zone.value}/{table}"
            assert sorted(metadata["zone_tables_created"]) == sorted(tables)
    schema = materialized["catalog/rentals"]["dagster/column_schema"]
    assert [c.name for c in schema.columns] == [c.name for c in RENTALS.processed_columns]
    assert crawls.crawls == []

    # Analyses: queried through Athena, written back as Parquet and Glue tables.
    analyses = [a.name for a in ANALYSES] + ["city_state_rollup"]
    assert {name: materialized[f"analyses/{name}"]["row_count"] for name in analyses} == (
        ANALYSIS_ROWS
    )
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
