"""The lakehouse IO manager on the local twin (DuckDB): round trips, partitions, safety."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from car_rental_platform.resources.duckdb_catalog import DuckDBQueryEngine
from car_rental_platform.resources.io_manager import (
    LakehouseIOManager,
    PartitionDimension,
    where_clause,
)
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.local import local_resources
from car_rental_platform.resources.query import (
    UnsafeIdentifierError,
    quote_identifier,
    validate_identifier,
)
from tests.graph_fixtures import MaterializedGraph


def resources(tmp_path: Path) -> dict[str, object]:
    lake = LocalLake(root=str(tmp_path / "lake"))
    engine = DuckDBQueryEngine(database_path=str(tmp_path / "catalog.duckdb"))
    return {"io_manager": LakehouseIOManager(lake=lake, engine=engine), "engine": engine}


ODD = pd.DataFrame(
    {
        "id": ["0042", "6e61610976"],
        "has space": [1.5, None],
        'it"s': ["a'b", 'c"d'],
        "day": [date(2024, 1, 1), date(2024, 1, 2)],
    }
)


@dg.asset(key=["analyses", "odd_table"])
def odd_table() -> pd.DataFrame:
    return ODD


@dg.asset(key=["analyses", "odd_copy"])
def odd_copy(odd_table: pd.DataFrame) -> pd.DataFrame:
    return odd_table


def test_pandas_round_trip_writes_parquet_and_registers_a_view(tmp_path: Path) -> None:
    res = resources(tmp_path)
    result = dg.materialize([odd_table, odd_copy], resources=res)
    assert result.success
    loaded = result.output_for_node("analyses__odd_copy")
    pd.testing.assert_frame_equal(
        loaded.astype({"day": "datetime64[us]"}),
        ODD.astype({"day": "datetime64[us]"}),
        check_dtype=False,
    )
    assert (tmp_path / "lake" / "analyses" / "odd_table" / "part-00000.parquet").is_file()
    view = res["engine"].query('SELECT "it""s" FROM car_rental_db.odd_table ORDER BY id')
    assert view.iloc[:, 0].tolist() == ["a'b", 'c"d']
    metadata = result.asset_materializations_for_node("analyses__odd_table")[0].metadata
    assert metadata["row_count"].value == 2
    assert metadata["dagster/table_name"].value == "car_rental_db.odd_table"
    assert [c.name for c in metadata["dagster/column_schema"].schema.columns] == list(ODD.columns)

    again = dg.materialize([odd_table], resources=res)  # idempotent: replaced, not appended
    assert again.success
    assert res["engine"].query("SELECT count(*) AS n FROM car_rental_db.odd_table").n[0] == 2


DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


@dg.asset(key=["analyses", "daily_sales"], partitions_def=DAILY,
          metadata={"partition_expr": "sale_date"})  # fmt: skip
def daily_sales(context: dg.AssetExecutionContext) -> pd.DataFrame:
    day = pd.Timestamp(context.partition_key).date()
    return pd.DataFrame({"sale_date": [day, day], "amount": [1.0, 2.0]})


@dg.asset(key=["analyses", "daily_total"], partitions_def=DAILY,
          metadata={"partition_expr": "sale_date"})  # fmt: skip
def daily_total(daily_sales: pd.DataFrame) -> pd.DataFrame:
    """Loads only its own day's partition of daily_sales."""
    return pd.DataFrame(
        {
            "sale_date": daily_sales["sale_date"].unique()[:1],
            "days": [daily_sales["sale_date"].nunique()],
            "rows": [len(daily_sales)],
        }
    )


