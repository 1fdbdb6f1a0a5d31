"""glue.py: crawler and workgroup settings, drift detection, and runs against moto.

moto 5.2 implements neither ``glue:UpdateCrawler`` nor ``athena:UpdateWorkGroup`` (HTTP 500), so
drift is created by hand and checked through the pure diff functions and ``--dry-run``; the
update calls themselves are not exercised.
"""

from __future__ import annotations

import json

import pytest

from car_rental_platform import aws_names
from infra_scripts import glue
from spark_jobs.contract import Zone
from tests.aws.support import AwsEnv, changed_lines

BUCKET = "my-lake"
ROLE_ARN = "arn:aws:iam::123456789012:role/car-rental-glue-crawler-role"


def _processed() -> dict:
    return glue.crawler_settings(BUCKET, "processed", role=ROLE_ARN)


def test_crawler_names_follow_the_prefix() -> None:
    assert glue.crawler_names() == {
        Zone.PROCESSED: "car-rental-processed-crawler",
        Zone.KPI: "car-rental-kpi-crawler",
    }
    assert aws_names.crawler_name("kpi", "acme") == "acme-kpi-crawler"


def test_crawler_settings() -> None:
    settings = _processed()
    assert settings["Targets"]["S3Targets"][0]["Path"] == f"s3://{BUCKET}/processed/"
    assert settings["SchemaChangePolicy"] == {
        "UpdateBehavior": "UPDATE_IN_DATABASE",
        "DeleteBehavior": "DEPRECATE_IN_DATABASE",
    }
    assert settings["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}
    assert settings["TablePrefix"] == ""
    assert json.loads(settings["Configuration"]) == {
        "Version": 1.0,
        "Grouping": {
            "TableGroupingPolicy": "CombineCompatibleSchemas",
            "TableLevelConfiguration": 2,
        },
        "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
    }


def test_crawler_differences_ignore_form_and_find_substance() -> None:
    desired = _processed()
    echoed = desired | {
        "Role": "car-rental-glue-crawler-role",
        "Configuration": json.dumps(json.loads(desired["Configuration"]), indent=4),
        "Targets": {"S3Targets": desired["Targets"]["S3Targets"], "JdbcTargets": []},
        "State": "READY",
    }
    assert glue.crawler_differences(echoed, desired) == []

    seed_like = desired | {
        "SchemaChangePolicy": {
            "UpdateBehavior": "UPDATE_IN_DATABASE",
            "DeleteBehavior": "DELETE_FROM_DATABASE",
        },
        "Targets": {"S3Targets": [{"Path": f"s3://{BUCKET}/processed/"}]},
        "Configuration": '{"Version": 1.0}',
    }
    assert glue.crawler_differences(seed_like, desired) == [
        "SchemaChangePolicy",
        "Targets",
        "Configuration",
    ]


def test_workgroup_differences() -> None:
    desired = glue.workgroup_settings(BUCKET)
    assert glue.workgroup_differences(desired, desired) == []
    loose = desired | {
        "EnforceWorkGroupConfiguration": False,
        "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/temp/athena_results/"},
    }
    assert glue.workgroup_differences(loose, desired) == [
        "OutputLocation",
        "EncryptionConfiguration",
        "EnforceWorkGroupConfiguration",
    ]
    assert glue.workgroup_settings(BUCKET, "arn:aws:kms:eu-west-1:1:key/k")["ResultConfiguration"][
        "EncryptionConfiguration"
    ] == {"EncryptionOption": "SSE_KMS", "KmsKey": "arn:aws:kms:eu-west-1:1:key/k"}


def test_second_run_changes_nothing(aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert glue.main(aws_env.cli_args()) == 0
    assert glue.main(aws_env.cli_args()) == 0
    first, second = capsys.readouterr().out.split("change(s) made")
    assert len(changed_lines(first)) == 4  # database, two crawlers, workgroup
    assert changed_lines(second) == []


def test_hand_made_drift_is_reported_as_updates(
    aws_env: AwsEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    name = aws_names.crawler_name("processed")
    client = aws_env.client("glue")
    client.create_database(DatabaseInput={"Name": "car_rental_db"})
    client.create_crawler(
        Name=name,
        Role=aws_names.GLUE_CRAWLER_ROLE,
        DatabaseName="car_rental_db",
        Targets={"S3Targets": [{"Path": f"s3://{aws_env.bucket}/output/"}]},
        SchemaChangePolicy={
            "UpdateBehavior": "UPDATE_IN_DATABASE",
            "DeleteBehavior": "DELETE_FROM_DATABASE",
        },
    )
    aws_env.client("athena").create_work_group(
        Name="car-rental",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://elsewhere/"}},
    )

    assert glue.main([*aws_env.cli_args(), "--dry-run"]) == 0
    planned = changed_lines(capsys.readouterr().out)

    assert f"would update     glue crawler {name} (" in planned[0]
    assert "Targets" in planned[0] and "SchemaChangePolicy" in planned[0]
    assert planned[1].startswith("would create     glue crawler car-rental-kpi-crawler")
    assert planned[2].startswith("would update     athena workgroup car-rental (OutputLocation")
    assert len(planned) == 3
