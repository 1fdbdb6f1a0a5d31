"""SQL over the catalog: one interface, DuckDB locally and Athena on AWS."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager

import dagster as dg
import pandas as pd
from pydantic import Field

from spark_jobs.contract import DATABASE

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SQL_TYPES_ATTR = "sql_types"
"""``DataFrame.attrs`` key of a query result: column -> its SQL type (``decimal(18,2)``, ``date``).

Frames keep the dtypes DuckDB's ``.df()`` gives (float64 for decimals, datetime64 for dates), so
the same SQL gives the same frame on both engines; the IO manager writes these types back, so a
table stored from a query result keeps its money as ``decimal(18,2)`` and its dates as ``date``.
"""


def with_sql_types(frame: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` carrying the SQL types of its columns (lower case), for the IO manager."""
    frame.attrs[SQL_TYPES_ATTR] = {name: kind.lower() for name, kind in types.items()}
    return frame


class UnsafeIdentifierError(ValueError):
    """A table or column name that cannot be used safely in SQL."""


def quote_identifier(name: str) -> str:
    """Double-quote a SQL identifier (``"`` doubled), so no name can break out of it."""
    if not name or "\x00" in name:
        raise UnsafeIdentifierError(f"invalid SQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Accept only plain names (letters, digits, underscore): what Glue and Athena allow."""
    if not IDENTIFIER.match(name):
        raise UnsafeIdentifierError(
            f"{what} {name!r} is not a plain name (letters, digits, _; not starting with a digit)"
        )
    return name


class QuerySession(ABC):
    """One open connection: run SQL, register and drop catalog tables."""

    @abstractmethod
    def query(self, sql: str) -> pd.DataFrame: ...

    @abstractmethod
    def register_table(
        self, *, table: str, location: str, partition_types: dict[str, str] | None = None
    ) -> None:
        """Create or replace a catalog table over the Parquet files under ``location``."""

    @abstractmethod
    def drop_table(self, *, table: str) -> None: ...


class QueryEngine(dg.ConfigurableResource, ABC):
    """Runs SQL against the catalog database."""

    database: str = Field(default=DATABASE, description="Catalog database the tables live in.")

    @abstractmethod
    def connect(self, *, write: bool = False) -> AbstractContextManager[QuerySession]:
        """A session; ``write`` when the session will register tables."""

    def query(self, sql: str) -> pd.DataFrame:
        """Run one query and return its result as a pandas DataFrame."""
        with self.connect() as session:
            return session.query(sql)

    def table_name(self, table: str) -> str:
        """The quoted, database-qualified name to use in SQL."""
        return f"{quote_identifier(self.database)}.{quote_identifier(table)}"
