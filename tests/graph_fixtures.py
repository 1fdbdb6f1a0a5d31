"""Materialize the whole local graph once per test session, into a temporary lake."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from car_rental_platform.definitions import ASSETS
from car_rental_platform.partitions import landed_batches, range_tags, register
from car_rental_platform.resources.local import local_resources
from car_rental_platform.sample_data.generator import SampleSummary, generate
from car_rental_platform.settings import LocalSettings

SMALL_RENTALS = 600


@dataclass(frozen=True)
class MaterializedGraph:
    settings: LocalSettings
    sample: SampleSummary
    instance: dg.DagsterInstance
    result: dg.ExecuteInProcessResult

    def query(self, sql: str):
        engine = local_resources(self.settings)["engine"]
        return engine.query(sql)


def settings_for(root: Path) -> LocalSettings:
    return LocalSettings.from_env(
        {
            "CAR_RENTAL_SOURCE_DIR": str(root / "landing"),
            "CAR_RENTAL_LAKE_ROOT": str(root / "lake"),
        }
    )


def landed_range(instance: dg.DagsterInstance, landing: Path | str) -> dict[str, str]:
    """Run tags over every rentals export in ``landing``, registered as partitions first:
    what a backfill of all partitions (or ``make run`` on a new lake) launches."""
    names = [p.name for p in Path(landing).glob("*.csv")]
    return range_tags(instance, register(instance, landed_batches(names)))


def materialize_graph(root: Path, instance: dg.DagsterInstance) -> MaterializedGraph:
    settings = settings_for(root)
    sample = generate(Path(settings.source_dir), rentals=SMALL_RENTALS, seed=7)
    result = dg.materialize(
        ASSETS,
        resources=local_resources(settings),
        instance=instance,
        tags=landed_range(instance, settings.source_dir),
        raise_on_error=False,
    )
    return MaterializedGraph(settings, sample, instance, result)
