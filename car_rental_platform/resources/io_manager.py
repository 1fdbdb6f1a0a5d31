"""The lakehouse IO manager: pandas in and out of lake tables through the catalog's SQL.

Shaped like Dagster's own warehouse IO managers (it *is* a ``DbIOManager``): a ``DbClient``
that knows the lake and the query engine, and a ``DbTypeHandler`` for pandas. Outputs are
written as Parquet under ``<lake>/<zone>/<table>/`` (one folder per partition) and registered
in the catalog; inputs are read with SQL, filtered to the partitions asked for. The zone is
the asset key's prefix and the table its last part, so ``analyses/top_locations`` lives in
``<lake>/analyses/top_locations/`` and is ``car_rental_db.top_locations``. Assets whose data
Spark writes return only metadata and are read through it downstream all the same.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster._core.storage.db_io_manager import (
    DbClient,
    DbIOManager,
    DbTypeHandler,
    TablePartitionDimension,
    TableSlice,
)

from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.query import (
    SQL_TYPES_ATTR,
    QueryEngine,
    QuerySession,
    quote_identifier,
    validate_identifier,
)
from spark_jobs.markdown import markdown_table

PREVIEW_ROWS = 10


@dataclass(frozen=True)
class LakeConnection:
    session: QuerySession
    lake: LakeStorage
    engine: QueryEngine


def partition_folder(dimension: TablePartitionDimension, key: str) -> str:
    """Hive-style folder of one partition: ``<column>=<key>``."""
    column = validate_identifier(dimension.partition_expr, "partition column")
    if "/" in key or key in ("", ".", ".."):
        raise ValueError(f"partition key {key!r} cannot name a folder")
    return f"{column}={key}"


def partition_types(table_slice: TableSlice) -> dict[str, str]:
    """SQL type of each partition column: DATE for time windows, VARCHAR otherwise."""
    return {
        d.partition_expr: "DATE" if isinstance(d.partitions, dg.TimeWindow) else "VARCHAR"
        for d in table_slice.partition_dimensions or []
    }


def where_clause(dimension: TablePartitionDimension) -> str:
    """Filter on one partition column; values are escaped, the column is quoted."""
    column = quote_identifier(validate_identifier(dimension.partition_expr, "partition column"))
    if isinstance(dimension.partitions, dg.TimeWindow):
        start = dimension.partitions.start.strftime("%Y-%m-%d %H:%M:%S")
        end = dimension.partitions.end.strftime("%Y-%m-%d %H:%M:%S")
        return f"{column} >= TIMESTAMP '{start}' AND {column} < TIMESTAMP '{end}'"
    values = ", ".join("'" + str(v).replace("'", "''") + "'" for v in dimension.partitions)
    return f"{column} IN ({values})"


class LakeDbClient(DbClient):
    """Table slices of the lake, seen through the query engine."""

    def __init__(self, lake: LakeStorage, engine: QueryEngine) -> None:
        self.lake = lake
        self.engine = engine

    @contextmanager
    def connect(
        self, context: dg.OutputContext | dg.InputContext, table_slice: TableSlice
    ) -> Iterator[LakeConnection]:
        with self.engine.connect(write=isinstance(context, dg.OutputContext)) as session:
            yield LakeConnection(session=session, lake=self.lake, engine=self.engine)

    def ensure_schema_exists(
        self, context: dg.OutputContext, table_slice: TableSlice, connection: LakeConnection
    ) -> None:
        """Nothing to do: registering a table creates its database when needed."""

    def delete_table_slice(
        self, context: dg.OutputContext, table_slice: TableSlice, connection: LakeConnection
    ) -> None:
        """Remove the files of the partitions about to be written (the whole table if none)."""
        base = self.relative_table_path(table_slice)
        dimensions = table_slice.partition_dimensions or []
        if not dimensions:
            self.lake.delete_prefix(base + "/")
            return
        if len(dimensions) > 1:
            raise NotImplementedError("multi-dimensional partitions are not supported")
        for key in context.asset_partition_keys:
            self.lake.delete_prefix(f"{base}/{partition_folder(dimensions[0], key)}/")

    def relative_table_path(self, table_slice: TableSlice) -> str:
        return f"{self.lake.prefix(table_slice.schema)}/{table_slice.table}"

    def get_select_statement(self, table_slice: TableSlice) -> str:
        columns = (
            ", ".join(quote_identifier(c) for c in table_slice.columns)
            if table_slice.columns
            else "*"
        )
        sql = f"SELECT {columns} FROM {self.engine.table_name(table_slice.table)}"
        filters = [where_clause(d) for d in table_slice.partition_dimensions or []]
        return sql + (" WHERE " + " AND ".join(filters) if filters else "")

    def get_table_name(self, table_slice: TableSlice) -> str:
        return f"{self.engine.database}.{table_slice.table}"


DECIMAL_TYPE = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def restore_sql_types(table: pa.Table, sql_types: Mapping[str, str]) -> pa.Table:
    """The query result's decimal and date columns back in their SQL types (see SQL_TYPES_ATTR).

    Decimals are rounded to their scale through ``Decimal`` (a float such as 0.3 is not exactly
    representable, so a direct Arrow cast could lose a cent); dates lose the midnight time.
    """
    for index, field in enumerate(table.schema):
        kind = sql_types.get(field.name, "")
        decimal = DECIMAL_TYPE.fullmatch(kind)
        column = table.column(index)
        if decimal and pa.types.is_floating(field.type):
            precision, scale = int(decimal[1]), int(decimal[2])
            step = Decimal(1).scaleb(-scale)
            values = [
                None
                if v is None or math.isnan(v)
                else Decimal(repr(v)).quantize(step, ROUND_HALF_UP)
                for v in column.to_pylist()
            ]
            typed = pa.array(values, type=pa.decimal128(precision, scale))
        elif kind == "date" and pa.types.is_timestamp(field.type):
            typed = column.cast(pa.date32())
        else:
            continue
        table = table.set_column(index, pa.field(field.name, typed.type), typed)
    return table


def table_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema])


def markdown_preview(df: pd.DataFrame, rows: int = PREVIEW_ROWS) -> str:
    head = df.head(rows).astype(object)
    return markdown_table(head.where(head.notna(), None).itertuples(index=False), df.columns)


class PandasLakeTypeHandler(DbTypeHandler[pd.DataFrame]):
    """pandas DataFrames as Parquet in the lake, registered in the catalog."""

    def handle_output(
        self,
        context: dg.OutputContext,
        table_slice: TableSlice,
        obj: pd.DataFrame,
        connection: LakeConnection,
    ) -> Mapping[str, Any]:
        lake = connection.lake
        base = f"{lake.prefix(table_slice.schema)}/{table_slice.table}"
        dimensions = table_slice.partition_dimensions or []
        frame = obj
        folder = base
        if dimensions:
            dimension = dimensions[0]
            frame = obj.drop(columns=[dimension.partition_expr], errors="ignore")
            folder = f"{base}/{partition_folder(dimension, context.asset_partition_key)}"
        sql_types = obj.attrs.get(SQL_TYPES_ATTR, {})
        arrow = restore_sql_types(pa.Table.from_pandas(frame, preserve_index=False), sql_types)
        buffer = io.BytesIO()
        pq.write_table(arrow, buffer)
        path = lake.write_bytes(buffer.getvalue(), f"{folder}/part-00000.parquet")
        connection.session.register_table(
            table=table_slice.table,
            location=lake.table_uri(table_slice.schema, table_slice.table),
            partition_types=partition_types(table_slice),
        )
        return {
            "row_count": len(obj),
            "path": dg.MetadataValue.path(path),
            "dagster/column_schema": table_schema(
                restore_sql_types(pa.Table.from_pandas(obj, preserve_index=False), sql_types).schema
            ),
            "preview": dg.MetadataValue.md(markdown_preview(obj)),
        }

    def load_input(
        self, context: dg.InputContext, table_slice: TableSlice, connection: LakeConnection
    ) -> pd.DataFrame:
        client = LakeDbClient(connection.lake, connection.engine)
        return connection.session.query(client.get_select_statement(table_slice))

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pd.DataFrame]


class LakehouseIOManager(dg.ConfigurableIOManagerFactory):
    """Lake tables in and out as pandas, through the configured catalog's SQL engine."""

    lake: LakeStorage
    engine: QueryEngine

    def create_io_manager(self, context: dg.InitResourceContext) -> DbIOManager:
        return DbIOManager(
            type_handlers=[PandasLakeTypeHandler()],
            db_client=LakeDbClient(self.lake, self.engine),
            database=self.engine.database,
            io_manager_name="LakehouseIOManager",
            default_load_type=pd.DataFrame,
        )
