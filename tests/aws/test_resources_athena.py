"""AthenaQueryEngine and the lakehouse IO manager on it, against the moto server.

moto runs no SQL: a query succeeds at once and returns the rows seeded beforehand through moto's
own API (``POST /moto-api/static/athena/query-results``, popped one result per query, and also
written by moto as the CSV result file at the query's OutputLocation). Where moto falls short,
the test drives it, inside the in-process server, never in the resource:

* GetQueryResults ignores MaxResults and never pages: ``paged_results`` makes it serve pages
  of MaxResults rows with a NextToken, as Athena does, and counts the pages served;
* a query cannot fail: ``failing_queries`` makes GetQueryExecution report FAILED with a
  StateChangeReason and AthenaError for queries containing a marker;
* a query that never finishes uses moto's public state-manager API (manual progression).
"""

import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.athena.responses import AthenaResponse

from car_rental_platform.resources.aws import (
    AthenaQueryEngine,
    AthenaQueryError,
    AthenaTimeoutError,
    S3Lake,
    TableRegistrationError,
)
from car_rental_platform.resources.aws.athena import parse_result_csv
from car_rental_platform.resources.aws.glue_tables import glue_type, partition_folders
from car_rental_platform.resources.io_manager import LakehouseIOManager
from car_rental_platform.resources.query import UnsafeIdentifierError
from tests.aws.support import AwsEnv, moto_api, seed_results

DATABASE = "car_rental_db"


@pytest.fixture
def bucket(aws_env: AwsEnv) -> str:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)
    aws_env.client("athena").create_work_group(
        Name="car-rental",
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{aws_env.bucket}/athena_results/"}
        },
    )
    return aws_env.bucket


def _engine(aws_env: AwsEnv, **settings: Any) -> AthenaQueryEngine:
    return AthenaQueryEngine(
        bucket=aws_env.bucket,
        region_name=aws_env.region,
        endpoint_url=aws_env.endpoint_url,
        poll_interval_seconds=0,
        max_poll_interval_seconds=0,
        **settings,
    )


@dataclass
class Pages:
    served: int = 0


@pytest.fixture
def paged_results(monkeypatch: pytest.MonkeyPatch) -> Pages:
    pages = Pages()

    def get_query_results(response: AthenaResponse) -> str:
        result = response.athena_backend.get_query_results(
            response._get_param("QueryExecutionId")
        ).to_dict()
        rows = result["ResultSet"]["Rows"]
        start = int(response._get_param("NextToken") or 0)
        size = int(response._get_param("MaxResults") or 1000)
        result["ResultSet"]["Rows"] = rows[start : start + size]
        if start + size < len(rows):
            result["NextToken"] = str(start + size)
        pages.served += 1
        return json.dumps(result)

    monkeypatch.setattr(AthenaResponse, "get_query_results", get_query_results)
    return pages


