"""The local catalog and SQL engine: one DuckDB file with a view per lake table.

DuckDB lets one process write a database file at a time, and a writer excludes readers, so
every connection takes a file lock beside the database first (shared to read, exclusive to
write) and waits for it: parallel Dagster steps queue instead of failing on the file lock.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from pydantic import Field

from car_rental_platform.resources.catalog import Catalog, CatalogError, CrawlResult
from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.query import (
    QueryEngine,
    QuerySession,
    quote_identifier,
    with_sql_types,
)
from spark_jobs.contract import Zone

LOCK_POLL_SECONDS = 0.05


@contextmanager
def duckdb_connection(
    path: str, *, write: bool, lock_timeout_seconds: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Connect under the file lock; a reader of a database not yet created gets an empty one."""
    database = Path(path).expanduser().resolve()
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_suffix(database.suffix + ".lock"), "a+") as lock_file:
        mode = fcntl.LOCK_EX if write else fcntl.LOCK_SH
        deadline = time.monotonic() + lock_timeout_seconds
        while True:
            try:
                fcntl.flock(lock_file, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CatalogError(
                        f"DuckDB catalog {database} is locked by another process "
                        f"(waited {lock_timeout_seconds:.0f}s)"
                    ) from None
                time.sleep(LOCK_POLL_SECONDS)
        read_only = not write and database.exists()
        connection = duckdb.connect(
            str(database) if database.exists() or write else ":memory:", read_only=read_only
        )
        try:
            yield connection
        finally:
            connection.close()
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _parquet_source(location: str, partition_types: dict[str, str] | None = None) -> str:
    """``read_parquet`` over every Parquet file of a table folder (hive partitions typed)."""
    pattern = f"{location.rstrip('/')}/**/*.parquet".replace("'", "''")
    if not partition_types:
        return f"read_parquet('{pattern}', union_by_name = true)"
    types = ", ".join(
        f"'{name.replace(chr(39), chr(39) * 2)}': {kind}" for name, kind in partition_types.items()
    )
    return (
        f"read_parquet('{pattern}', union_by_name = true, hive_partitioning = true, "
        f"hive_types = {{{types}}})"
    )


class DuckDBSession(QuerySession):
    def __init__(self, connection: duckdb.DuckDBPyConnection, database: str) -> None:
        self._connection = connection
        self._database = database

    def query(self, sql: str) -> pd.DataFrame:
        cursor = self._connection.execute(sql)
        frame = cursor.df()
        return with_sql_types(frame, {name: str(kind) for name, kind, *_ in cursor.description})

    def register_table(
        self, *, table: str, location: str, partition_types: dict[str, str] | None = None
    ) -> None:
        schema = quote_identifier(self._database)
        self._connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        self._connection.execute(
            f"CREATE OR REPLACE VIEW {schema}.{quote_identifier(table)} AS "
            f"SELECT * FROM {_parquet_source(location, partition_types)}"
        )

    def drop_table(self, *, table: str) -> None:
        self._connection.execute(
            f"DROP VIEW IF EXISTS {quote_identifier(self._database)}.{quote_identifier(table)}"
        )

    def describe(self, table: str) -> dict[str, str] | None:
        """Column -> type of a catalog view, or None when it does not exist."""
        rows = self._connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [self._database, table],
        ).fetchall()
        return {name: kind for name, kind in rows} or None

    def tables(self) -> list[str]:
        rows = self._connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [self._database],
        ).fetchall()
        return sorted(name for (name,) in rows)


class DuckDBQueryEngine(QueryEngine):
    """SQL over the lake through the local DuckDB catalog."""

    database_path: str = Field(description="DuckDB file of the local catalog.")
    lock_timeout_seconds: float = Field(
        default=600.0,
        ge=0,
        description="Seconds (>= 0) to wait for another process's catalog lock.",
    )

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[DuckDBSession]:
        with duckdb_connection(
            self.database_path, write=write, lock_timeout_seconds=self.lock_timeout_seconds
        ) as connection:
            yield DuckDBSession(connection, self.database)


class DuckDBCatalog(Catalog):
    """The local 'crawler': one view per table folder of a zone, in the DuckDB file."""

    database_path: str = Field(description="DuckDB file of the local catalog.")
    lock_timeout_seconds: float = Field(
        default=600.0, ge=0, description="Seconds (>= 0) to wait for the catalog lock."
    )

    def crawl(self, *, zone: Zone, lake: LakeStorage, log: dg.DagsterLogManager) -> CrawlResult:
        engine = DuckDBQueryEngine(
            database=self.database,
            database_path=self.database_path,
            lock_timeout_seconds=self.lock_timeout_seconds,
        )
        present = lake.list_tables(zone)
        result = CrawlResult()
        with engine.connect(write=True) as session:
            registered = set(session.tables())
            for table in present:
                before = session.describe(table)
                session.register_table(table=table, location=lake.table_uri(zone, table))
                after = session.describe(table) or {}
                result.columns[table] = after
                if before is None:
                    result.created.append(table)
                elif before != after:
                    result.updated.append(table)
                else:
                    result.unchanged.append(table)
            zone_prefix = f"{lake.table_uri(zone, '')}"
            for table in sorted(registered - set(present)):
                if self._reads_from(session, table, zone_prefix):
                    session.drop_table(table=table)
                    result.deleted.append(table)
        log.info(
            f"catalog {self.database} ({zone.value}): created {result.created}, "
            f"updated {result.updated}, deleted {result.deleted}, "
            f"unchanged {len(result.unchanged)}"
        )
        return result

    @staticmethod
    def _reads_from(session: DuckDBSession, table: str, zone_prefix: str) -> bool:
        """Whether a view belongs to this zone (other zones' views are not ours to drop)."""
        sql = session.query(
            "SELECT sql FROM duckdb_views() WHERE view_name = "
            f"'{table.replace(chr(39), chr(39) * 2)}'"
        )
        return bool(len(sql)) and zone_prefix.replace("'", "''") in str(sql.iloc[0, 0])
