"""The GitHub Actions workflow that materializes assets on AWS: its command, its settings, and
that it carries no credentials (they come from OIDC and the repository's secret store)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from car_rental_platform.definitions import ASSETS
from car_rental_platform.resources.aws import aws_resources
from infra_scripts import iam_roles

WORKFLOW = Path(__file__).parents[2] / ".github" / "workflows" / "aws-materialize.yml"
COMMAND = (
    '.venv/bin/dagster asset materialize --select "$SELECTION" -m car_rental_platform.definitions'
)


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return workflow.get("on", workflow.get(True))


def _job(workflow: dict[str, Any]) -> dict[str, Any]:
    (job,) = workflow["jobs"].values()
    return job


def _step(job: dict[str, Any], predicate: Any) -> tuple[int, dict[str, Any]]:
    (found,) = [(i, step) for i, step in enumerate(job["steps"]) if predicate(step)]
    return found


def test_runs_on_demand_with_a_selection_and_weekly(workflow: dict[str, Any]) -> None:
    triggers = _triggers(workflow)
    selection = triggers["workflow_dispatch"]["inputs"]["selection"]
    assert selection["default"] == "kpi/daily_metrics*"
    (schedule,) = triggers["schedule"]
    *_, day, month, weekday = schedule["cron"].split()
    assert (day, month) == ("*", "*") and weekday != "*", "once a week"
    env = _job(workflow)["env"]
    assert env["SELECTION"] == "${{ inputs.selection || 'kpi/daily_metrics*' }}"


def test_materializes_with_the_aws_deployment(workflow: dict[str, Any]) -> None:
    job = _job(workflow)
    env = job["env"]
    assert env["CAR_RENTAL_DEPLOYMENT"] == "aws"
    assert env["CAR_RENTAL_BUCKET"] == "${{ vars.CAR_RENTAL_BUCKET }}"
    assert env["CAR_RENTAL_EMR_CLUSTER_NAME"] == "${{ vars.CAR_RENTAL_EMR_CLUSTER_NAME }}"
    assert env["CAR_RENTAL_AWS_REGION"] == "${{ vars.AWS_REGION }}"
    assert env["CAR_RENTAL_EMR_SUBNET_ID"] == "${{ vars.CAR_RENTAL_EMR_SUBNET_ID }}"

    checkout, _ = _step(job, lambda s: s.get("uses", "").startswith("actions/checkout@"))
    python, setup = _step(job, lambda s: s.get("uses", "").startswith("actions/setup-python@"))
    install, _ = _step(job, lambda s: s.get("run") == "make install")
    aws, credentials = _step(
        job, lambda s: s.get("uses") == "aws-actions/configure-aws-credentials@v4"
    )
    run, materialize = _step(job, lambda s: COMMAND in s.get("run", ""))
    assert checkout < python < install < run and aws < run
    assert setup["with"]["python-version"] == "3.11"
    assert credentials["with"] == {
        "role-to-assume": "${{ secrets.AWS_ROLE_ARN }}",
        "role-session-name": "car-rental-materialize-${{ github.run_id }}",
        "aws-region": "${{ vars.AWS_REGION }}",
        "role-duration-seconds": iam_roles.CI_SESSION_SECONDS,
    }
    assert workflow["permissions"]["id-token"] == "write", "OIDC"
    home = materialize["env"]["DAGSTER_HOME"]
    assert home.startswith("${{ runner.temp }}/")
    assert 'mkdir -p "$DAGSTER_HOME"' in materialize["run"]


def test_credentials_last_as_long_as_the_job_and_the_role_allows_it(
    workflow: dict[str, Any],
) -> None:
    job = _job(workflow)
    _, credentials = _step(
        job, lambda s: s.get("uses") == "aws-actions/configure-aws-credentials@v4"
    )
    assert credentials["with"]["role-duration-seconds"] == job["timeout-minutes"] * 60
    _, roles = iam_roles.desired_state(
        bucket="b", region="eu-west-1", account="111122223333", github_repository="acme/repo"
    )
    ci_role = next(role for role in roles if role.name == iam_roles.GITHUB_ACTIONS_ROLE)
    assert ci_role.max_session_seconds >= job["timeout-minutes"] * 60


def test_no_credentials_are_committed() -> None:
    text = WORKFLOW.read_text()
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", text), "an access key id"
    lowered = text.lower()
    for name in ("aws_secret_access_key", "aws-secret-access-key", "aws_access_key_id"):
        assert name not in lowered
    assert "aws-access-key-id" not in lowered
    assert set(re.findall(r"secrets\.(\w+)", text)) == {"AWS_ROLE_ARN"}


def test_the_default_selection_is_the_daily_kpi_and_what_reads_it() -> None:
    """Resolved as the CLI resolves --select (comma-separated, AssetSelection.from_coercible)."""
    defs = dg.Definitions(assets=ASSETS, resources=aws_resources({"CAR_RENTAL_BUCKET": "b"}))
    selection = dg.AssetSelection.from_coercible(["kpi/daily_metrics*"])
    keys = selection.resolve(defs.resolve_asset_graph())
    assert sorted(key.to_user_string() for key in keys) == [
        "analyses/daily_revenue_trend",
        "catalog/daily_metrics",
        "kpi/daily_metrics",
    ]