def test_a_table_stored_from_a_query_keeps_its_decimals_and_dates(tmp_path: Path) -> None:
    """DuckDB's .df() gives float64 and datetime64; the stored table keeps decimal and date."""
    res = resources(tmp_path)
    engine = res["engine"]

    @dg.asset(key=["analyses", "daily_revenue"])
    def daily_revenue() -> pd.DataFrame:
        return engine.query(
            "SELECT DATE '2024-01-02' AS rental_date, "
            "0.10::DECIMAL(18,2) + 0.20::DECIMAL(18,2) AS total_revenue, "
            "NULL::DECIMAL(18,2) AS refunds"
        )

    assert dg.materialize([daily_revenue], resources=res).success

    path = tmp_path / "lake" / "analyses" / "daily_revenue" / "part-00000.parquet"
    stored = pq.read_table(path)
    assert stored.schema.field("rental_date").type == pa.date32()
    assert stored.schema.field("total_revenue").type == pa.decimal128(19, 2)
    assert stored.to_pylist() == [
        {"rental_date": date(2024, 1, 2), "total_revenue": Decimal("0.30"), "refunds": None}
    ]
    view = engine.query("DESCRIBE car_rental_db.daily_revenue")
    assert dict(zip(view["column_name"], view["column_type"], strict=True)) == {
        "rental_date": "DATE",
        "total_revenue": "DECIMAL(19,2)",
        "refunds": "DECIMAL(18,2)",
    }


def test_partitioned_output_and_partition_filtered_load(tmp_path: Path) -> None:
    res = resources(tmp_path)
    for day in ("2024-01-01", "2024-01-02", "2024-01-02"):
        assert dg.materialize([daily_sales], partition_key=day, resources=res).success
    folder = tmp_path / "lake" / "analyses" / "daily_sales"
    assert sorted(p.name for p in folder.iterdir()) == [
        "sale_date=2024-01-01",
        "sale_date=2024-01-02",
    ]
    everything = res["engine"].query("SELECT * FROM car_rental_db.daily_sales")
    assert len(everything) == 4  # re-running 2024-01-02 replaced its partition

    result = dg.materialize(
        [daily_sales, daily_total],
        partition_key="2024-01-02",
        resources=res,
        selection=[dg.AssetKey(["analyses", "daily_total"])],
    )
    assert result.success
    total = result.output_for_node("analyses__daily_total")
    assert total[["days", "rows"]].to_dict("records") == [{"days": 1, "rows": 2}]
    assert str(total["sale_date"].iloc[0])[:10] == "2024-01-02"


def test_spark_written_table_loads_through_the_io_manager(graph: MaterializedGraph) -> None:
    @dg.asset(ins={"daily": dg.AssetIn(["kpi", "daily_metrics"])})
    def consumer(daily: pd.DataFrame) -> None:
        assert len(daily) > 0

    resources = local_resources(graph.settings)
    result = dg.materialize(
        [consumer, dg.AssetSpec(["kpi", "daily_metrics"])],
        resources=resources,
        selection=[dg.AssetKey("consumer")],
    )
    assert result.success
    expected = graph.query("SELECT count(*) AS n FROM car_rental_db.daily_metrics").n[0]
    loaded = resources["engine"].query(
        "SELECT * FROM car_rental_db.daily_metrics ORDER BY rental_date"
    )
    assert len(loaded) == expected
    assert list(loaded.columns)[:3] == ["rental_date", "total_transactions", "total_revenue"]


HOSTILE = 'x"; DROP TABLE t; --'


def test_identifiers_are_quoted_so_no_name_breaks_out() -> None:
    assert quote_identifier('a"b') == '"a""b"'
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT 1 AS v")
    row = connection.execute(f"SELECT v AS {quote_identifier(HOSTILE)} FROM t")
    assert [d[0] for d in row.description] == [HOSTILE]
    assert connection.execute("SELECT count(*) FROM t").fetchone() == (1,)
    with pytest.raises(UnsafeIdentifierError):
        validate_identifier(HOSTILE, "table")
    with pytest.raises(UnsafeIdentifierError):
        quote_identifier("")


def test_partition_values_are_escaped() -> None:
    clause = where_clause(PartitionDimension("city", ["Lyon", "O'Hare'); DROP"]))
    assert clause == "\"city\" IN ('Lyon', 'O''Hare''); DROP')"
    with pytest.raises(UnsafeIdentifierError):
        where_clause(PartitionDimension("city = city OR 1", ["x"]))
