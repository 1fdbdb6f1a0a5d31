"""The local catalog and SQL engine: one DuckDB file with a view per lake table.

DuckDB locks its database file: a process writing it excludes every reader, and a reader
excludes writers. The catalog holds only views over Parquet folders, so it is tiny, and a writer
never opens it in place. Instead, under an exclusive lock file beside the database (writers
queue on it, up to ``lock_timeout_seconds``), it copies the file to a hidden draft in the same
folder, applies its changes to the draft, closes it (DuckDB checkpoints on close, so no WAL is
left) and ``os.replace``s it onto the database path. The replace is atomic: a reader sees the
old catalog or the new one, never a half-written one, and a connection opened before it keeps
reading the old file. A write that raises, or a writer killed, publishes nothing; the next
writer deletes the drafts left behind.

Readers take no lock: each opens a fresh in-memory DuckDB that attaches the current file read
only. ``duckdb.connect(path)`` would instead hand out the instance another connection of this
process already opened, which may be the file a writer has since replaced. Any process may read
the file directly (``duckdb.connect(path, read_only=True)``) without delaying the writers; only
this module may open it for writing, since a change made in place is lost at the next replace.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
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
from spark_jobs.contract import SOURCES_BY_NAME, Zone

LOCK_POLL_SECONDS = 0.05
WAL_SUFFIX = ".wal"
"""DuckDB's write-ahead log is the database path plus this suffix."""
READER_ALIAS = "catalog-file"
"""Name a reader attaches the file under and ``USE``s: not a plain name, so no schema has it."""


def draft_prefix(database: Path) -> str:
    """Start of the name of a writer's draft (and of DuckDB's WAL and spill folder beside it).

    Hidden and never ending in the database's own name, so nothing takes a draft for the catalog.
    """
    return f".{database.name}.draft-"


@contextmanager
def _writer_lock(database: Path, timeout_seconds: float) -> Iterator[None]:
    """The exclusive lock that makes writers take turns (readers never take it)."""
    with open(database.with_suffix(database.suffix + ".lock"), "a+") as lock_file:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CatalogError(
                        f"DuckDB catalog {database} is being written by another process "
                        f"(waited {timeout_seconds:.0f}s for its lock)"
                    ) from None
                time.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _remove_drafts(database: Path) -> None:
    """Delete every draft of this database: under the writer lock, none is another's live one."""
    for path in database.parent.glob(f"{draft_prefix(database)}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _publish(draft: Path, database: Path) -> None:
    """Make the closed draft the catalog, durably, in one atomic rename."""
    if Path(f"{draft}{WAL_SUFFIX}").exists():
        raise CatalogError(f"DuckDB did not checkpoint the new catalog {draft}; nothing changed")
    with open(draft, "rb") as file:
        os.fsync(file.fileno())
    # A WAL beside the database comes from a writer that worked in place and was killed: the draft
    # already holds its changes, and DuckDB refuses to open the new file next to the old log.
    Path(f"{database}{WAL_SUFFIX}").unlink(missing_ok=True)
    os.replace(draft, database)
    folder = os.open(database.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


@contextmanager
def _reader(database: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh read-only view of the current file; an empty database before the first write."""
    connection = duckdb.connect(":memory:")
    try:
        if database.exists():
            location = str(database).replace("'", "''")
            alias = quote_identifier(READER_ALIAS)
            connection.execute(f"ATTACH '{location}' AS {alias} (READ_ONLY)")
            connection.execute(f"USE {alias}")
        yield connection
    finally:
        connection.close()


@contextmanager
def _writer(database: Path, lock_timeout_seconds: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a draft copy, published when the block ends without an error."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(database, lock_timeout_seconds):
        draft = database.with_name(f"{draft_prefix(database)}{secrets.token_hex(8)}")
        if database.exists():
            shutil.copyfile(database, draft)
            wal = Path(f"{database}{WAL_SUFFIX}")
            if wal.exists():  # replayed into the draft when DuckDB opens it
                shutil.copyfile(wal, f"{draft}{WAL_SUFFIX}")
        connection = duckdb.connect(str(draft))
        try:
            yield connection
            connection.close()
            _publish(draft, database)
        finally:
            connection.close()
            _remove_drafts(database)  # a failed write's, and those of writers killed before


@contextmanager
def duckdb_connection(
    path: str, *, write: bool, lock_timeout_seconds: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection that waits for nothing, or a writer's that replaces the file.

    ``lock_timeout_seconds`` bounds a writer's wait for another writer; readers never wait.
    """
    database = Path(path).expanduser().resolve()
    if write:
        with _writer(database, lock_timeout_seconds) as connection:
            yield connection
    else:
        with _reader(database) as connection:
            yield connection


def partition_types(zone: Zone, table: str, location: str) -> dict[str, str] | None:
    """Partition columns of a processed table present as folders, typed (a DATE for
    ``rental_date=2024-01-01/``). An empty table is one file holding every column, without
    partition folders, and DuckDB refuses types for partitions it does not see."""
    source = SOURCES_BY_NAME.get(table) if zone is Zone.PROCESSED else None
    if source is None:
        return None
    folder = Path(location)
    present = {n: t for n, t in source.partition_types.items() if any(folder.glob(f"{n}=*"))}
    return present or None


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
        description="Seconds (>= 0) a write waits for another process's write to finish.",
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
        default=600.0,
        ge=0,
        description="Seconds (>= 0) a crawl waits for another process's write to finish.",
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
                session.register_table(
                    table=table,
                    location=lake.table_uri(zone, table),
                    partition_types=partition_types(zone, table, lake.table_uri(zone, table)),
                )
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
