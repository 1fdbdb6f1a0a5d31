"""What every asset shares: owners, the contract's schemas as Dagster table schemas."""

import dagster as dg

from spark_jobs.contract import Column

OWNERS = ["team:data-platform"]


def table_schema(columns: tuple[Column, ...]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in columns]
    )


def with_metadata(result: dg.MaterializeResult, extra: dict[str, object]) -> dg.MaterializeResult:
    """A Pipes-reported materialization with Dagster-side metadata added."""
    return dg.MaterializeResult(
        asset_key=result.asset_key, metadata={**(result.metadata or {}), **extra}
    )
