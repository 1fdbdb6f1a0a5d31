"""Test support for tests/aws: the ``aws_env`` value type and reading the scripts' reports."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.client import BaseClient

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
