"""What the Dagster instance knows that the catalog does not: when data was refreshed, and the
latest result of every asset check. Read through Dagster's public instance API only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from car_rental_platform.assets.catalog import CATALOGED, catalog_key
from car_rental_platform.settings import dagster_home


@contextmanager
def open_instance() -> Iterator[dg.DagsterInstance | None]:
    """The instance at ``DAGSTER_HOME`` when that folder exists, else None (nothing recorded).

    Disposed on exit: a page opens it on every rerun.
    """
    if dagster_home() is None:
        yield None
        return
    with dg.DagsterInstance.get() as instance:
        yield instance


def last_refreshed(instance: dg.DagsterInstance) -> datetime | None:
    """When a catalog table was last materialized (what SQL users see changed then)."""
    stamps = [
        event.timestamp
        for tables in CATALOGED.values()
        for table in tables
        if (event := instance.get_latest_materialization_event(catalog_key(table))) is not None
    ]
    return datetime.fromtimestamp(max(stamps), tz=UTC) if stamps else None


def check_keys() -> list[dg.AssetCheckKey]:
    """Every asset check of the code location, in a stable order."""
    from car_rental_platform.definitions import ASSETS

    keys = {key for assets in ASSETS for key in assets.check_keys}
    return sorted(keys, key=lambda k: (k.asset_key.to_user_string(), k.name))


def latest_check_results(instance: dg.DagsterInstance) -> pd.DataFrame:
    """The latest outcome of every check ever evaluated, the ones that did not pass first."""
    rows = []
    for key in check_keys():
        record = instance.get_latest_asset_check_evaluation_record(key)
        evaluation = record.evaluation if record is not None else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            continue  # never run, or planned in a run that has not evaluated it yet
        metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        rows.append(
            {
                "asset": key.asset_key.to_user_string(),
                "check": key.name,
                "passed": evaluation.passed,
                "severity": evaluation.severity.value,
                "evaluated_at": datetime.fromtimestamp(record.create_timestamp, tz=UTC),
                "details": ", ".join(f"{k}={v}" for k, v in metadata.items()),
            }
        )
    columns = ["asset", "check", "passed", "severity", "evaluated_at", "details"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["passed", "asset", "check"], kind="stable", ignore_index=True)
