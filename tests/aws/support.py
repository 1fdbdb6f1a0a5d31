"""Test support for tests/aws: ``aws_env``, the scripts' reports, and moto driven by the tests.

The fixtures built on these (``fake_emr``, ``crawls``, ``aws_calls``) are in conftest.py.
"""

from __future__ import annotations

import _thread
import gzip
import json
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient
from dagster_pipes import (
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    PIPES_PROTOCOL_VERSION,
    PIPES_PROTOCOL_VERSION_FIELD,
    PipesContext,
    PipesDefaultContextLoader,
    PipesMappingParamsLoader,
    PipesMessage,
    PipesMessageWriter,
    PipesMessageWriterChannel,
    PipesParams,
    decode_param,
)

from infra_scripts.common import UNCHANGED, aws_client


@dataclass(frozen=True)
class AwsEnv:
    """A clean moto account for one test, and a bucket name nobody has used."""

    endpoint_url: str
    region: str
    bucket: str

    def client(self, service: str, region: str | None = None) -> BaseClient:
        return aws_client(service, region or self.region, self.endpoint_url)

    def cli_args(self, region: str | None = None) -> list[str]:
        """The options every infra script takes, pointing at moto."""
        return [
            "--region",
            region or self.region,
            "--bucket",
            self.bucket,
            "--endpoint-url",
            self.endpoint_url,
        ]


VERBS = ("create", "update", "delete", "attach", "detach", "upload", "terminate")
LABEL_WIDTH = 16


def _label(line: str) -> str:
    return line[:LABEL_WIDTH].strip()


def changed_lines(out: str) -> list[str]:
    """Lines reporting a change, done or (``would ...``) planned."""
    return [line for line in out.splitlines() if _label(line).removeprefix("would ") in VERBS]


def unchanged_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if _label(line) == UNCHANGED]


# --- moto's in-process models ---------------------------------------------------------------
#
# ``ThreadedMotoServer`` runs in the test process, so a test can play the part of what moto does
# not emulate (Spark steps, crawls, SQL) inside moto's own models, never in the code under test.
# Code running there is inside a moto request: it writes to the models directly, never over HTTP.


def moto_s3() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def moto_glue(region: str = "us-east-1") -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.glue.models import glue_backends

    return glue_backends[DEFAULT_ACCOUNT_ID][region]


def moto_emr_cluster(cluster_id: str, region: str = "us-east-1") -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.emr.models import emr_backends

    return emr_backends[DEFAULT_ACCOUNT_ID][region].clusters[cluster_id]


def put_object(bucket: str, key: str, body: bytes) -> None:
    moto_s3().put_object(bucket, key, body)


def object_bytes(bucket: str, key: str) -> bytes:
    found = moto_s3().get_object(bucket, key)
    if found is None:
        raise FileNotFoundError(f"s3://{bucket}/{key} does not exist")
    return found.value


def object_keys(bucket: str, prefix: str) -> list[str]:
    return sorted(key for key in moto_s3().get_bucket(bucket).keys if key.startswith(prefix))


# --- EMR steps (moto accepts steps and never runs them) -------------------------------------


def pipes_message(method: str, params: dict[str, Any] | None) -> str:
    return json.dumps(
        {PIPES_PROTOCOL_VERSION_FIELD: PIPES_PROTOCOL_VERSION, "method": method, "params": params}
    )


def pipes_exception(message: str, name: str = "AnalysisException") -> dict[str, Any]:
    return {"name": name, "message": message, "cause": None, "context": None, "stack": []}


