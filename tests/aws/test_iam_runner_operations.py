"""The runner policy allows every AWS call the resources make, and grants nothing beyond them.

The calls are listed in runner_permissions.OPERATIONS. Here the list is held to the source
(each ``<client>.<operation>(`` call, paginator and managed transfer in
``car_rental_platform/resources/aws/`` and in the helpers those call with their clients) and
to the policy document; the aws graph tests also check every call recorded while the asset
graph runs against moto (test_graph_aws.py, test_landing_sensor_s3.py).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name
from dagster_aws.pipes import PipesS3MessageReader

import car_rental_platform.resources.aws as aws_resources_package
from car_rental_platform import aws_names, code_bundle
from tests.aws.runner_permissions import (
    EXAMPLE,
    ON_BEHALF,
    OPERATIONS,
    TRANSFER_METHODS,
    Request,
    allowed,
    denied,
    runner_policy,
)

SERVICES = ("s3", "emr", "glue", "athena", "sts")
RECEIVERS = {
    "s3": "s3",
    "s3_client": "s3",
    "client": "s3",  # PipesS3MessageReader's S3 client
    "get_client()": "s3",  # S3Lake / S3Landing
    "emr": "emr",
    "glue": "glue",
    "athena": "athena",
    "sts": "sts",
}
"""Variable names the source gives boto3 clients, and their service."""
NOT_CLIENTS = {"jobs"}
"""Receivers of methods named like an operation that are not clients (EmrJobs.cancel_steps)."""
HELPERS = (
    code_bundle.upload_bundle,
    code_bundle.missing_keys,
    code_bundle.upload_bootstrap,
    code_bundle.s3_object_exists,
    aws_names.active_clusters,
    PipesS3MessageReader,
)
"""Code outside resources/aws that the resources call with their own clients."""
CALL = re.compile(r"(?=\b(\w+(?:\(\))?)\.([a-z]\w*)\(\s*(?:\"(\w+)\")?)")


def _sources() -> dict[str, str]:
    folder = Path(aws_resources_package.__file__).parent
    sources = {path.name: path.read_text() for path in sorted(folder.glob("*.py"))}
    sources.update({helper.__qualname__: inspect.getsource(helper) for helper in HELPERS})
    return sources


def called_operations() -> set[str]:
    """``service:Operation`` of every boto3 call in the sources (transfers expanded)."""
    session = botocore.session.get_session()
    operations = {
        service: {xform_name(op): op for op in session.get_service_model(service).operation_names}
        for service in SERVICES
    }
    found = set()
    for where, source in _sources().items():
        for receiver, method, argument in CALL.findall(source):
            name = argument if method == "get_paginator" else method
            if not any(name in ops for ops in operations.values()) and name not in (
                TRANSFER_METHODS
            ):
                continue
            if receiver in NOT_CLIENTS:
                continue
            service = RECEIVERS.get(receiver)
            assert service, f"{where}: {receiver}.{name}(: which client is {receiver!r}?"
            if service == "s3" and name in TRANSFER_METHODS:
                found |= {f"s3:{op}" for op in TRANSFER_METHODS[name]}
            else:
                assert name in operations[service], f"{where}: {service} has no {name}"
                found.add(f"{service}:{operations[service][name]}")
    return found


def test_the_list_holds_every_call_in_the_source_and_nothing_else() -> None:
    found = called_operations()
    assert sorted(found - set(OPERATIONS)) == [], "called, but missing from OPERATIONS"
    assert sorted(set(OPERATIONS) - found) == [], "in OPERATIONS, but no longer called"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_the_runner_policy_allows_the_call(operation: str) -> None:
    calls = [(operation, params) for params in OPERATIONS[operation].examples]
    assert denied(calls, EXAMPLE) == []


def test_the_runner_policy_grants_nothing_the_calls_do_not_need() -> None:
    needed = {
        request.action
        for name, operation in OPERATIONS.items()
        for params in operation.examples
        for request in operation.needs(params, EXAMPLE)
    }
    granted = {
        action
        for statement in runner_policy(EXAMPLE)["Statement"]
        for action in statement["Action"]
    }
    assert granted - needed == set(ON_BEHALF)
    assert needed <= granted


def test_the_evaluator_refuses_what_the_policy_does_not_grant() -> None:
    """So that the checks above cannot pass by an evaluator that allows everything."""
    policy = runner_policy(EXAMPLE)
    bucket = f"arn:aws:s3:::{EXAMPLE.bucket}"
    cluster = EXAMPLE.arn("elasticmapreduce", "cluster/j-1")
    refused = [
        Request("s3:GetObject", "arn:aws:s3:::another-bucket/landing/users.csv"),
        Request("s3:PutObject", f"{bucket}/landing/users.csv"),
        Request("s3:ListBucket", bucket, {"s3:prefix": "secrets/"}),
        Request("s3:ListBucket", bucket),
        Request("elasticmapreduce:DescribeCluster", cluster),
        Request(
            "elasticmapreduce:TerminateJobFlows",
            cluster,
            {"elasticmapreduce:ResourceTag/project": "another-project"},
        ),
        Request("elasticmapreduce:RunJobFlow", "*"),
        # Another team's cluster: no idle timeout that would end it (a way round the tag-scoped
        # TerminateJobFlows), and none at launch either, where the new cluster has no tags yet.
        Request(
            "elasticmapreduce:PutAutoTerminationPolicy",
            cluster,
            {"elasticmapreduce:ResourceTag/project": "another-project"},
        ),
        Request("elasticmapreduce:PutAutoTerminationPolicy", cluster),
        Request("elasticmapreduce:AddTags", cluster, {"elasticmapreduce:RequestTag/project": "x"}),
        Request("glue:CreateCrawler", "*"),
        Request(
            "iam:PassRole",
            EXAMPLE.role("car-rental-emr-ec2-role"),
            {"iam:PassedToService": "elasticmapreduce.amazonaws.com"},
        ),
        Request(
            "iam:CreateServiceLinkedRole",
            "arn:aws:iam::111122223333:role/aws-service-role/glue.amazonaws.com/AWSServiceRoleForGlue",
            {"iam:AWSServiceName": "glue.amazonaws.com"},
        ),
        Request(
            "iam:PassRole",
            EXAMPLE.role("car-rental-glue-crawler-role"),
            {"iam:PassedToService": "ec2.amazonaws.com"},
        ),
        Request("glue:DeleteTable", EXAMPLE.arn("glue", "table/other_db/users")),
        Request("glue:StartCrawler", EXAMPLE.arn("glue", "crawler/someone-elses")),
        Request("glue:TagResource", EXAMPLE.arn("glue", "catalog")),
        Request("athena:StartQueryExecution", EXAMPLE.arn("athena", "workgroup/primary")),
    ]
    assert [str(r) for r in refused if allowed(policy, r)] == []


def test_a_launch_carrying_its_auto_termination_policy_would_be_refused() -> None:
    """Why EmrClusters sets the idle timeout after RunJobFlow: inside the launch EMR authorizes
    PutAutoTerminationPolicy on a cluster that has no tags yet, which the policy refuses."""
    launch = {
        **OPERATIONS["emr:RunJobFlow"].examples[0],
        "AutoTerminationPolicy": {"IdleTimeout": 1800},
    }
    refused = [
        (name, str(request)) for name, request in denied([("emr:RunJobFlow", launch)], EXAMPLE)
    ]
    new_cluster = EXAMPLE.arn("elasticmapreduce", "cluster/j-NEW")
    assert refused == [
        ("emr:RunJobFlow", f"elasticmapreduce:PutAutoTerminationPolicy on {new_cluster}")
    ]