@pytest.fixture
def failing_queries(monkeypatch: pytest.MonkeyPatch) -> str:
    marker = "/* fail */"
    original = AthenaResponse.get_query_execution

    def get_query_execution(response: AthenaResponse) -> str:
        result = json.loads(original(response))
        execution = result["QueryExecution"]
        if marker in execution["Query"]:
            execution["Status"].update(
                State="FAILED",
                StateChangeReason="COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved",
                AthenaError={"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False},
            )
        return json.dumps(result)

    monkeypatch.setattr(AthenaResponse, "get_query_execution", get_query_execution)
    return marker


TYPED_COLUMNS = {
    "location_name": "varchar",
    "location_id": "integer",
    "total_pickups": "bigint",
    "avg_amount": "double",
    "total_revenue": "decimal",
    "rental_date": "date",
    "last_seen": "timestamp",
    "is_active": "boolean",
}
TYPED_ROWS: list[list[str | None]] = [
    ["Airport", "7", "12", "12.5", "1234.56", "2024-01-02", "2024-01-02 03:04:05.123", "true"],
    [None, None, None, None, None, None, None, None],
]
EXPECTED = pd.DataFrame(
    {
        "location_name": pd.Series(["Airport", None], dtype=object),
        "location_id": pd.array([7, None], dtype="Int32"),
        "total_pickups": pd.array([12, None], dtype="Int64"),
        "avg_amount": [12.5, math.nan],
        "total_revenue": [1234.56, math.nan],
        "rental_date": pd.to_datetime(["2024-01-02", None]).astype("datetime64[us]"),
        "last_seen": pd.to_datetime(["2024-01-02 03:04:05.123", None]).astype("datetime64[us]"),
        "is_active": pd.array([True, None], dtype="boolean"),
    }
)


def test_small_result_is_paged_through_the_api_and_typed(
    aws_env: AwsEnv, bucket: str, paged_results: Pages
) -> None:
    seed_results(aws_env, TYPED_COLUMNS, TYPED_ROWS)

    frame = _engine(aws_env).query("SELECT * FROM car_rental_db.location_metrics")

    pd.testing.assert_frame_equal(frame, EXPECTED)
    assert paged_results.served == 1
    (query_id,) = aws_env.client("athena").list_query_executions()["QueryExecutionIds"]
    execution = aws_env.client("athena").get_query_execution(QueryExecutionId=query_id)
    assert execution["QueryExecution"]["QueryExecutionContext"] == {"Database": DATABASE}
    assert execution["QueryExecution"]["WorkGroup"] == "car-rental"
    assert execution["QueryExecution"]["ResultConfiguration"]["OutputLocation"] == (
        f"s3://{bucket}/athena_results/{query_id}.csv"
    )


def test_frames_have_the_dtypes_duckdb_gives_locally(aws_env: AwsEnv, bucket: str) -> None:
    columns = {"n": "integer", "big": "bigint", "ok": "boolean", "day": "date", "amount": "decimal"}
    seed_results(aws_env, columns, [["1", "2", "true", "2024-01-02", "3.50"]])

    frame = _engine(aws_env).query("SELECT ...")

    local = duckdb.sql(
        "SELECT 1::INTEGER AS n, 2::BIGINT AS big, true AS ok, DATE '2024-01-02' AS day, "
        "3.50::DECIMAL(18,2) AS amount"
    ).df()
    pd.testing.assert_frame_equal(frame, local)


def test_a_table_stored_from_a_query_keeps_its_decimals_and_dates(
    aws_env: AwsEnv, bucket: str
) -> None:
    """Frames hold float64 and datetime64 (as DuckDB's do); the stored table keeps SQL types."""
    columns = {"rental_date": "date", "total_revenue": "decimal(18,2)", "n": "bigint"}
    seed_results(aws_env, columns, [["2024-01-02", "1234.50", "3"], ["2024-01-03", None, "0"]])
    engine = _engine(aws_env)

    @dg.asset(key=["analyses", "daily_revenue"])
    def daily_revenue() -> pd.DataFrame:
        return engine.query("SELECT rental_date, total_revenue, n FROM t")

    resources = {"io_manager": LakehouseIOManager(lake=_lake(aws_env), engine=engine)}
    assert dg.materialize([daily_revenue], resources=resources).success

    descriptor = _glue_table(aws_env, "daily_revenue")["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in descriptor["Columns"]] == [
        ("rental_date", "date"),
        ("total_revenue", "decimal(18,2)"),
        ("n", "bigint"),
    ]
    body = aws_env.client("s3").get_object(
        Bucket=bucket, Key="analyses/daily_revenue/part-00000.parquet"
    )["Body"]
    assert pq.read_table(io.BytesIO(body.read())).to_pylist()[0]["total_revenue"] == (
        Decimal("1234.50")
    )


def test_result_file_in_s3_gives_the_same_frame(aws_env: AwsEnv, bucket: str) -> None:
    seed_results(aws_env, TYPED_COLUMNS, TYPED_ROWS)
    frame = _engine(aws_env, read_results_from_s3=True).query("SELECT 1")
    pd.testing.assert_frame_equal(frame, EXPECTED)


def test_empty_strings_and_nulls_stay_apart_in_both_result_paths(
    aws_env: AwsEnv, bucket: str
) -> None:
    """Athena's CSV quotes "" and leaves NULL bare; the API gives VarCharValue "" or none.

    (moto writes embedded quotes undoubled, unlike Athena: test_result_csv_rows has those.)
    """
    rows: list[list[str | None]] = [["", None, "one, two\nthree"], [None, "", "x"]]
    columns = {"a": "varchar", "b": "varchar", "c": "varchar"}
    frames = []
    for read_results_from_s3 in (True, False):
        seed_results(aws_env, columns, rows)
        engine = _engine(aws_env, read_results_from_s3=read_results_from_s3)
        frames.append(engine.query("SELECT a, b, c FROM t"))

    for frame in frames:
        assert frame.to_dict("list") == {
            "a": ["", None],
            "b": [None, ""],
            "c": ["one, two\nthree", "x"],
        }


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ('"a","b"\n"1",""\n', [["a", "b"], ["1", ""]]),
        ('"1",,""\r\n,"2",\n', [["1", None, ""], [None, "2", None]]),
        ('"x"', [["x"]]),
        ('"say ""hi"", twice\nthen stop",""\n', [['say "hi", twice\nthen stop', ""]]),
        ("", []),
    ],
)
def test_result_csv_rows(text: str, rows: list[list[str | None]]) -> None:
    assert parse_result_csv(text) == rows


