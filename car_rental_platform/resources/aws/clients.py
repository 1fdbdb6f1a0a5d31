"""boto3 clients for the AWS resources, and the small helpers every waiter shares.

Credentials come only from boto3's default chain (environment, profile, instance or task role).
Throttling (``ThrottlingException``, ``RequestLimitExceeded``, ``TooManyRequestsException``,
S3's ``SlowDown``, ...) and transient 5xx errors are retried by botocore itself in its
``standard`` retry mode, with exponential backoff and jitter, up to ``max_attempts`` calls: one
policy for every call of every resource, including the polling loops.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import boto3
import dagster as dg
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import Field

DEFAULT_MAX_ATTEMPTS = 8
INTERRUPTS = (dg.DagsterExecutionInterruptedError, KeyboardInterrupt)
"""What the run worker raises in the step's thread when the Dagster run is terminated."""
Log = dg.DagsterLogManager | logging.Logger
"""Where the resources log: the run's log, or a plain logger outside a run."""


@functools.cache
def aws_client(
    service: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Any:
    """One client per service, region, endpoint and retry budget for the whole process.

    Clients are thread-safe and refresh role credentials themselves, while building one parses
    the service model (about 0.1 s), so they are shared. ``region=None`` means boto3's default.
    """
    session = boto3.session.Session(region_name=region)
    config = Config(retries={"mode": "standard", "max_attempts": max_attempts})
    return session.client(service, endpoint_url=endpoint_url, config=config)


class AwsConnection(dg.ConfigurableResource):
    """Where the AWS calls go. Mixed into every AWS resource; credentials are never settings."""

    region: str | None = Field(
        default=None,
        description="AWS region, e.g. eu-west-1; unset means boto3's default (AWS_REGION).",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="Send every AWS call to this endpoint instead of AWS (only tests set it).",
    )
    max_attempts: int = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        ge=1,
        description="Attempts per AWS call (>= 1), retries of throttling and 5xx errors included.",
    )

    def aws_client(self, service: str) -> Any:
        return aws_client(service, self.region, self.endpoint_url, self.max_attempts)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` (or EMR's ``s3n://``) -> (bucket, key)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3n", "s3a") or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def bucket_of(root_uri: str) -> str:
    """The bucket of a lake root such as ``s3://my-lake``."""
    bucket, key = parse_s3_uri(root_uri)
    if key.strip("/"):
        raise ValueError(f"lake root {root_uri!r} must be a bucket, without a key prefix")
    return bucket


def list_keys(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every object under ``prefix`` (all pages), as ListObjectsV2 ``Contents`` entries."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item for page in pages for item in page.get("Contents", [])]


@dataclass
class Deadline:
    """How long a waiter has waited, and whether it may wait longer."""

    timeout_seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def expired(self) -> bool:
        return self.elapsed >= self.timeout_seconds

    def describe(self) -> str:
        return f"{self.elapsed:.1f}s (timeout {self.timeout_seconds:g}s)"
