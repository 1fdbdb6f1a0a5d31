"""Shared plumbing of the set-up scripts: arguments, boto3 clients, policy comparison, reporting.

Every script has the same shape: read the current state, compare it with the desired state and
change only what differs. ``Plan`` is the one place that decides whether a change is applied or,
under ``--dry-run``, only announced; it prints one line per action so that every script reports
alike and a second run visibly says ``ok (unchanged)`` everywhere.

Credentials come from boto3's standard chain (environment, profile, instance role); nothing here
reads or stores them. ``--endpoint-url`` exists for tests against a local moto server.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, TextIO, TypeVar
from urllib.parse import unquote

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from car_rental_platform.aws_names import PROJECT
from spark_jobs.contract import DATABASE

T = TypeVar("T")


class SetupError(Exception):
    """A state the scripts must not paper over (e.g. the bucket belongs to another account)."""


# --- arguments ------------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser, *, bucket_required: bool = True) -> None:
    """``--region --bucket --dry-run --endpoint-url``: the options every script shares."""
    parser.add_argument(
        "--region",
        default=None,
        help="AWS region (default: boto3's, e.g. AWS_REGION / AWS_DEFAULT_REGION / profile)",
    )
    parser.add_argument(
        "--bucket", required=bucket_required, help="the lake bucket (DESIGN.md section 3.4)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would change and change nothing",
    )
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="send every AWS call to this endpoint (tests use a local moto server)",
    )


def add_catalog_arguments(parser: argparse.ArgumentParser) -> None:
    """Catalog names shared by iam.py (which scopes policies to them) and glue.py."""
    parser.add_argument("--database", default=DATABASE, help="Glue database (default: %(default)s)")
    parser.add_argument(
        "--crawler-prefix",
        default=PROJECT,
        help="crawler names are PREFIX-<zone>-crawler (default: %(default)s)",
    )
    parser.add_argument(
        "--workgroup", default=PROJECT, help="Athena workgroup (default: %(default)s)"
    )


def add_kms_argument(parser: argparse.ArgumentParser) -> None:
    """``--kms-key-id``: the bucket's default key, which the roles and Athena must then use."""
    parser.add_argument(
        "--kms-key-id",
        default=None,
        help="encrypt the lake with this KMS key (id, alias or ARN) instead of SSE-S3; "
        "the roles are then granted use of that key only",
    )


# --- clients --------------------------------------------------------------------------------


@cache
def aws_client(service: str, region: str, endpoint_url: str | None = None) -> BaseClient:
    """One client per service, region and endpoint for the whole process.

    Clients are thread-safe and refresh role credentials themselves, while building one parses
    megabytes of service-model JSON (about 0.1 s): worth doing once, not once per call.
    """
    session = boto3.session.Session(region_name=region)
    return session.client(service, endpoint_url=endpoint_url)


@dataclass(frozen=True)
class AwsContext:
    """Where the scripts work: region and endpoint, plus the account and partition they imply."""

    region: str
    endpoint_url: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AwsContext:
        region = args.region or boto3.session.Session().region_name
        if not region:
            raise SetupError("no AWS region: pass --region or set AWS_REGION")
        return cls(region, args.endpoint_url)

    def client(self, service: str) -> BaseClient:
        return aws_client(service, self.region, self.endpoint_url)

    @cached_property
    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    @cached_property
    def partition(self) -> str:
        """``aws``, ``aws-cn`` or ``aws-us-gov``: ARNs differ per partition."""
        return boto3.session.Session().get_partition_for_region(self.region)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


_PROPAGATION_ERROR = re.compile(r"role|instance ?profile", re.IGNORECASE)


def is_iam_propagation_error(error: ClientError) -> bool:
    """Glue/EMR rejecting a role or instance profile: typical of one created seconds ago."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) in {"InvalidInputException", "ValidationException"} and bool(
        _PROPAGATION_ERROR.search(message)
    )


def retry_while_iam_propagates(
    call: Callable[[], T],
    *,
    attempts: int = 5,
    delay_seconds: float = 4.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, retried (4 + 8 + 12 + 16 s at most) while a new role is not yet usable.

    IAM is eventually consistent: Glue and EMR may refuse a role or instance profile for some
    seconds after ``iam.py`` created it in the same ``setup_all`` run. Other errors raise at once.
    """
    for attempt in range(1, attempts):
        try:
            return call()
        except ClientError as error:
            if not is_iam_propagation_error(error):
                raise
            sleep(delay_seconds * attempt)
    return call()


