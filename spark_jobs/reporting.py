"""Report progress and results to Dagster through Pipes, or to stdout when run standalone.

A job launched by Dagster (locally as a subprocess, or as an EMR step) finds the Pipes
bootstrap parameters in its environment or on its command line; run with plain
``spark-submit`` it finds none and just logs. On EMR the messages go to S3, with the driver
JVM's log lines when the runner names their file (``spark_jobs.driver_log``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from spark_jobs.quality import CheckOutcome


class Reporter(Protocol):
    def log(self, message: str) -> None: ...

    def report(self, asset_key: str, metadata: Mapping[str, Any]) -> None: ...

    def check(self, asset_key: str, name: str, outcome: CheckOutcome) -> None: ...


class StdoutReporter:
    """Standalone runs: results go to stdout, one line each."""

    def log(self, message: str) -> None:
        print(f"[car-rental] {message}", flush=True)

    def report(self, asset_key: str, metadata: Mapping[str, Any]) -> None:
        summary = ", ".join(f"{k}={v}" for k, v in metadata.items() if not isinstance(v, dict))
        self.log(f"{asset_key}: {summary}")

    def check(self, asset_key: str, name: str, outcome: CheckOutcome) -> None:
        verdict = "passed" if outcome.passed else f"FAILED ({outcome.severity})"
        self.log(f"check {asset_key} {name}: {verdict} {dict(outcome.metadata)}")


class PipesReporter:
    """Under Dagster: logs and asset materializations travel over the Pipes channel."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def log(self, message: str) -> None:
        self._context.log.info(message)

    def report(self, asset_key: str, metadata: Mapping[str, Any]) -> None:
        self._context.report_asset_materialization(
            asset_key=asset_key, metadata=pipes_metadata(metadata)
        )

    def check(self, asset_key: str, name: str, outcome: CheckOutcome) -> None:
        self._context.report_asset_check(
            check_name=name,
            passed=outcome.passed,
            severity=outcome.severity,
            metadata=pipes_metadata(outcome.metadata),
            asset_key=asset_key,
        )


def pipes_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Pipes takes plain values or ``{raw_value, type}``; other dicts travel as JSON."""
    return {
        key: value
        if not isinstance(value, dict) or set(value) == {"raw_value", "type"}
        else {"raw_value": value, "type": "json"}
        for key, value in metadata.items()
    }


def _pipes_loader() -> Any | None:
    """The Pipes params loader that finds bootstrap data, or None when Dagster did not launch us."""
    try:
        from dagster_pipes import PipesCliArgsParamsLoader, PipesEnvVarParamsLoader
    except ImportError:
        return None
    for loader in (PipesEnvVarParamsLoader(), PipesCliArgsParamsLoader()):
        if loader.is_dagster_pipes_process():
            return loader
    return None


@contextmanager
def open_reporter() -> Iterator[Reporter]:
    """Open Pipes when launched by Dagster (S3 message writer when asked for one), else stdout."""
    loader = _pipes_loader()
    if loader is None:
        yield StdoutReporter()
        return
    from dagster_pipes import PipesDefaultMessageWriter, open_dagster_pipes

    writer: Any = PipesDefaultMessageWriter()
    messages = loader.load_messages_params()
    if "bucket" in messages:
        import boto3

        from spark_jobs.driver_log import DriverLogS3MessageWriter

        # The runner sends the bucket's region: EMR nodes have no default region configured.
        region = messages.get("region")
        writer = DriverLogS3MessageWriter(client=boto3.client("s3", region_name=region))
    with open_dagster_pipes(params_loader=loader, message_writer=writer) as context:
        yield PipesReporter(context)