@dataclass
class StepCall:
    """What a submitted step was asked to do, decoded from its arguments."""

    cluster_id: str
    step_id: str
    args: list[str]

    def option(self, name: str) -> str:
        return self.args[self.args.index(name) + 1]

    @property
    def pipes_context(self) -> dict[str, Any]:
        return decode_param(self.option("--dagster-pipes-context"))["data"]

    @property
    def pipes_messages(self) -> dict[str, Any]:
        return decode_param(self.option("--dagster-pipes-messages"))

    @property
    def spark_submit(self) -> list[str]:
        """The spark-submit command, without the launcher that may run it (with_driver_log)."""
        return self.args[self.args.index("spark-submit") :]

    @property
    def job_args(self) -> list[str]:
        """The script's own arguments: after the script URI, before Pipes' bootstrap ones."""
        script = next(i for i, arg in enumerate(self.args) if arg.endswith(".py"))
        return self.args[script + 1 : self.args.index("--dagster-pipes-context")]


Outcome = Callable[[Any, Any, StepCall], None]


def write_pipes_chunk(call: StepCall, *messages: str) -> None:
    """The job's single Pipes chunk, where PipesS3MessageWriter would put it."""
    where = call.pipes_messages
    chunk = "\n".join([pipes_message("opened", {"extras": {}}), *messages])
    put_object(where["bucket"], f"{where['key_prefix']}/1.json", chunk.encode())


class _ListChannel(PipesMessageWriterChannel):
    def __init__(self) -> None:
        self.messages: list[PipesMessage] = []

    def write_message(self, message: PipesMessage) -> None:
        self.messages.append(message)


class _OneChunkS3Writer(PipesMessageWriter):
    """``PipesS3MessageWriter``'s layout (``<key_prefix>/1.json``), written once at close."""

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        channel = _ListChannel()
        yield channel
        chunk = "\n".join(json.dumps(message) for message in channel.messages)
        put_object(params["bucket"], f"{params['key_prefix']}/1.json", chunk.encode())


def job_pipes(call: StepCall) -> PipesContext:
    """The job side of Dagster Pipes, opened from the step's own arguments as the jobs do it.

    Unlike ``open_dagster_pipes`` it is not the process-wide singleton (a test runs several
    "jobs"); its messages reach S3 in one chunk when the context closes.
    """
    loader = PipesMappingParamsLoader(
        {
            DAGSTER_PIPES_CONTEXT_ENV_VAR: call.option("--dagster-pipes-context"),
            DAGSTER_PIPES_MESSAGES_ENV_VAR: call.option("--dagster-pipes-messages"),
        }
    )
    return PipesContext(loader, PipesDefaultContextLoader(), _OneChunkS3Writer())


def _utcnow() -> Any:
    from moto.emr import models as emr_models

    return emr_models.utcnow()


