"""AWS fixtures: one local moto server (a real HTTP endpoint) per test session.

Reuse them in any test that talks to AWS through boto3:

``moto_endpoint`` (session scope)
    Starts ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a free port, puts fake
    credentials, ``AWS_DEFAULT_REGION=us-east-1`` and ``AWS_ENDPOINT_URL`` (so even a client
    created without ``endpoint_url=`` talks to moto) into the environment, and yields the
    endpoint URL, e.g. ``http://127.0.0.1:54321``. Pass it as ``endpoint_url=`` to boto3 or as
    ``--endpoint-url`` to the ``infra_scripts``. The server stops at the end of the session.

``aws_env`` (function scope)
    Resets all moto state (``POST {endpoint}/moto-api/reset``) and returns an ``AwsEnv``:
    ``endpoint_url``, ``region`` (us-east-1), ``bucket`` (a unique name, not created),
    ``client(service)`` and ``cli_args()`` (``--region --bucket --endpoint-url`` for a script).

``fake_emr``, ``crawls`` (function scope)
    Play what moto does not: EMR steps (``support.FakeEmr``: a step ends as the test scripted,
    after its "job" reported through Pipes) and Glue crawls (``support.ScriptedCrawls``: a crawl
    ends as scripted, after writing the catalog tables it would have found).

``aws_calls`` (function scope)
    Records every AWS API call the platform's resources make (``support.AwsCalls``), through
    botocore's ``before-parameter-build`` event on the clients they get from ``aws_client``.

``wheel_cache`` (session scope, automatic)
    The EMR bootstrap's pinned wheels (``code_bundle.pinned_wheels``) are downloaded at most once
    per pin set into the repository's ``.cache/emr-wheels/`` (gitignored), never into the user's
    own cache: a clean checkout (CI) downloads them once, later runs not at all.

moto only knows the AWS managed policies it is told to load; loading all ~1,500 of them costs
about two seconds per reset, so the server gets only those that ``infra_scripts.iam`` attaches.

What moto 5.2 cannot emulate, and how the tests cope:
- ``elasticmapreduce:PutAutoTerminationPolicy`` does not exist in moto: the server gets one
  that keeps the policy on moto's cluster (``support.emulate_auto_termination``).
- ``glue:UpdateCrawler`` and ``athena:UpdateWorkGroup`` are not implemented: drift is tested
  through the pure diff functions and ``--dry-run`` ("would update ..."), never applied.
- bucket-policy conditions such as ``aws:SecureTransport`` are ignored, so the TLS-only deny
  statement denies every object request: runs that touch objects pass ``--skip-tls-policy``.
- IAM policies are stored and validated but not enforced; tests inspect the documents instead.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from car_rental_platform import code_bundle
from car_rental_platform.resources.aws import clients
from infra_scripts.iam_roles import EMR_SERVICE_MANAGED_POLICY
from tests.aws.support import (
    AwsCalls,
    AwsEnv,
    FakeEmr,
    ScriptedCrawls,
    drive_crawls,
    drive_emr,
    emulate_auto_termination,
)

REGION = "us-east-1"
WHEEL_CACHE = Path(__file__).parents[2] / ".cache" / "emr-wheels"
ATTACHED_AWS_MANAGED_POLICIES = (EMR_SERVICE_MANAGED_POLICY.rsplit("/", 1)[-1],)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _only_attached_managed_policies() -> str:
    from moto.iam import models

    every_policy = json.loads(models.aws_managed_policies_data)
    return json.dumps({name: every_policy[name] for name in ATTACHED_AWS_MANAGED_POLICIES})


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from moto.iam import models
    from moto.server import ThreadedMotoServer

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    no_config = str(tmp_path_factory.mktemp("aws") / "absent")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_PROFILE"):
            patch.delenv(name, raising=False)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            patch.setenv(name, "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_CONFIG_FILE", no_config)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", no_config)
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        patch.setattr(models, "aws_managed_policies_data", _only_attached_managed_policies())
        emulate_auto_termination(patch)
        # One werkzeug log line per request would bury a failing test's own output.
        patch.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture(scope="session", autouse=True)
def wheel_cache() -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(code_bundle, "WHEEL_CACHE", WHEEL_CACHE)
        yield WHEEL_CACHE


@pytest.fixture
def aws_env(moto_endpoint: str) -> AwsEnv:
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    return AwsEnv(moto_endpoint, REGION, f"car-rental-test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def fake_emr(monkeypatch: pytest.MonkeyPatch) -> FakeEmr:
    return drive_emr(monkeypatch)


@pytest.fixture
def crawls(monkeypatch: pytest.MonkeyPatch) -> ScriptedCrawls:
    return drive_crawls(monkeypatch)


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsCalls]:
    recorder = AwsCalls()
    original = clients.aws_client
    hooked: list[Any] = []

    def recording_client(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)
        if all(client is not other for other in hooked):
            recorder.hook(client)
            hooked.append(client)
        return client

    monkeypatch.setattr(clients, "aws_client", recording_client)
    try:
        yield recorder
    finally:
        # The clients are cached for the whole session: later tests must not record into this.
        for client in hooked:
            recorder.unhook(client)