def get_or_none(call: Callable[..., T], missing_codes: set[str], **kwargs: Any) -> T | None:
    """``call(**kwargs)``, or None when AWS answers that the resource does not exist."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if error_code(error) in missing_codes:
            return None
        raise


def resolve_kms_key_arn(ctx: AwsContext, key_id: str | None) -> str | None:
    """The key's ARN, so that policies and bucket settings compare equal whatever form was given."""
    if not key_id:
        return None
    if key_id.startswith("arn:") and ":key/" in key_id:
        return key_id
    return ctx.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]


# --- policy documents -----------------------------------------------------------------------


def canonical_policy(document: Any) -> Any:
    """A policy in a form where equal meaning gives equal values.

    AWS returns documents URL-encoded or decoded, keeps ``"a"`` or ``["a"]`` as written and does
    not promise list order, so string lists are sorted sets and one-element lists become strings.
    """
    if isinstance(document, str) and document.lstrip().startswith(("{", "%7B", "%7b")):
        return canonical_policy(json.loads(unquote(document)))
    if isinstance(document, dict):
        return {key: canonical_policy(value) for key, value in sorted(document.items())}
    if isinstance(document, list):
        if all(isinstance(item, str) for item in document):
            unique = sorted(set(document))
            return unique[0] if len(unique) == 1 else unique
        return [canonical_policy(item) for item in document]
    return document


def same_policy(current: Any, desired: Any) -> bool:
    return canonical_policy(current) == canonical_policy(desired)


def policy_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2)


# --- reporting ------------------------------------------------------------------------------

UNCHANGED = "ok (unchanged)"


@dataclass(frozen=True)
class Action:
    """One line of a script's report: what it did (or would do) to which resource."""

    verb: str
    resource: str
    name: str
    detail: str = ""

    @property
    def changed(self) -> bool:
        return self.verb != UNCHANGED


class Plan:
    """Applies changes (or only announces them under dry-run) and records one action per line."""

    def __init__(self, *, dry_run: bool, out: TextIO | None = None) -> None:
        self.dry_run = dry_run
        self.actions: list[Action] = []
        self._out = out

    @property
    def changes(self) -> list[Action]:
        return [action for action in self.actions if action.changed]

    def ok(self, resource: str, name: str, detail: str = "") -> None:
        self._record(Action(UNCHANGED, resource, name, detail))

    def change(
        self, verb: str, resource: str, name: str, apply: Callable[[], T], detail: str = ""
    ) -> T | None:
        """Run ``apply`` unless this is a dry run; either way report the change."""
        self._record(Action(verb, resource, name, detail))
        return None if self.dry_run else apply()

    def note(self, message: str) -> None:
        """Something the operator should know that is not a change (e.g. a missing tag)."""
        self._print(f"note: {message}")

    def summary(self) -> str:
        count = len(self.changes)
        if self.dry_run:
            return f"dry run: {count} change(s) would be made, nothing was changed"
        return f"{count} change(s) made" if count else "nothing to change: all up to date"

    def _record(self, action: Action) -> None:
        self.actions.append(action)
        label = action.verb if not action.changed or not self.dry_run else f"would {action.verb}"
        line = f"{label:<16} {action.resource} {action.name}"
        if action.detail:
            line += f" ({action.detail})"
        self._print(line)

    def _print(self, line: str) -> None:
        # Resolved per line, not at construction, so redirected/captured stdout is honoured.
        print(line, file=self._out or sys.stdout)


# --- entry point ----------------------------------------------------------------------------


def cli_main(
    argv: Sequence[str] | None,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace, AwsContext, Plan], None],
) -> int:
    """Parse, run against AWS, print the summary; AWS errors become one line and exit code 1."""
    args = parser.parse_args(argv)
    plan = Plan(dry_run=args.dry_run)
    try:
        run(args, AwsContext.from_args(args), plan)
    except (ClientError, BotoCoreError, S3UploadFailedError, SetupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(plan.summary())
    return 0


def new_parser(description: str | None) -> argparse.ArgumentParser:
    """A parser whose help is the module docstring's first paragraph."""
    first_paragraph = (description or "").strip().split("\n\n", 1)[0]
    return argparse.ArgumentParser(description=first_paragraph)