def test_large_result_is_read_from_the_csv_file(
    aws_env: AwsEnv, bucket: str, paged_results: Pages
) -> None:
    rows: list[list[str | None]] = [[f"user-{n:04}", str(n)] for n in range(2500)]
    seed_results(aws_env, {"user_id": "varchar", "total_rentals": "bigint"}, rows)

    frame = _engine(aws_env, api_max_rows=500).query("SELECT user_id, total_rentals FROM t")

    assert paged_results.served == 1
    assert len(frame) == 2500
    assert frame["user_id"].iloc[-1] == "user-2499"
    assert frame["total_rentals"].dtype == "int64"
    assert frame["total_rentals"].sum() == sum(range(2500))


def test_results_up_to_the_limit_are_paged_through_the_api(
    aws_env: AwsEnv, bucket: str, paged_results: Pages
) -> None:
    rows: list[list[str | None]] = [[str(n)] for n in range(2500)]
    seed_results(aws_env, {"n": "integer"}, rows)

    frame = _engine(aws_env, api_max_rows=5000).query("SELECT n FROM t")

    assert paged_results.served == 3
    assert frame["n"].tolist() == list(range(2500))


def test_failed_query_raises_with_athenas_reason(
    aws_env: AwsEnv, bucket: str, failing_queries: str
) -> None:
    with pytest.raises(AthenaQueryError) as raised:
        _engine(aws_env).query(f"SELECT nope FROM car_rental_db.users {failing_queries}")

    message = str(raised.value)
    assert "FAILED after" in message
    assert "[1006]" in message
    assert "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved" in message
    assert "SQL: SELECT nope FROM car_rental_db.users" in message


@pytest.fixture
def queries_never_finish(aws_env: AwsEnv) -> Iterator[None]:
    transition = {"model_name": "athena::execution"}
    moto_api(
        aws_env,
        "state-manager/set-transition",
        {**transition, "transition": {"progression": "manual", "times": 1_000_000}},
    )
    yield
    moto_api(aws_env, "state-manager/unset-transition", transition)


def test_query_timeout_stops_the_query_and_says_how_long(
    aws_env: AwsEnv, bucket: str, queries_never_finish: None
) -> None:
    with pytest.raises(AthenaTimeoutError) as raised:
        _engine(aws_env, timeout_seconds=1).query("SELECT 1")

    assert "still QUEUED after" in str(raised.value)
    assert "s (timeout 1s); stopped it" in str(raised.value)
    athena = aws_env.client("athena")
    (query_id,) = athena.list_query_executions()["QueryExecutionIds"]
    status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
    assert status["State"] == "CANCELLED"


# --- Glue tables and the IO manager ---------------------------------------------------------


def _lake(aws_env: AwsEnv) -> S3Lake:
    return S3Lake(
        bucket=aws_env.bucket, region_name=aws_env.region, endpoint_url=aws_env.endpoint_url
    )


def _resources(aws_env: AwsEnv) -> dict[str, Any]:
    lake, engine = _lake(aws_env), _engine(aws_env)
    return {"io_manager": LakehouseIOManager(lake=lake, engine=engine)}