@dataclass
class FakeEmr:
    """EMR's step executor, played inside moto (see test_resources_emr.py's docstring).

    A step's first DescribeStep finds it RUNNING, the second finds what the test scripted (one
    ``outcomes`` entry per submitted step, in submission order).

    An outcome that raises (a simulated job's bug or refusal, a step nobody scripted) fails
    the step as EMR would a job that raised: FAILED, the traceback as its shipped stderr, the
    error kept in ``errors``. Raised inside moto instead, it would answer DescribeStep with a
    500 and leave the step RUNNING for every later poll: the run would wait out its timeout.
    """

    outcomes: list[Outcome] = field(default_factory=list)
    steps: list[StepCall] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)
    _plan: dict[str, Outcome] = field(default_factory=dict)
    _calls: dict[str, StepCall] = field(default_factory=dict)

    def advance(self, cluster: Any, step: Any) -> None:
        if step.state not in ("PENDING", "RUNNING") or step.id in self.cancelled:
            return
        seen = self._seen[step.id] = self._seen.get(step.id, 0) + 1
        try:
            if seen == 1:
                call = StepCall(cluster.id, step.id, list(step.args))
                self.steps.append(call)
                self._calls[step.id] = call
                step.state = "RUNNING"
                step.start()
                if not self.outcomes:
                    raise LookupError(f"no outcome scripted for step {step.id} ({step.name})")
                self._plan[step.id] = self.outcomes.pop(0)
            elif seen == 2:
                self._plan[step.id](cluster, step, self._calls[step.id])
        except (Exception, SystemExit) as error:  # SystemExit: a job's argument error
            self.errors.append(f"step {step.id}: {error!r}")
            _step_failed(cluster, step, repr(error), traceback.format_exc())

    def job_interrupted(self, step_id: str) -> None:
        """SEND_INTERRUPT reached the job: its Pipes context closes with KeyboardInterrupt."""
        write_pipes_chunk(
            self._calls[step_id],
            pipes_message("closed", {"exception": pipes_exception("", "KeyboardInterrupt")}),
        )

    # --- outcomes ---------------------------------------------------------------------

    @staticmethod
    def succeed(*reports: tuple[str, dict[str, Any]]) -> Outcome:
        """The job reports ``(asset_key, metadata)`` materializations, then exits 0."""

        def outcome(cluster: Any, step: Any, call: StepCall) -> None:
            materializations = [
                pipes_message(
                    "report_asset_materialization",
                    {"asset_key": key, "metadata": metadata, "data_version": None},
                )
                for key, metadata in reports
            ]
            write_pipes_chunk(call, *materializations, pipes_message("closed", {}))
            step.state = "COMPLETED"
            step.end_date_time = _utcnow()

        return outcome

    @staticmethod
    def run(job: Callable[[StepCall, PipesContext], None]) -> Outcome:
        """``job(call, pipes)`` plays the Spark job (reports through the job side of Pipes)."""

        def outcome(cluster: Any, step: Any, call: StepCall) -> None:
            with job_pipes(call) as pipes:
                job(call, pipes)
            step.state = "COMPLETED"
            step.end_date_time = _utcnow()

        return outcome

    @staticmethod
    def fail(reason: str, stderr: str) -> Outcome:
        """The job raises: Pipes closes with the exception; EMR records why and ships stderr."""

        def outcome(cluster: Any, step: Any, call: StepCall) -> None:
            write_pipes_chunk(call, pipes_message("closed", {"exception": pipes_exception(reason)}))
            _step_failed(cluster, step, reason, stderr)

        return outcome

    @staticmethod
    def complete() -> Outcome:
        """Exit 0 without reporting (for tests of the wait alone)."""

        def outcome(cluster: Any, step: Any, call: StepCall) -> None:
            step.state = "COMPLETED"
            step.end_date_time = _utcnow()

        return outcome

    @staticmethod
    def hang() -> Outcome:
        return lambda cluster, step, call: None

    @staticmethod
    def terminate_dagster_run() -> Outcome:
        """SIGINT to the run's main thread, as ``dagster`` run termination sends it."""
        return lambda cluster, step, call: _thread.interrupt_main()

    @staticmethod
    def cluster_dies(reason: str) -> Outcome:
        def outcome(cluster: Any, step: Any, call: StepCall) -> None:
            step.state = "PENDING"
            cluster.state = "TERMINATED_WITH_ERRORS"
            cluster.last_state_change_reason = reason

        return outcome


def _step_failed(cluster: Any, step: Any, reason: str, stderr: str) -> None:
    """EMR's record of a failed step: FAILED, why, and its stderr shipped under the log URI
    (a cluster without one ships none)."""
    step.failure_details = {"Reason": reason, "Message": "Spark job failed"}
    if cluster.log_uri:
        bucket, _, prefix = cluster.log_uri.removeprefix("s3://").partition("/")
        key = f"{prefix.rstrip('/')}/{cluster.id}/steps/{step.id}/stderr.gz"
        put_object(bucket, key, gzip.compress(stderr.encode()))
        step.failure_details["LogFile"] = f"s3://{bucket}/{key}"
    step.state = "FAILED"
    step.end_date_time = _utcnow()


