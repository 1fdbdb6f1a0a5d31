"""The DuckDB catalog under other processes: readers never delay writes, writes are all or nothing.

Every other party is a real OS process (``spawn``), and every hand-over is a message on a pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from car_rental_platform.resources.catalog import CatalogError
from car_rental_platform.resources.duckdb_catalog import (
    WAL_SUFFIX,
    DuckDBCatalog,
    DuckDBQueryEngine,
    draft_prefix,
    duckdb_connection,
)
from car_rental_platform.resources.lake import LocalLake
from spark_jobs.contract import DATABASE, Zone

SPAWN = multiprocessing.get_context("spawn")
LOG = dg.get_dagster_logger()
WRITE_BOUND_SECONDS = 5.0
"""A write next to an open reader must finish well inside this (the lock timeout is 30 s)."""
LOCK_TIMEOUT_SECONDS = 30.0
MESSAGE_TIMEOUT_SECONDS = 60.0
"""How long to await a child's message before failing (a spawned child imports Dagster)."""
TABLES_SQL = (
    "SELECT table_name FROM information_schema.tables "
    f"WHERE table_schema = '{DATABASE}' ORDER BY table_name"
)


def receive(connection: Connection) -> object:
    """The next message from a child, or a failure instead of a hung test."""
    assert connection.poll(MESSAGE_TIMEOUT_SECONDS), "the child process sent nothing"
    return connection.recv()


def write_parquet(lake: LocalLake, table: str, rows: int) -> None:
    """A one-file Parquet table of ``rows`` rows in the processed zone, written by DuckDB."""
    folder = Path(lake.table_uri(Zone.PROCESSED, table))
    folder.mkdir(parents=True, exist_ok=True)
    target = str(folder / "part-00000.parquet").replace("'", "''")
    duckdb.sql(f"COPY (SELECT range AS id FROM range({rows})) TO '{target}' (FORMAT parquet)")


def tables(path: Path) -> list[str]:
    """The catalog's views, through a new reader."""
    engine = DuckDBQueryEngine(database_path=str(path))
    return list(engine.query(TABLES_SQL)["table_name"])


def count(path: Path, table: str) -> int:
    engine = DuckDBQueryEngine(database_path=str(path))
    return int(engine.query(f"SELECT count(*) AS n FROM {engine.table_name(table)}")["n"][0])


def drafts(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f"{draft_prefix(path)}*"))


def catalog(path: Path, lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS) -> DuckDBCatalog:
    return DuckDBCatalog(database_path=str(path), lock_timeout_seconds=lock_timeout_seconds)


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    """A lake whose catalog already has one view, ``rentals`` (3 rows)."""
    lake = LocalLake(root=str(tmp_path / "lake"))
    write_parquet(lake, "rentals", 3)
    catalog(tmp_path / "catalog.duckdb").crawl(zone=Zone.PROCESSED, lake=lake, log=LOG)
    return lake


# --- what the child processes run (module level, so ``spawn`` can import it) ---------------


def hold_reader(path: str, direct: bool, parent: Connection) -> None:
    """Open a read-only connection and keep it open, answering queries when asked."""
    opened = (
        duckdb.connect(path, read_only=True)  # an analyst's notebook: DuckDB, none of our code
        if direct
        else duckdb_connection(path, write=False, lock_timeout_seconds=0)
    )
    with opened as connection:
        parent.send(connection.execute(TABLES_SQL).fetchall())
        parent.recv()
        parent.send(
            connection.execute(TABLES_SQL).fetchall()
            + connection.execute(f"SELECT count(*) FROM {DATABASE}.rentals").fetchall()
        )
        parent.recv()


def crawl_and_hang(path: str, lake_root: str, pause_at: str, parent: Connection) -> None:
    """Crawl the processed zone, and stop for good when the crawl reaches ``pause_at``."""

    class PausingLake(LocalLake):
        """A lake that stops when the crawl, inside its write, asks for one table's folder."""

        def table_uri(self, zone: Zone | str, table: str) -> str:
            if table == pause_at:
                parent.send("paused")
                parent.recv()  # the parent never answers: it kills this process
            return super().table_uri(zone, table)

    lake = PausingLake(root=lake_root)
    catalog(Path(path)).crawl(zone=Zone.PROCESSED, lake=lake, log=LOG)


def write_view(path: str, view: str, hold: bool, parent: Connection) -> None:
    """Add one view; with ``hold``, report it written and wait for the word to finish."""
    parent.send("connecting")
    with duckdb_connection(path, write=True, lock_timeout_seconds=LOCK_TIMEOUT_SECONDS) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {DATABASE}")
        conn.execute(f"CREATE VIEW {DATABASE}.{view} AS SELECT 1 AS one")
        if hold:
            parent.send("written")
            parent.recv()
    parent.send("published")


def write_in_place_and_die(path: str) -> None:
    """What a writer that works in the file itself leaves when killed: a WAL beside it."""
    connection = duckdb.connect(path)
    connection.execute(f"CREATE VIEW {DATABASE}.from_the_log AS SELECT 1 AS one")
    os._exit(0)  # no close, so no checkpoint


