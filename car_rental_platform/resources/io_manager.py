"""The lakehouse IO manager: pandas in and out of lake tables through the catalog's SQL.

Built on Dagster's public ``ConfigurableIOManager``, shaped like its warehouse IO managers: a
table slice per asset (zone, table, partition), outputs written as Parquet under
``<lake>/<zone>/<table>/`` (one folder per partition) and registered in the catalog, inputs read
with SQL, filtered to the partitions asked for. The zone is the asset key's prefix and the table
its last part, so ``analyses/top_locations`` lives in ``<lake>/analyses/top_locations/`` and is
``car_rental_db.top_locations``. Assets whose data Spark writes return only metadata and are read
through it downstream all the same. Partitions (one dimension, named by the asset's
``partition_expr`` metadata) are kept for the daily exports of DESIGN 3.5.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.query import (
    SQL_TYPES_ATTR,
    QueryEngine,
    quote_identifier,
    validate_identifier,
)
from spark_jobs.contract import COLUMN_DESCRIPTIONS
from spark_jobs.markdown import markdown_table

PREVIEW_ROWS = 10
PARTITION_EXPR = "partition_expr"
"""Asset metadata key naming the column that holds a partitioned asset's partition key."""


@dataclass(frozen=True)
class PartitionDimension:
    """The partitions of a slice: a time window, or a list of partition keys."""

    partition_expr: str
    partitions: dg.TimeWindow | Sequence[str]


@dataclass(frozen=True)
class TableSlice:
    """What one output writes or one input reads: a zone's table, its columns, its partitions."""

    zone: str
    table: str
    columns: Sequence[str] | None = None
    partition_dimensions: Sequence[PartitionDimension] = ()


def partition_folder(dimension: PartitionDimension, key: str) -> str:
    """Hive-style folder of one partition: ``<column>=<key>``."""
    column = validate_identifier(dimension.partition_expr, "partition column")
    if "/" in key or key in ("", ".", ".."):
        raise ValueError(f"partition key {key!r} cannot name a folder")
    return f"{column}={key}"


def partition_types(table_slice: TableSlice) -> dict[str, str]:
    """SQL type of each partition column: DATE for time windows, VARCHAR otherwise."""
    return {
        d.partition_expr: "DATE" if isinstance(d.partitions, dg.TimeWindow) else "VARCHAR"
        for d in table_slice.partition_dimensions
    }


def where_clause(dimension: PartitionDimension) -> str:
    """Filter on one partition column; values are escaped, the column is quoted."""
    column = quote_identifier(validate_identifier(dimension.partition_expr, "partition column"))
    if isinstance(dimension.partitions, dg.TimeWindow):
        start = dimension.partitions.start.strftime("%Y-%m-%d %H:%M:%S")
        end = dimension.partitions.end.strftime("%Y-%m-%d %H:%M:%S")
        return f"{column} >= TIMESTAMP '{start}' AND {column} < TIMESTAMP '{end}'"
    values = ", ".join("'" + str(v).replace("'", "''") + "'" for v in dimension.partitions)
    return f"{column} IN ({values})"


def select_statement(engine: QueryEngine, table_slice: TableSlice) -> str:
    columns = (
        ", ".join(quote_identifier(c) for c in table_slice.columns) if table_slice.columns else "*"
    )
    sql = f"SELECT {columns} FROM {engine.table_name(table_slice.table)}"
    filters = [where_clause(d) for d in table_slice.partition_dimensions]
    return sql + (" WHERE " + " AND ".join(filters) if filters else "")


def _zone_and_table(key: dg.AssetKey) -> tuple[str, str]:
    if len(key.path) < 2:
        raise ValueError(f"asset key {key.to_user_string()!r} has no zone prefix (zone/table)")
    return key.path[-2], key.path[-1]