def drive_emr(monkeypatch: pytest.MonkeyPatch) -> FakeEmr:
    """Patch moto's EMR so that ``FakeEmr`` plays its steps (the ``fake_emr`` fixture)."""
    from moto.core.responses import ActionResult
    from moto.emr import models as emr_models
    from moto.emr.responses import ElasticMapReduceResponse

    fake = FakeEmr()
    describe_step = emr_models.ElasticMapReduceBackend.describe_step

    def driven_describe_step(backend: Any, cluster_id: str, step_id: str) -> Any:
        step = describe_step(backend, cluster_id, step_id)
        if step is not None:
            fake.advance(backend.clusters[cluster_id], step)
        return step

    def cancel_steps(response: ElasticMapReduceResponse) -> ActionResult:
        cluster = response.backend.clusters[response._get_param("ClusterId")]
        infos = []
        for step in cluster.steps:
            if step.id in response._get_param("StepIds", []):
                fake.cancelled.append(step.id)
                step.state = "CANCELLED"
                infos.append({"StepId": step.id, "Status": "SUBMITTED"})
                fake.job_interrupted(step.id)
        return ActionResult({"CancelStepsInfoList": infos})

    status = emr_models.Step.status.fget

    def status_with_failure_details(step: Any) -> dict[str, Any]:
        return {**status(step), "FailureDetails": getattr(step, "failure_details", None)}

    monkeypatch.setattr(emr_models.ElasticMapReduceBackend, "describe_step", driven_describe_step)
    monkeypatch.setattr(ElasticMapReduceResponse, "cancel_steps", cancel_steps, raising=False)
    monkeypatch.setattr(emr_models.Step, "status", property(status_with_failure_details))
    return fake


def emulate_auto_termination(patch: pytest.MonkeyPatch) -> None:
    """Add PutAutoTerminationPolicy, which moto 5.2 lacks (it also ignores the policy given to
    RunJobFlow): the policy is kept on moto's cluster as ``auto_termination_policy``."""
    from moto.core.responses import EmptyResult
    from moto.emr.responses import ElasticMapReduceResponse

    def put_auto_termination_policy(response: ElasticMapReduceResponse) -> EmptyResult:
        cluster = response.backend.clusters[response._get_param("ClusterId")]
        cluster.auto_termination_policy = response._get_param("AutoTerminationPolicy")
        return EmptyResult()

    patch.setattr(
        ElasticMapReduceResponse,
        "put_auto_termination_policy",
        put_auto_termination_policy,
        raising=False,
    )


# --- Glue crawls (moto's crawlers start and stop but never crawl) ---------------------------

CrawlEffect = Callable[[Any, Any], None]
"""``effect(glue_backend, crawler)``: what the crawl writes to the catalog."""


def _no_effect(backend: Any, crawler: Any) -> None:
    return None


@dataclass
class Crawl:
    """One scripted crawl: what it does to the catalog and how it ends."""

    effect: CrawlEffect = _no_effect
    status: str = "COMPLETED"
    error_message: str | None = None


@dataclass
class ScriptedCrawls:
    """A crawl's first GetCrawler finds it RUNNING, the second finds it ended as scripted.

    Scripted crawls are used in order, whichever crawler runs; the effect is applied to moto's
    Glue tables (what a real crawl would have written) just before the crawl ends.
    """

    crawls: list[Crawl] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

    def observe(self, backend: Any, crawler: Any) -> None:
        if not crawler.crawls or crawler.crawls[-1].status != "RUNNING":
            return
        crawl = crawler.crawls[-1]
        seen = self._seen[crawl.crawl_id] = self._seen.get(crawl.crawl_id, 0) + 1
        if seen == 2 and self.crawls:
            script = self.crawls.pop(0)
            script.effect(backend, crawler)
            crawl.status = script.status
            crawl.error_message = script.error_message


