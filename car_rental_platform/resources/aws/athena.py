"""SQL on AWS: Athena queries over the Glue catalog, and tables registered in Glue.

A query runs in the project's workgroup and database; the wait polls with exponential backoff
up to a timeout (the query is stopped then, and when the Dagster run is terminated); a FAILED or
CANCELLED query raises with Athena's reason. Small results are paged through GetQueryResults
and typed from the result metadata; larger ones (or all, with ``read_results_from_s3``) are read
from the CSV file Athena writes to the output location, which is one GET instead of a call per
1,000 rows. ``register_table`` / ``drop_table`` go to Glue directly (see ``glue_tables``).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError
from pydantic import Field

from car_rental_platform.aws_names import PROJECT
from car_rental_platform.resources.aws.clients import (
    INTERRUPTS,
    AwsConnection,
    Deadline,
    error_code,
    parse_s3_uri,
)
from car_rental_platform.resources.aws.errors import AthenaQueryError, AthenaTimeoutError
from car_rental_platform.resources.aws.glue_tables import register_parquet_table
from car_rental_platform.resources.query import (
    QueryEngine,
    QuerySession,
    validate_identifier,
    with_sql_types,
)
from spark_jobs.contract import Zone

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_s3 import S3Client

RESULTS_PAGE = 1000
"""GetQueryResults returns at most 1,000 rows per call."""
DONE = "SUCCEEDED"
FAILED_QUERIES = frozenset({"FAILED", "CANCELLED"})
SQL_PREVIEW = 300

INTEGER_TYPES = {
    "tinyint": "Int8",
    "smallint": "Int16",
    "integer": "Int32",
    "int": "Int32",
    "bigint": "Int64",
}
FLOAT_TYPES = {"double", "float", "real", "decimal"}
"""Decimals come back as float64, as DuckDB's do locally: the same SQL gives the same frame."""
TEXT_TYPES = {"varchar", "char", "string"}


class AthenaQueryEngine(QueryEngine, AwsConnection):
    """Athena over the Glue database; the IO manager's engine on AWS."""

    bucket: str = Field(description="The lake bucket (query results go to its athena_results/).")
    workgroup: str = Field(
        default=PROJECT, description="Athena workgroup (CAR_RENTAL_ATHENA_WORKGROUP)."
    )
    output_location: str | None = Field(
        default=None,
        description="s3:// folder for query results; unset: s3://<bucket>/athena_results/ "
        "(a workgroup that enforces its own location wins).",
    )
    poll_interval_seconds: float = Field(
        default=0.5,
        ge=0,
        description="First wait between two GetQueryExecution calls, seconds (>= 0).",
    )
    max_poll_interval_seconds: float = Field(
        default=5.0,
        ge=0,
        description="The wait doubles after each poll up to this many seconds (>= 0).",
    )
    timeout_seconds: int = Field(
        default=1800,
        gt=0,
        description="Seconds (> 0) a query may run before it is stopped.",
    )
    api_max_rows: int = Field(
        default=RESULTS_PAGE,
        description="Results with more rows than this are read from the CSV result file in S3 "
        "instead of paged through GetQueryResults.",
    )
    read_results_from_s3: bool = Field(
        default=False, description="Always read results from the CSV result file in S3."
    )

    @property
    def results_uri(self) -> str:
        return self.output_location or f"s3://{self.bucket}/{Zone.ATHENA_RESULTS.value}/"

    def get_client(self) -> AthenaQueries:
        return AthenaQueries(
            self,
            athena=self.aws_client("athena"),
            glue=self.aws_client("glue"),
            s3=self.aws_client("s3"),
        )

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[AthenaSession]:
        """Athena has no connection to hold: the session is the shared clients."""
        yield AthenaSession(self.get_client())


class AthenaSession(QuerySession):
    def __init__(self, queries: AthenaQueries) -> None:
        self._queries = queries

    def query(self, sql: str) -> pd.DataFrame:
        return self._queries.query(sql)

    def register_table(
        self, *, table: str, location: str, partition_types: dict[str, str] | None = None
    ) -> None:
        self._queries.register_table(
            table=table, location=location, partition_types=partition_types
        )

    def drop_table(self, *, table: str) -> None:
        self._queries.drop_table(table=table)


@dataclass(frozen=True)
class Column:
    name: str
    type: str