def start(target: Callable[..., None], *args: object) -> tuple[multiprocessing.Process, Connection]:
    mine, theirs = SPAWN.Pipe()
    process = SPAWN.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    theirs.close()
    return process, mine


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("direct", [True, False], ids=["duckdb_read_only", "duckdb_connection"])
def test_an_open_reader_does_not_delay_a_crawl_and_keeps_the_old_catalog(
    lake: LocalLake, tmp_path: Path, direct: bool
) -> None:
    path = tmp_path / "catalog.duckdb"
    reader, channel = start(hold_reader, str(path), direct)
    assert receive(channel) == [("rentals",)]  # connected, and holding the file open

    write_parquet(lake, "vehicles", 5)
    started = time.monotonic()
    result = catalog(path).crawl(zone=Zone.PROCESSED, lake=lake, log=LOG)
    elapsed = time.monotonic() - started
    print(f"crawl beside an open {'DuckDB' if direct else 'our'} reader: {elapsed:.3f}s")

    assert elapsed < WRITE_BOUND_SECONDS
    assert (result.created, result.unchanged) == (["vehicles"], ["rentals"])
    assert tables(path) == ["rentals", "vehicles"]  # a new reader sees the new catalog
    assert count(path, "vehicles") == 5
    channel.send("query")
    assert receive(channel) == [("rentals",), (3,)]  # the old connection: old catalog, working
    channel.send("close")
    reader.join(MESSAGE_TIMEOUT_SECONDS)
    assert reader.exitcode == 0


def test_a_writer_killed_mid_write_leaves_the_old_catalog_and_the_next_write_succeeds(
    lake: LocalLake, tmp_path: Path
) -> None:
    path = tmp_path / "catalog.duckdb"
    write_parquet(lake, "locations", 4)  # crawled before rentals, so in the draft when killed
    writer, channel = start(crawl_and_hang, str(path), lake.root, "rentals")
    assert receive(channel) == "paused"
    assert drafts(path)  # the writer is mid-write: its copy holds the new view

    started = time.monotonic()
    assert tables(path) == ["rentals"]  # a reader neither waits for the writer nor sees its draft
    assert time.monotonic() - started < WRITE_BOUND_SECONDS

    writer.kill()
    writer.join(MESSAGE_TIMEOUT_SECONDS)
    assert writer.exitcode == -signal.SIGKILL
    assert tables(path) == ["rentals"]
    assert count(path, "rentals") == 3
    assert drafts(path)  # left behind, under a name no reader opens

    result = catalog(path, lock_timeout_seconds=0).crawl(zone=Zone.PROCESSED, lake=lake, log=LOG)
    assert result.created == ["locations"]
    assert tables(path) == ["locations", "rentals"]
    assert drafts(path) == []


def test_two_writers_take_turns_and_both_changes_are_kept(lake: LocalLake, tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    first, first_channel = start(write_view, str(path), "first", True)
    assert receive(first_channel) == "connecting"
    assert receive(first_channel) == "written"  # holds the writer lock, not yet published

    with (
        pytest.raises(CatalogError, match=f"{path}.*another process"),
        duckdb_connection(str(path), write=True, lock_timeout_seconds=0),
    ):
        pass

    second, second_channel = start(write_view, str(path), "second", False)
    assert receive(second_channel) == "connecting"
    assert not second_channel.poll(1.0)  # waiting for the first writer, so not published
    first_channel.send("finish")
    assert receive(first_channel) == "published"
    assert receive(second_channel) == "published"
    for process in (first, second):
        process.join(MESSAGE_TIMEOUT_SECONDS)
        assert process.exitcode == 0
    assert tables(path) == ["first", "rentals", "second"]  # the second copied the first's file
    assert drafts(path) == []


def test_a_write_that_raises_publishes_nothing(lake: LocalLake, tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    with (
        pytest.raises(RuntimeError, match="half way"),
        DuckDBQueryEngine(database_path=str(path)).connect(write=True) as session,
    ):
        session.drop_table(table="rentals")
        raise RuntimeError("half way")
    assert tables(path) == ["rentals"]
    assert drafts(path) == []


def test_a_wal_left_by_an_in_place_writer_is_kept_by_the_next_write(
    lake: LocalLake, tmp_path: Path
) -> None:
    path = tmp_path / "catalog.duckdb"
    killed = SPAWN.Process(target=write_in_place_and_die, args=(str(path),))
    killed.start()
    killed.join(MESSAGE_TIMEOUT_SECONDS)
    assert Path(f"{path}{WAL_SUFFIX}").exists()
    assert tables(path) == ["from_the_log", "rentals"]  # DuckDB replays the log for readers

    write_parquet(lake, "vehicles", 5)
    catalog(path, lock_timeout_seconds=0).crawl(zone=Zone.PROCESSED, lake=lake, log=LOG)
    assert not Path(f"{path}{WAL_SUFFIX}").exists()
    assert tables(path) == ["from_the_log", "rentals", "vehicles"]


def test_reading_a_catalog_not_yet_written_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none" / "catalog.duckdb"
    assert tables(path) == []
    assert not path.parent.exists()


def test_a_new_reader_sees_a_write_made_while_another_reader_of_this_process_is_open(
    lake: LocalLake, tmp_path: Path
) -> None:
    """DuckDB shares one instance per file path within a process; readers must not reuse it."""
    path = tmp_path / "catalog.duckdb"
    engine = DuckDBQueryEngine(database_path=str(path))
    with engine.connect() as old:
        write_parquet(lake, "vehicles", 5)
        catalog(path).crawl(zone=Zone.PROCESSED, lake=lake, log=LOG)
        assert tables(path) == ["rentals", "vehicles"]
        assert list(old.query(TABLES_SQL)["table_name"]) == ["rentals"]