@dg.asset(key=["analyses", "top_locations"])
def top_locations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "location_id": pd.array([7, 3], dtype="int32"),
            "city": ["Lyon", "Paris"],
            "total_revenue": [1234.5, 99.0],
            "rentals": pd.array([12, 3], dtype="int64"),
        }
    )


CITIES = dg.StaticPartitionsDefinition(["Lyon", "Paris"])


@dg.asset(
    key=["analyses", "city_revenue"], partitions_def=CITIES, metadata={"partition_expr": "city"}
)
def city_revenue(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"city": [context.partition_key], "revenue": [10.5]})


@dg.asset(key=["analyses", "city_report"], partitions_def=CITIES)
def city_report(city_revenue: pd.DataFrame) -> None:
    assert city_revenue.to_dict("records") == [{"city": "Paris", "revenue": 10.5}]


DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")


@dg.asset(
    key=["analyses", "daily_revenue"],
    partitions_def=DAYS,
    metadata={"partition_expr": "rental_date"},
)
def daily_revenue() -> pd.DataFrame:
    return pd.DataFrame({"revenue": [1.0]})


@dg.asset(key=["analyses", "revenue_report"])
def revenue_report(top_locations: pd.DataFrame) -> None:
    assert top_locations["city"].tolist() == ["Lyon", "Paris"]


def _glue_table(aws_env: AwsEnv, name: str) -> dict[str, Any]:
    return aws_env.client("glue").get_table(DatabaseName=DATABASE, Name=name)["Table"]


def _partitions(aws_env: AwsEnv, name: str) -> list[tuple[list[str], str]]:
    response = aws_env.client("glue").get_partitions(DatabaseName=DATABASE, TableName=name)
    return sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in response["Partitions"])


def test_io_manager_writes_parquet_and_registers_the_glue_table(
    aws_env: AwsEnv, bucket: str
) -> None:
    result = dg.materialize([top_locations], resources=_resources(aws_env))

    assert result.success
    table = _glue_table(aws_env, "top_locations")
    descriptor = table["StorageDescriptor"]
    assert descriptor["Location"] == f"s3://{bucket}/analyses/top_locations/"
    assert [(c["Name"], c["Type"]) for c in descriptor["Columns"]] == [
        ("location_id", "int"),
        ("city", "string"),
        ("total_revenue", "double"),
        ("rentals", "bigint"),
    ]
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert table["PartitionKeys"] == []
    assert table["TableType"] == "EXTERNAL_TABLE"
    body = (
        aws_env.client("s3")
        .get_object(Bucket=bucket, Key="analyses/top_locations/part-00000.parquet")["Body"]
        .read()
    )
    assert pq.read_table(io.BytesIO(body)).num_rows == 2
    (materialization,) = result.asset_materializations_for_node("analyses__top_locations")
    assert materialization.metadata["row_count"] == dg.IntMetadataValue(2)

    # A second write with another schema updates the table in place.
    @dg.asset(key=["analyses", "top_locations"])
    def top_locations_v2() -> pd.DataFrame:
        return pd.DataFrame({"location_id": pd.array([1], dtype="int64"), "note": ["x"]})

    assert dg.materialize([top_locations_v2], resources=_resources(aws_env)).success
    columns = _glue_table(aws_env, "top_locations")["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        ("location_id", "bigint"),
        ("note", "string"),
    ]


def test_io_manager_loads_inputs_through_athena(aws_env: AwsEnv, bucket: str) -> None:
    resources = _resources(aws_env)
    assert dg.materialize([top_locations], resources=resources).success
    columns = {"location_id": "integer", "city": "varchar"}
    seed_results(aws_env, columns, [["7", "Lyon"], ["3", "Paris"]])

    result = dg.materialize(
        [top_locations, revenue_report], resources=resources, selection=[revenue_report]
    )

    assert result.success
    athena = aws_env.client("athena")
    (query_id,) = athena.list_query_executions()["QueryExecutionIds"]
    query = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
    assert query == 'SELECT * FROM "car_rental_db"."top_locations"'