class AthenaQueries:
    """The behaviour behind ``AthenaQueryEngine``: run, wait, fetch, register tables."""

    def __init__(
        self, settings: AthenaQueryEngine, *, athena: AthenaClient, glue: GlueClient, s3: S3Client
    ) -> None:
        self.settings = settings
        self.athena = athena
        self.glue = glue
        self.s3 = s3

    # --- queries ------------------------------------------------------------------------

    def query(self, sql: str) -> pd.DataFrame:
        execution = self.execute(sql=sql)
        return self.results(execution=execution)

    def execute(self, *, sql: str) -> dict[str, Any]:
        """Start the query and wait for it; return its final QueryExecution."""
        settings = self.settings
        query_id = self.athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": settings.database},
            WorkGroup=settings.workgroup,
            ResultConfiguration={"OutputLocation": settings.results_uri},
        )["QueryExecutionId"]
        try:
            return self.wait(query_id=query_id, sql=sql)
        except INTERRUPTS:
            self._stop(query_id)
            raise

    def wait(self, *, query_id: str, sql: str) -> dict[str, Any]:
        settings = self.settings
        deadline = Deadline(settings.timeout_seconds)
        interval = settings.poll_interval_seconds
        while True:
            execution = self.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            status = execution["Status"]
            state = status["State"]
            if state == DONE:
                return execution
            if state in FAILED_QUERIES:
                error = status.get("AthenaError") or {}
                kind = f" [{error['ErrorType']}]" if error.get("ErrorType") else ""
                raise AthenaQueryError(
                    f"Athena query {query_id} {state} after {deadline.elapsed:.1f}s{kind}: "
                    f"{status.get('StateChangeReason') or 'no reason given'}\n"
                    f"SQL: {_preview(sql)}"
                )
            if deadline.expired:
                self._stop(query_id)
                raise AthenaTimeoutError(
                    f"Athena query {query_id} still {state} after {deadline.describe()}; "
                    f"stopped it.\nSQL: {_preview(sql)}"
                )
            time.sleep(interval)
            interval = min(interval * 2, settings.max_poll_interval_seconds)

    def _stop(self, query_id: str) -> None:
        # It may have finished meanwhile; the caller raises the error that matters.
        with contextlib.suppress(ClientError):
            self.athena.stop_query_execution(QueryExecutionId=query_id)

    def results(self, *, execution: Mapping[str, Any]) -> pd.DataFrame:
        """The result as a frame typed from the result metadata (API pages or the CSV file)."""
        query_id = execution["QueryExecutionId"]
        settings = self.settings
        # One row more than the limit: the first row of a SELECT's result repeats the header.
        first = self.athena.get_query_results(
            QueryExecutionId=query_id, MaxResults=min(RESULTS_PAGE, settings.api_max_rows + 1)
        )
        columns = [
            Column(info["Name"], _column_type(info))
            for info in first["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        ]
        rows = [_values(row) for row in first["ResultSet"]["Rows"]]
        has_header = (
            execution.get("StatementType") == "DML"
            and bool(rows)
            and rows[0] == [c.name for c in columns]
        )
        if has_header:
            rows = rows[1:]
        token = first.get("NextToken")
        # A NextToken means at least one more row: read the file as soon as that is too many.
        use_s3 = settings.read_results_from_s3 or (
            token is not None and len(rows) >= settings.api_max_rows
        )
        while token and not use_s3:
            page = self.athena.get_query_results(
                QueryExecutionId=query_id, NextToken=token, MaxResults=RESULTS_PAGE
            )
            rows.extend(_values(row) for row in page["ResultSet"]["Rows"])
            token = page.get("NextToken")
            use_s3 = token is not None and len(rows) >= settings.api_max_rows
        if use_s3:
            location = execution.get("ResultConfiguration", {}).get("OutputLocation")
            if location:
                return self._read_csv(location, columns, has_header=has_header)
            while token:
                page = self.athena.get_query_results(
                    QueryExecutionId=query_id, NextToken=token, MaxResults=RESULTS_PAGE
                )
                rows.extend(_values(row) for row in page["ResultSet"]["Rows"])
                token = page.get("NextToken")
        return typed_frame(columns, rows)

    def _read_csv(
        self, location: str, columns: Sequence[Column], *, has_header: bool
    ) -> pd.DataFrame:
        bucket, key = parse_s3_uri(location)
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        rows = parse_result_csv(body.decode("utf-8"))
        return typed_frame(columns, rows[1:] if has_header else rows)

    # --- catalog ------------------------------------------------------------------------

    def register_table(
        self, *, table: str, location: str, partition_types: Mapping[str, str] | None = None
    ) -> None:
        register_parquet_table(
            glue=self.glue,
            s3=self.s3,
            database=validate_identifier(self.settings.database, "database"),
            table=table,
            location=location,
            partition_types=partition_types,
        )

    def drop_table(self, *, table: str) -> None:
        try:
            self.glue.delete_table(
                DatabaseName=self.settings.database,
                Name=validate_identifier(table, "table name"),
            )
        except ClientError as error:
            if error_code(error) != "EntityNotFoundException":
                raise


_CSV_FIELD = re.compile(r'"((?:[^"]|"")*)"|([^,"\r\n]*)')


def parse_result_csv(text: str) -> list[list[str | None]]:
    """Rows of an Athena result file, where NULL and the empty string differ.

    Athena quotes every value (``""`` is an empty string) and writes NULL as nothing between the
    commas; pandas and the ``csv`` module read both as the same empty field.
    """
    rows: list[list[str | None]] = []
    row: list[str | None] = []
    position, end = 0, len(text)
    while position < end:
        field = _CSV_FIELD.match(text, position)
        assert field is not None  # the pattern also matches the empty string
        quoted, bare = field.groups()
        row.append(quoted.replace('""', '"') if quoted is not None else bare or None)
        position = field.end()
        if text.startswith(",", position):
            position += 1
            if position == end:
                row.append(None)
            continue
        newline = "\r\n" if text.startswith("\r\n", position) else "\n"
        if position < end and not text.startswith(newline, position):
            raise AthenaQueryError(f"malformed Athena result CSV at character {position}")
        position += len(newline)
        rows.append(row)
        row = []
    if row:
        rows.append(row)
    return rows


def _column_type(info: Mapping[str, Any]) -> str:
    """``decimal(18,2)`` when Athena gives precision and scale; the type name otherwise."""
    kind = str(info["Type"]).lower()
    if kind == "decimal" and info.get("Precision") and "Scale" in info:
        return f"decimal({info['Precision']},{info['Scale']})"
    return kind


def _values(row: Mapping[str, Any]) -> list[str | None]:
    return [cell.get("VarCharValue") for cell in row.get("Data", [])]


def _preview(sql: str) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= SQL_PREVIEW else flat[:SQL_PREVIEW] + " ..."


def typed_frame(columns: Sequence[Column], rows: Sequence[Sequence[str | None]]) -> pd.DataFrame:
    """Athena's text values typed by the result metadata, with the dtypes DuckDB gives locally.

    Like DuckDB's ``.df()``: numpy integers and booleans, or pandas' nullable ones when a
    column holds nulls; decimals as float64; dates and timestamps as ``datetime64[us]``.
    """
    data = {}
    for index, column in enumerate(columns):
        values = [row[index] if index < len(row) else None for row in rows]
        data[column.name] = _typed(column.type, values)
    frame = pd.DataFrame(data, columns=[c.name for c in columns])
    return with_sql_types(frame, {c.name: c.type for c in columns})


def _typed(athena_type: str, values: list[str | None]) -> Any:
    base = athena_type.split("(", 1)[0].strip()
    has_nulls = any(value is None for value in values)
    if base in INTEGER_TYPES:
        numbers = [None if v is None else int(v) for v in values]
        nullable = INTEGER_TYPES[base]
        return (
            pd.array(numbers, dtype=nullable) if has_nulls else np.array(numbers, nullable.lower())
        )
    if base in FLOAT_TYPES:
        return np.array([math.nan if v is None else float(v) for v in values], dtype="float64")
    if base == "boolean":
        flags = [None if v is None else v.lower() == "true" for v in values]
        return pd.array(flags, dtype="boolean") if has_nulls else np.array(flags, dtype=bool)
    if base == "date":
        return pd.to_datetime(pd.Series(values, dtype=object), format="%Y-%m-%d").astype(
            "datetime64[us]"
        )
    if base == "timestamp":
        return pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601").astype(
            "datetime64[us]"
        )
    return np.array(values, dtype=object)