def drive_crawls(monkeypatch: pytest.MonkeyPatch) -> ScriptedCrawls:
    """Patch moto's Glue so that crawls run as scripted (the ``crawls`` fixture).

    Also adds a recording UpdateCrawler, which moto lacks. moto names a successful crawl
    COMPLETED where Glue's LastCrawl says SUCCEEDED; the resource accepts both.
    """
    from moto.core.responses import ActionResult, EmptyResult
    from moto.glue.responses import GlueResponse

    scripted = ScriptedCrawls()

    def request(response: GlueResponse) -> dict[str, Any]:
        """The call's parameters: Glue's protocol is JSON (moto 5.2.6 dropped ``parameters``)."""
        return json.loads(response.body)

    def get_crawler(response: GlueResponse) -> ActionResult:
        crawler = response.glue_backend.get_crawler(request(response)["Name"])
        scripted.observe(response.glue_backend, crawler)
        data = crawler.as_dict()
        if crawler.crawls and getattr(crawler.crawls[-1], "error_message", None):
            data["LastCrawl"]["ErrorMessage"] = crawler.crawls[-1].error_message
        return ActionResult({"Crawler": data})

    def update_crawler(response: GlueResponse) -> EmptyResult:
        scripted.updates.append(request(response))
        return EmptyResult()

    monkeypatch.setattr(GlueResponse, "get_crawler", get_crawler)
    monkeypatch.setattr(GlueResponse, "update_crawler", update_crawler, raising=False)
    return scripted


def crawler_target(crawler: Any) -> str:
    """The S3 path a moto crawler crawls (its first S3 target)."""
    return crawler.targets["S3Targets"][0]["Path"]


# --- Athena results (moto runs no SQL: results are seeded) ----------------------------------


def moto_api(aws_env: AwsEnv, path: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{aws_env.endpoint_url}/moto-api/{path}",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201)


def _cell(value: str | None) -> dict[str, str]:
    return {} if value is None else {"VarCharValue": value}


def _column_info(name: str, kind: str) -> dict[str, Any]:
    """Athena's ColumnInfo; ``decimal(18,2)`` becomes type ``decimal`` with precision and scale."""
    base, _, size = kind.partition("(")
    info: dict[str, Any] = {"Name": name, "Label": name, "Type": base}
    if size:
        precision, _, scale = size.rstrip(")").partition(",")
        info["Precision"] = int(precision)
        if scale:
            info["Scale"] = int(scale)
    return info


def query_result(columns: dict[str, str], rows: list[list[str | None]]) -> dict[str, Any]:
    """One result in moto's format; the first row repeats the column names, as Athena's does."""
    header = [{"Data": [_cell(name) for name in columns]}]
    body = [{"Data": [_cell(value) for value in row]} for row in rows]
    info = [_column_info(name, kind) for name, kind in columns.items()]
    return {"rows": header + body, "column_info": info}


def seed_results(aws_env: AwsEnv, columns: dict[str, str], rows: list[list[str | None]]) -> None:
    """Queue one query result through moto's API (``/moto-api/static/athena/query-results``).

    moto hands queued results to queries in the order they start, one each.
    """
    moto_api(
        aws_env,
        "static/athena/query-results",
        {"region": aws_env.region, "results": [query_result(columns, rows)]},
    )


# --- what the resources ask of AWS ----------------------------------------------------------


@dataclass(frozen=True)
class AwsCall:
    """One API call: botocore's service name (``s3``, ``emr``...), operation and parameters."""

    service: str
    operation: str
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class AwsCalls:
    """Calls recorded on hooked clients, in order (the ``aws_calls`` fixture)."""

    calls: list[AwsCall] = field(default_factory=list)
    HOOK_ID = "tests-aws-calls"

    def hook(self, client: BaseClient) -> None:
        service = client.meta.service_model.service_name

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append(AwsCall(service, model.name, dict(params)))

        client.meta.events.register("before-parameter-build", record, unique_id=self.HOOK_ID)

    def unhook(self, client: BaseClient) -> None:
        client.meta.events.unregister("before-parameter-build", unique_id=self.HOOK_ID)

    @property
    def names(self) -> set[str]:
        return {call.name for call in self.calls}
