"""boto3 clients for the AWS resources, and the small helpers every waiter shares.

Where the calls go (region, endpoint, profile, retry budget) is dagster-aws's own boto3
configuration, ``ResourceWithBoto3Configuration``, mixed into every AWS resource. Credentials
come from boto3's default chain (environment, profile, instance or task role): the deployment
never sets the base class's key fields. Throttling (``ThrottlingException``,
``RequestLimitExceeded``, ``TooManyRequestsException``, S3's ``SlowDown``, ...) and transient
5xx errors are retried by botocore itself in its ``standard`` retry mode (dagster-aws's retry
configuration), with exponential backoff and jitter, up to ``max_attempts`` times after the
first call: one policy for every call of every resource, including the polling loops.
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
from botocore.exceptions import ClientError
from dagster_aws.utils import ResourceWithBoto3Configuration, construct_boto_client_retry_config
from pydantic import Field

DEFAULT_MAX_ATTEMPTS = 8
INTERRUPTS = (dg.DagsterExecutionInterruptedError, KeyboardInterrupt)
"""What the run worker raises in the step's thread when the Dagster run is terminated."""
Log = dg.DagsterLogManager | logging.Logger
"""Where the resources log: the run's log, or a plain logger outside a run."""


@dataclass(frozen=True)
class ClientSettings:
    """Everything a client is built from (hashable: clients are cached by it)."""

    region_name: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    profile_name: str | None = None
    use_ssl: bool = True
    verify: bool | None = True
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None


@functools.cache
def aws_client(service: str, settings: ClientSettings = ClientSettings()) -> Any:
    """One client per service and settings for the whole process.

    Clients are thread-safe and refresh role credentials themselves, while building one parses
    the service model (about 0.1 s), so they are shared. ``region_name=None`` means boto3's
    default.
    """
    session = boto3.session.Session(
        profile_name=settings.profile_name, region_name=settings.region_name
    )
    return session.client(
        service,
        endpoint_url=settings.endpoint_url,
        use_ssl=settings.use_ssl,
        verify=settings.verify,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        aws_session_token=settings.aws_session_token,
        config=construct_boto_client_retry_config(settings.max_attempts),
    )


class AwsConnection(ResourceWithBoto3Configuration):
    """Where the AWS calls go: dagster-aws's boto3 settings, with a larger retry budget."""

    max_attempts: int = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        ge=1,
        description="Retries (>= 1) of an AWS call after its first attempt, on throttling and 5xx "
        "errors (botocore's max_attempts: 8 means at most 9 calls).",
    )

    def aws_client(self, service: str) -> Any:
        return aws_client(
            service,
            ClientSettings(
                region_name=self.region_name,
                endpoint_url=self.endpoint_url,
                max_attempts=self.max_attempts,
                profile_name=self.profile_name,
                use_ssl=self.use_ssl,
                verify=self.verify,
                aws_access_key_id=self.aws_access_key_id,
                aws_secret_access_key=self.aws_secret_access_key,
                aws_session_token=self.aws_session_token,
            ),
        )


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
