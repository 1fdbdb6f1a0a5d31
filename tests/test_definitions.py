"""Snapshot of the code location: an accidental rename or a lost owner shows up here."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg
import pytest

from car_rental_platform import definitions
from car_rental_platform.assets.common import REFRESH_OVER_CHECKED_DATA
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
        "refresh_rentals",
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


def test_catalog_and_analyses_refresh_eagerly_over_checked_data_and_nothing_else_does(
    repo: dg.RepositoryDefinition,
) -> None:
    for key in repo.asset_graph.get_all_asset_keys():
        condition = repo.asset_graph.get(key).automation_condition
        automated = key.path[0] in ("catalog", "analyses")
        assert condition == (REFRESH_OVER_CHECKED_DATA if automated else None), key


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


def test_kpi_and_catalog_tables_are_due_daily_after_the_refresh(
    repo: dg.RepositoryDefinition,
) -> None:
    for key in repo.asset_graph.get_all_asset_keys():
        policy = repo.asset_graph.get(key).freshness_policy
        if key.path[0] in ("kpi", "catalog"):
            assert isinstance(policy, dg.FreshnessPolicy), key
            assert policy.deadline_cron == "0 5 * * *", key  # two hours after 0 3 * * *
            assert policy.lower_bound_delta.total_seconds() == 2 * 3600, key
        else:
            assert policy is None, key
    assert repo.schedule_defs[0].cron_schedule == "0 3 * * *"


def test_every_declared_column_is_described(repo: dg.RepositoryDefinition) -> None:
    for key in repo.asset_graph.get_all_asset_keys():
        schema = (repo.asset_graph.get(key).metadata or {}).get("dagster/column_schema")
        if schema is None:
            continue
        columns = getattr(schema, "schema", schema).columns
        undescribed = [c.name for c in columns if not c.description]
        assert undescribed == [], key


def test_pipes_metadata_is_retyped_to_dagster_standard_keys() -> None:
    from car_rental_platform.assets.common import with_path

    reported = dg.MaterializeResult(
        asset_key=dg.AssetKey(["kpi", "daily_metrics"]),
        metadata={"path": "s3://lake/kpi/daily_metrics", "row_count": 31},
    )
    metadata = with_path(reported).metadata or {}
    assert metadata["path"] == dg.MetadataValue.path("s3://lake/kpi/daily_metrics")
    assert metadata["dagster/row_count"] == dg.MetadataValue.int(31)
    assert metadata["row_count"] == 31  # kept: the processed checks read it back


def test_catalog_schemas_carry_the_contract_descriptions() -> None:
    from car_rental_platform.assets.common import described_schema

    schema = described_schema({"rental_date": "date", "total_revenue": "decimal(18,2)"}, "x")
    assert [(c.name, c.description) for c in schema.columns] == [
        ("rental_date", "Date of the rental's start (UTC)"),
        ("total_revenue", "Sum of total_amount of the rentals"),
    ]
    rentals = described_schema({"total_amount": "decimal(18,2)", "odd": "int"}, "rentals")
    assert rentals.columns[0].description
    assert rentals.columns[1].description is None


ENVIRONMENT_USERS = {
    "settings.py": "the one place that reads settings",
    "main.py": "hands its environment on to the launched run",
    "java.py": "points JAVA_HOME at a JDK for the JVM that Spark starts (not a setting)",
    "resources/spark.py": "the Python of Spark's workers and of spark-submit (not a setting)",
    "resources/class_archive.py": "the same, for the spark-submit that builds the archive",
}


def test_only_the_settings_module_reads_the_environment() -> None:
    package = Path(definitions.__file__).parent
    readers = set()
    for module in package.rglob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr in ("environ", "getenv")
            ):
                readers.add(str(module.relative_to(package)))
    assert readers <= set(ENVIRONMENT_USERS)


def test_kinds_are_those_of_the_deployment() -> None:
    def kinds(target: Deployment) -> dict[str, set[str]]:
        return {
            spec.key.to_user_string(): set(spec.kinds)
            for assets in definitions.assets_for(target)
            for spec in assets.specs
        }

    local, aws = kinds(Deployment.LOCAL), kinds(Deployment.AWS)
    assert local["catalog/rentals"] == {"duckdb"}
    assert aws["catalog/rentals"] == {"glue"}
    assert local["analyses/top_spenders"] == {"sql", "pandas", "duckdb"}
    assert aws["analyses/top_spenders"] == {"sql", "pandas", "athena"}
    assert local["kpi/daily_metrics"] == aws["kpi/daily_metrics"] == {"spark", "parquet"}


def test_spark_tables_carry_the_code_version_of_the_spark_jobs_bundle(
    repo: dg.RepositoryDefinition,
) -> None:
    from car_rental_platform.code_bundle import bundle_digest, package_sources

    digest = bundle_digest(package_sources("spark_jobs"))
    for key in repo.asset_graph.get_all_asset_keys():
        version = repo.asset_graph.get(key).code_version
        assert version == (digest if key.path[0] in ("processed", "kpi") else None), key


def test_an_empty_setting_counts_as_unset() -> None:
    from car_rental_platform.settings import DEFAULT_SOURCE_DIR, LocalSettings

    empty = LocalSettings.from_env({"CAR_RENTAL_SOURCE_DIR": "", "CAR_RENTAL_LAKE_ROOT": ""})
    assert empty == LocalSettings.from_env({})
    assert empty.source_dir == str(Path(DEFAULT_SOURCE_DIR).resolve())


def test_the_steps_that_replace_lake_tables_run_one_at_a_time(tmp_path) -> None:
    """Two runs must never stage or swap the same table folders at once."""
    import shutil

    from car_rental_platform.assets.common import LAKE_WRITERS_POOL
    from car_rental_platform.assets.kpi import kpi_tables
    from car_rental_platform.assets.processed import processed_tables
    from car_rental_platform.assets.raw import raw_files
    from car_rental_platform.main import INSTANCE_CONFIG

    assert {a.op.pool for a in (raw_files, processed_tables, kpi_tables)} == {LAKE_WRITERS_POOL}
    shutil.copyfile(INSTANCE_CONFIG, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_every_check_can_be_executed_on_its_own(repo: dg.RepositoryDefinition) -> None:
    """The UI's "Execute" on a check runs a job of that check alone: it must resolve."""
    check_keys = sorted(
        {key for assets in repo.assets_defs_by_key.values() for key in assets.check_keys},
        key=str,
    )
    assert len(check_keys) == 34
    jobs = [
        dg.define_asset_job(f"check_{index}", selection=dg.AssetSelection.checks(key))
        for index, key in enumerate(check_keys)
    ]
    merged = dg.Definitions.merge(definitions.defs, dg.Definitions(jobs=jobs))
    for index in range(len(check_keys)):
        merged.resolve_job_def(f"check_{index}")  # "Failed to resolve asset job" before
