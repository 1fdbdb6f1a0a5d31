"""The code location: every asset, check, job, schedule and sensor, with the resources of the
deployment named by ``CAR_RENTAL_DEPLOYMENT`` (``local`` by default, or ``aws``)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from car_rental_platform.assets.analyses import ANALYSIS_ASSETS
from car_rental_platform.assets.catalog import CATALOG_ASSETS
from car_rental_platform.assets.kpi import kpi_tables
from car_rental_platform.assets.processed import processed_tables
from car_rental_platform.assets.raw import raw_files
from car_rental_platform.automation import (
    catalog_and_analyses_automation,
    daily_refresh_schedule,
    landing_sensor,
    refresh_all_job,
    refresh_kpis_job,
    refresh_rentals_job,
    report_failed_runs,
)
from car_rental_platform.settings import Deployment, LocalSettings, deployment, variables_set


def resources_for(target: Deployment) -> dict[str, Any]:
    """The resource dictionary of a deployment; every deployment has the same keys."""
    if target is Deployment.AWS:
        from car_rental_platform.resources.aws import SETTINGS, aws_resources

        return aws_resources(variables=variables_set(SETTINGS))
    from car_rental_platform.resources.local import local_resources

    return local_resources(LocalSettings.from_env())


ASSETS = [raw_files, processed_tables, kpi_tables, *CATALOG_ASSETS, *ANALYSIS_ASSETS]

FOREIGN_KINDS: dict[Deployment, frozenset[str]] = {
    Deployment.LOCAL: frozenset({"glue", "athena"}),
    Deployment.AWS: frozenset({"duckdb"}),
}
"""Kinds the asset code declares for both deployments (a catalog entry is a DuckDB view or a
Glue table) that do not apply to the other one."""


def assets_for(target: Deployment) -> list[dg.AssetsDefinition]:
    """The assets, their kinds those of the deployment (the UI shows only what runs there)."""

    def own_kinds(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(kinds=set(spec.kinds) - FOREIGN_KINDS[target])

    return dg.map_asset_specs(own_kinds, ASSETS)


DEPLOYMENT = deployment()

defs = dg.Definitions(
    assets=assets_for(DEPLOYMENT),
    jobs=[refresh_all_job, refresh_kpis_job, refresh_rentals_job],
    schedules=[daily_refresh_schedule],
    sensors=[landing_sensor, report_failed_runs, catalog_and_analyses_automation],
    resources=resources_for(DEPLOYMENT),
    # Steps run one after another in the run's process: the Spark steps are sequential by
    # lineage anyway, step start-up costs nothing, and resources live for the whole run, so
    # an EMR transient cluster is created once per run (not once per step process).
    executor=dg.in_process_executor,
)
