"""Snapshot of the code location: an accidental rename or a lost owner shows up here."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import pytest

from car_rental_platform import definitions
from car_rental_platform.settings import Deployment, SettingsError, deployment

ASSET_KEYS = sorted(
    [f"raw/{t}" for t in ("vehicles", "users", "locations", "rentals")]
    + [f"processed/{t}" for t in ("vehicles", "users", "locations", "rentals", "rejected_rows")]
    + [
        f"kpi/{t}"
        for t in (
            "location_metrics", "vehicle_type_metrics", "brand_metrics", "daily_metrics",
            "user_metrics", "hourly_metrics", "day_of_week_metrics",
        )
    ]
    + [
        f"catalog/{t}"
        for t in (
            "vehicles", "users", "locations", "rentals", "rejected_rows", "location_metrics",
            "vehicle_type_metrics", "brand_metrics", "daily_metrics", "user_metrics",
            "hourly_metrics", "day_of_week_metrics",
        )
    ]
    + [
        f"analyses/{t}"
        for t in (
            "top_locations_by_revenue", "vehicle_types_by_rentals", "top_spenders",
            "daily_revenue_trend", "hourly_pattern", "weekday_pattern", "top_brands_by_revenue",
            "city_state_rollup",
        )
    ]
)  # fmt: skip


@pytest.fixture(scope="module")
def repo() -> dg.RepositoryDefinition:
    return definitions.defs.get_repository_def()


def test_asset_keys(repo: dg.RepositoryDefinition) -> None:
    keys = sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys())
    assert keys == ASSET_KEYS


def test_every_asset_is_documented_grouped_owned_and_kinded(repo: dg.RepositoryDefinition) -> None:
    for key in repo.asset_graph.get_all_asset_keys():
        node = repo.asset_graph.get(key)
        assert node.description, key
        assert node.group_name == key.path[0], key
        assert node.owners == ["team:data-platform"], key
        assert node.kinds, key


def test_jobs_schedules_and_sensors(repo: dg.RepositoryDefinition) -> None:
    assert {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")} == {
        "refresh_all",
        "refresh_kpis",
    }
    assert [(s.name, s.job_name, s.cron_schedule) for s in repo.schedule_defs] == [
        ("daily_refresh", "refresh_all", "0 3 * * *")
    ]
    # One automation sensor of our own, so Dagster adds no (stopped) default one.
    assert sorted(s.name for s in repo.sensor_defs) == [
        "catalog_and_analyses_automation",
        "landing_sensor",
        "report_failed_runs",
    ]


def test_catalog_and_analyses_refresh_eagerly_and_nothing_else_does(
    repo: dg.RepositoryDefinition,
) -> None:
    for key in repo.asset_graph.get_all_asset_keys():
        condition = repo.asset_graph.get(key).automation_condition
        assert (condition is not None) == (key.path[0] in ("catalog", "analyses")), key


def test_the_automation_sensor_runs_from_the_start_over_every_automated_asset(
    repo: dg.RepositoryDefinition,
) -> None:
    sensor = definitions.defs.get_sensor_def("catalog_and_analyses_automation")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    covered = sensor.asset_selection.resolve(repo.asset_graph)
    automated = {
        key
        for key in repo.asset_graph.get_all_asset_keys()
        if repo.asset_graph.get(key).automation_condition is not None
    }
    assert covered == automated
    assert {key.path[0] for key in covered} == {"catalog", "analyses"}


def test_deployments_have_the_same_resource_keys() -> None:
    local = definitions.resources_for(Deployment.LOCAL)
    aws = definitions.resources_for(Deployment.AWS)
    assert set(local) == set(aws) == {
        "landing", "lake", "spark", "catalog", "engine", "io_manager", "dashboard"
    }  # fmt: skip


def test_unknown_deployment_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="CAR_RENTAL_DEPLOYMENT='azure'"):
        deployment({"CAR_RENTAL_DEPLOYMENT": "azure"})


def test_asset_code_never_asks_which_deployment_it_is_in() -> None:
    assets = Path(definitions.__file__).with_name("assets")
    for module in assets.glob("*.py"):
        tree = ast.parse(module.read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert "os" not in names and "Deployment" not in names, module.name
        assert not any("CAR_RENTAL" in str(s) for s in strings), module.name