def _partitions(
    context: dg.InputContext | dg.OutputContext, metadata: Mapping[str, Any]
) -> list[PartitionDimension]:
    """The slice's partition dimension, from the partitions the context asks for."""
    if not context.has_asset_partitions:
        return []
    expr = metadata.get(PARTITION_EXPR)
    if not isinstance(expr, str):
        raise ValueError(
            f"{context.asset_key.to_user_string()} is partitioned: give it a "
            f"{PARTITION_EXPR!r} metadata entry naming its partition column"
        )
    if isinstance(context.asset_partitions_def, dg.TimeWindowPartitionsDefinition):
        return [PartitionDimension(expr, context.asset_partitions_time_window)]
    return [PartitionDimension(expr, list(context.asset_partition_keys))]


def output_slice(context: dg.OutputContext) -> TableSlice:
    zone, table = _zone_and_table(context.asset_key)
    return TableSlice(zone, table, None, _partitions(context, context.definition_metadata or {}))


def input_slice(context: dg.InputContext) -> TableSlice:
    zone, table = _zone_and_table(context.asset_key)
    upstream = context.upstream_output
    upstream_metadata = (upstream.definition_metadata if upstream else None) or {}
    columns = (context.definition_metadata or {}).get("columns")
    return TableSlice(zone, table, columns, _partitions(context, upstream_metadata))


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
    """The stored columns and types, each described by what its name means in the contract."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=f.name, type=str(f.type), description=COLUMN_DESCRIPTIONS.get(f.name)
            )
            for f in schema
        ]
    )


def markdown_preview(df: pd.DataFrame, rows: int = PREVIEW_ROWS) -> str:
    head = df.head(rows).astype(object)
    return markdown_table(head.where(head.notna(), None).itertuples(index=False), df.columns)


class LakehouseIOManager(dg.ConfigurableIOManager):
    """Lake tables in and out as pandas, through the configured catalog's SQL engine."""

    lake: LakeStorage
    engine: QueryEngine

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        """Replace the table (or the partitions written) with ``obj`` and register it."""
        if obj is None:  # an asset that stores nothing of its own (e.g. a test consumer)
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"LakehouseIOManager stores pandas DataFrames, not {type(obj)}")
        table_slice = output_slice(context)
        base = f"{self.lake.prefix(table_slice.zone)}/{table_slice.table}"
        frame, folder = obj, base
        if table_slice.partition_dimensions:
            if len(table_slice.partition_dimensions) > 1:
                raise NotImplementedError("multi-dimensional partitions are not supported")
            dimension = table_slice.partition_dimensions[0]
            frame = obj.drop(columns=[dimension.partition_expr], errors="ignore")
            for key in context.asset_partition_keys:
                self.lake.delete_prefix(f"{base}/{partition_folder(dimension, key)}/")
            folder = f"{base}/{partition_folder(dimension, context.asset_partition_key)}"
        else:
            self.lake.delete_prefix(base + "/")
        sql_types = obj.attrs.get(SQL_TYPES_ATTR, {})
        arrow = restore_sql_types(pa.Table.from_pandas(frame, preserve_index=False), sql_types)
        buffer = io.BytesIO()
        pq.write_table(arrow, buffer)
        path = self.lake.write_bytes(buffer.getvalue(), f"{folder}/part-00000.parquet")
        with self.engine.connect(write=True) as session:
            session.register_table(
                table=table_slice.table,
                location=self.lake.table_uri(table_slice.zone, table_slice.table),
                partition_types=partition_types(table_slice),
            )
        full = restore_sql_types(pa.Table.from_pandas(obj, preserve_index=False), sql_types)
        context.add_output_metadata(
            {
                "row_count": len(obj),
                "dagster/row_count": len(obj),
                "path": dg.MetadataValue.path(path),
                "dagster/table_name": f"{self.engine.database}.{table_slice.table}",
                "dagster/column_schema": table_schema(full.schema),
                "preview": dg.MetadataValue.md(markdown_preview(obj)),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """The upstream table (its partitions asked for, its ``columns`` if given) by SQL."""
        with self.engine.connect() as session:
            return session.query(select_statement(self.engine, input_slice(context)))