def test_partitioned_outputs_register_partitions_and_loads_filter_them(
    aws_env: AwsEnv, bucket: str
) -> None:
    resources = _resources(aws_env)
    for city in ("Paris", "Lyon"):
        assert dg.materialize([city_revenue], partition_key=city, resources=resources).success

    table = _glue_table(aws_env, "city_revenue")
    assert table["PartitionKeys"] == [{"Name": "city", "Type": "string"}]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["revenue"]
    assert _partitions(aws_env, "city_revenue") == [
        (["Lyon"], f"s3://{bucket}/analyses/city_revenue/city=Lyon/"),
        (["Paris"], f"s3://{bucket}/analyses/city_revenue/city=Paris/"),
    ]

    seed_results(aws_env, {"city": "varchar", "revenue": "double"}, [["Paris", "10.5"]])
    result = dg.materialize(
        [city_revenue, city_report],
        partition_key="Paris",
        resources=resources,
        selection=[city_report],
    )
    assert result.success
    athena = aws_env.client("athena")
    (query_id,) = athena.list_query_executions()["QueryExecutionIds"]
    query = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
    assert query == ('SELECT * FROM "car_rental_db"."city_revenue" WHERE "city" IN (\'Paris\')')


def test_date_partitions_and_vanished_partitions(aws_env: AwsEnv, bucket: str) -> None:
    resources = _resources(aws_env)
    for day in ("2024-01-01", "2024-01-02"):
        assert dg.materialize([daily_revenue], partition_key=day, resources=resources).success
    table = _glue_table(aws_env, "daily_revenue")
    assert table["PartitionKeys"] == [{"Name": "rental_date", "Type": "date"}]
    assert [values for values, _ in _partitions(aws_env, "daily_revenue")] == [
        ["2024-01-01"],
        ["2024-01-02"],
    ]

    _lake(aws_env).delete_prefix("analyses/daily_revenue/rental_date=2024-01-01/")
    assert dg.materialize([daily_revenue], partition_key="2024-01-02", resources=resources).success
    assert [values for values, _ in _partitions(aws_env, "daily_revenue")] == [["2024-01-02"]]


def test_register_validates_names_and_needs_parquet(aws_env: AwsEnv, bucket: str) -> None:
    lake = _lake(aws_env)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"bad name": [1]}), buffer)
    lake.write_bytes(buffer.getvalue(), "analyses/odd/part-0.parquet")
    with _engine(aws_env).connect(write=True) as session:
        with pytest.raises(UnsafeIdentifierError, match="column name 'bad name'"):
            session.register_table(table="odd", location=lake.table_uri("analyses", "odd"))
        with pytest.raises(UnsafeIdentifierError, match="table name"):
            session.register_table(table="x; DROP", location=lake.table_uri("analyses", "odd"))
        with pytest.raises(TableRegistrationError, match="no Parquet files under"):
            session.register_table(table="empty", location=lake.table_uri("analyses", "empty"))


def test_drop_table(aws_env: AwsEnv, bucket: str) -> None:
    assert dg.materialize([top_locations], resources=_resources(aws_env)).success
    with _engine(aws_env).connect(write=True) as session:
        session.drop_table(table="top_locations")
        session.drop_table(table="top_locations")
    tables = aws_env.client("glue").get_tables(DatabaseName=DATABASE)["TableList"]
    assert tables == []


def test_glue_types_of_parquet_columns() -> None:
    assert glue_type(pa.decimal128(18, 2)) == "decimal(18,2)"
    assert glue_type(pa.timestamp("us", tz="UTC")) == "timestamp"
    assert glue_type(pa.date32()) == "date"
    assert glue_type(pa.dictionary(pa.int32(), pa.string())) == "string"
    assert glue_type(pa.list_(pa.int64())) == "array<bigint>"
    assert glue_type(pa.struct([("a", pa.int8()), ("b", pa.bool_())])) == (
        "struct<a:tinyint,b:boolean>"
    )
    assert glue_type(pa.map_(pa.string(), pa.float32())) == "map<string,float>"


def test_partition_folders_are_read_like_hive_writes_them() -> None:
    keys = [
        "kpi/t/city=New%20York/part-0.parquet",
        "kpi/t/city=Lyon/sub/part-1.parquet",
        "kpi/t/other=x/part-2.parquet",
        "kpi/t/part-3.parquet",
    ]
    assert partition_folders(keys, "kpi/t/", ["city"]) == {
        ("New York",): "city=New%20York/",
        ("Lyon",): "city=Lyon/",
    }
