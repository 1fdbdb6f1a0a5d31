"""infra_scripts.common: policy comparison, dry-run reporting, retry on IAM propagation."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from infra_scripts.common import Plan, retry_while_iam_propagates, same_policy

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "x"}],
}


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateCrawler")


def test_same_policy_ignores_encoding_order_and_list_forms() -> None:
    echoed = {
        "Statement": [{"Resource": ["x"], "Action": "s3:GetObject", "Effect": "Allow", "Sid": "A"}],
        "Version": "2012-10-17",
    }
    assert same_policy(echoed, POLICY)
    assert same_policy(quote(json.dumps(POLICY)), POLICY), "IAM returns URL-encoded JSON"
    widened = json.loads(json.dumps(POLICY))
    widened["Statement"][0]["Action"].append("s3:PutObject")
    assert not same_policy(widened, POLICY)
    assert same_policy(
        {"Statement": [{"Action": ["b", "a"]}]}, {"Statement": [{"Action": ["a", "b"]}]}
    )
    assert not same_policy(
        {"Statement": [{"Sid": "1"}, {"Sid": "2"}]}, {"Statement": [{"Sid": "2"}]}
    )


def test_dry_run_reports_without_applying(capsys: pytest.CaptureFixture[str]) -> None:
    applied: list[str] = []
    plan = Plan(dry_run=True)
    plan.change("create", "thing", "one", lambda: applied.append("one"))
    plan.ok("thing", "two", "fine")

    assert applied == []
    assert capsys.readouterr().out.splitlines() == [
        "would create     thing one",
        "ok (unchanged)   thing two (fine)",
    ]
    assert [a.name for a in plan.changes] == ["one"]
    assert plan.summary() == "dry run: 1 change(s) would be made, nothing was changed"


def test_retry_waits_only_for_role_propagation() -> None:
    waits: list[float] = []
    outcomes: list[object] = [
        _error("InvalidInputException", "Service is unable to assume provided role"),
        _error("ValidationException", "Invalid InstanceProfile: car-rental-emr-ec2-profile."),
        "created",
    ]

    def call() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry_while_iam_propagates(call, sleep=waits.append) == "created"
    assert waits == [4.0, 8.0]

    def bad_request() -> None:
        raise _error("InvalidInputException", "Database car_rental_db not found")

    with pytest.raises(ClientError, match="not found"):
        retry_while_iam_propagates(bad_request, sleep=waits.append)
    assert waits == [4.0, 8.0], "other errors are not retried"


def test_retry_gives_up_after_the_last_attempt() -> None:
    waits: list[float] = []

    def never_ready() -> None:
        raise _error("InvalidInputException", "Service is unable to assume provided role")

    with pytest.raises(ClientError):
        retry_while_iam_propagates(never_ready, attempts=3, sleep=waits.append)
    assert waits == [4.0, 8.0]
