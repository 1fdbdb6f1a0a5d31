"""What every asset shares: owners, the contract's schemas as Dagster table schemas."""

import dagster as dg

from car_rental_platform.resources.spark import with_metadata
from spark_jobs.contract import Column

OWNERS = ["team:data-platform"]


def table_schema(columns: tuple[Column, ...]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in columns]
    )


def plain_metadata(result: dg.MaterializeResult) -> dict[str, object]:
    """A materialization's metadata as plain Python values (Pipes sends typed values)."""
    return {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}


def with_path(result: dg.MaterializeResult) -> dg.MaterializeResult:
    """A Pipes-reported materialization whose ``path`` (sent as text) becomes a path value."""
    path = str(plain_metadata(result)["path"])
    return with_metadata(result, {"path": dg.MetadataValue.path(path)})
