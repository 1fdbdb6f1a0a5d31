"""aws_resources(): the aws deployment's resource dictionary and where its settings come from."""

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pydantic
import pytest
from dagster_aws.utils import ResourceWithBoto3Configuration

from car_rental_platform.resources.aws import (
    SETTINGS,
    AthenaQueryEngine,
    EmrClusterTemplate,
    EmrSparkRunner,
    GlueCrawlerCatalog,
    S3Lake,
    S3Landing,
    aws_resources,
)
from car_rental_platform.resources.io_manager import LakehouseIOManager
from car_rental_platform.resources.local import local_resources
from car_rental_platform.settings import Deployment, LocalSettings
from tests.aws.support import AwsEnv

KEYS = {"lake", "landing", "spark", "catalog", "engine", "io_manager", "dashboard"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@dg.asset
def probe(
    lake: S3Lake,
    landing: S3Landing,
    spark: EmrSparkRunner,
    catalog: GlueCrawlerCatalog,
    engine: AthenaQueryEngine,
) -> dict[str, Any]:
    return {
        "bucket": lake.bucket,
        "region": lake.region_name,
        "prefix": landing.prefix,
        "cluster_id": spark.cluster_id,
        "cluster_name": spark.cluster_name,
        "poll": spark.poll_interval_seconds,
        "subnet": spark.cluster_template.subnet_id,
        "role": catalog.crawler_role_arn,
        "crawler_prefix": catalog.crawler_prefix,
        "workgroup": engine.workgroup,
        "database": engine.database,
    }


def _resolved(resources: dict[str, Any]) -> dict[str, Any]:
    result = dg.materialize([probe], resources={**resources, "io_manager": dg.InMemoryIOManager()})
    return result.output_for_node("probe")


def test_the_io_manager_shares_the_lake_and_engine(clean_env: pytest.MonkeyPatch) -> None:
    resources = aws_resources()
    assert set(resources) == KEYS
    io_manager = resources["io_manager"]
    assert isinstance(io_manager, LakehouseIOManager)
    assert io_manager.lake is resources["lake"]
    assert io_manager.engine is resources["engine"]


def test_same_keys_as_local_resources(clean_env: pytest.MonkeyPatch) -> None:
    assert set(aws_resources()) == set(local_resources(LocalSettings.from_env({})))


def test_the_code_location_loads_on_aws_with_nothing_set(clean_env: pytest.MonkeyPatch) -> None:
    from car_rental_platform.definitions import ASSETS, resources_for

    defs = dg.Definitions(assets=ASSETS, resources=resources_for(Deployment.AWS))
    dg.Definitions.validate_loadable(defs)


def test_set_variables_become_env_vars_resolved_when_the_run_starts(
    clean_env: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "CAR_RENTAL_BUCKET": "my-lake",
        "CAR_RENTAL_AWS_REGION": "eu-west-1",
        "CAR_RENTAL_EMR_CLUSTER_ID": "j-123",
        "CAR_RENTAL_EMR_POLL_SECONDS": "30",
        "CAR_RENTAL_EMR_SUBNET_ID": "subnet-1",
        "CAR_RENTAL_GLUE_CRAWLER_ROLE_ARN": "arn:aws:iam::1:role/r",
        "CAR_RENTAL_ATHENA_WORKGROUP": "analysts",
    }.items():
        clean_env.setenv(name, value)

    resources = aws_resources()

    assert resources["spark"].cluster_id == dg.EnvVar("CAR_RENTAL_EMR_CLUSTER_ID")
    clean_env.setenv("CAR_RENTAL_EMR_CLUSTER_ID", "j-456")
    assert _resolved(resources) == {
        "bucket": "my-lake",
        "region": "eu-west-1",
        "prefix": "landing/",
        "cluster_id": "j-456",
        "cluster_name": None,
        "poll": 30,
        "subnet": "subnet-1",
        "role": "arn:aws:iam::1:role/r",
        "crawler_prefix": "car-rental",
        "workgroup": "analysts",
        "database": "car_rental_db",
    }


def test_a_missing_bucket_fails_the_run_not_the_definitions(
    clean_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(dg.DagsterInvalidConfigError, match="CAR_RENTAL_BUCKET"):
        _resolved(aws_resources())


def test_given_settings_replace_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CAR_RENTAL_EMR_CLUSTER_NAME", "from-the-environment")
    resolved = _resolved(
        aws_resources(
            {
                "CAR_RENTAL_BUCKET": "b",
                "CAR_RENTAL_LANDING_PREFIX": "drop/",
                "CAR_RENTAL_EMR_CLUSTER_NAME": "analytics",
                "CAR_RENTAL_EMR_POLL_SECONDS": "5",
                "CAR_RENTAL_DATABASE": "sandbox_db",
            }
        )
    )
    assert (resolved["bucket"], resolved["prefix"], resolved["cluster_name"]) == (
        "b",
        "drop/",
        "analytics",
    )
    assert (resolved["poll"], resolved["database"], resolved["region"]) == (5, "sandbox_db", None)


def test_the_io_manager_of_the_dictionary_writes_to_s3_and_glue(aws_env: AwsEnv) -> None:
    aws_env.client("s3").create_bucket(Bucket=aws_env.bucket)

    @dg.asset(key=["analyses", "vehicle_types"])
    def vehicle_types() -> pd.DataFrame:
        return pd.DataFrame({"vehicle_type": ["basic"], "total_rentals": [3]})

    resources = aws_resources(
        {
            "CAR_RENTAL_BUCKET": aws_env.bucket,
            "CAR_RENTAL_AWS_REGION": aws_env.region,
            "CAR_RENTAL_AWS_ENDPOINT_URL": aws_env.endpoint_url,
        }
    )
    assert dg.materialize([vehicle_types], resources=resources).success

    table = aws_env.client("glue").get_table(DatabaseName="car_rental_db", Name="vehicle_types")
    location = table["Table"]["StorageDescriptor"]["Location"]
    assert location == f"s3://{aws_env.bucket}/analyses/vehicle_types/"


@pytest.mark.parametrize(
    ("resource", "field", "value"),
    [
        (EmrClusterTemplate, "core_market", "SPOTTY"),
        (EmrClusterTemplate, "core_instance_count", 0),
        (EmrClusterTemplate, "step_concurrency", 257),
        (AthenaQueryEngine, "timeout_seconds", 0),
        (GlueCrawlerCatalog, "poll_interval_seconds", -1),
    ],
)
def test_a_setting_out_of_bounds_fails_when_the_resource_is_built_naming_the_field(
    resource: type, field: str, value: object
) -> None:
    required = {"bucket": "b"} if resource is not EmrClusterTemplate else {}
    with pytest.raises(pydantic.ValidationError, match=field):
        resource(**required, **{field: value})


def test_every_aws_resource_connects_through_dagster_aws_boto3_settings(
    aws_env: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dagster-aws's configuration class, our retry budget, botocore's standard retry mode."""
    for resource in (S3Lake, S3Landing, EmrSparkRunner, GlueCrawlerCatalog, AthenaQueryEngine):
        assert issubclass(resource, ResourceWithBoto3Configuration)
    lake = S3Lake(bucket="b", region_name="eu-west-1", endpoint_url=aws_env.endpoint_url)

    client = lake.get_client()

    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == aws_env.endpoint_url
    # botocore's max_attempts counts retries: 8 of them after the first call.
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 9}
    assert lake.get_client() is client, "one client per settings, shared"
    retries = S3Lake(bucket="b", max_attempts=3).get_client().meta.config.retries
    assert retries == {"mode": "standard", "total_max_attempts": 4}
    config = tmp_path / "aws-config"
    config.write_text("[profile analytics]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # it would win over the profile's region
    assert S3Lake(bucket="b", profile_name="analytics").get_client().meta.region_name == (
        "ap-south-1"
    )
