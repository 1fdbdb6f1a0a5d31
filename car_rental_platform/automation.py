"""Jobs, the daily schedule and the sensors that keep the lake fresh."""

import hashlib
import json
import re
from dataclasses import dataclass, field

import dagster as dg

from car_rental_platform.assets.common import DAILY_REFRESH_CRON
from car_rental_platform.resources.landing import Landing
from spark_jobs.contract import SOURCE_TABLES

refresh_all_job = dg.define_asset_job(
    "refresh_all",
    selection=dg.AssetSelection.all(),
    description="Every table: raw files, processed, KPIs, catalog and analyses.",
)
refresh_kpis_job = dg.define_asset_job(
    "refresh_kpis",
    selection=dg.AssetSelection.groups("kpi").downstream(),
    description="The KPI tables from the current processed tables, their catalog entries and "
    "the analyses over them.",
)

AUTOMATED_GROUPS = ("catalog", "analyses")

catalog_and_analyses_automation = dg.AutomationConditionSensorDefinition(
    "catalog_and_analyses_automation",
    target=dg.AssetSelection.groups(*AUTOMATED_GROUPS),
    # Dagster's implicit default sensor starts STOPPED on a new instance, so the eager
    # conditions would never fire until someone found the switch: this one runs from the start.
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    # Plain runs, not backfills: they show under Runs with their steps like any other run.
    emit_backfills=False,
    description="Refreshes catalog entries and analyses once the tables they read change.",
)

daily_refresh_schedule = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_all_job,
    cron_schedule=DAILY_REFRESH_CRON,
    execution_timezone="UTC",
    description="Rebuild everything at 03:00 UTC from whatever has landed.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

EXPECTED_FILES = {t.file_name for t in SOURCE_TABLES}
EXCEPTION_PREFIX = re.compile(r"^[\w.]+(Error|Failure|Exception): ")


def _fingerprint(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LandingCursor:
    """What the landing sensor remembers between ticks, stored as JSON.

    ``listing`` is the contract files seen at the last tick (name -> size and version), to tell
    a file that stopped changing from one still being written; ``requested`` is the set the
    last run was requested for, whose fingerprint is that run's key, so a set is requested once.
    """

    listing: dict[str, str] = field(default_factory=dict)
    requested: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> "LandingCursor":
        # A cursor of another shape (an older sensor's) starts afresh: the run key still
        # dedupes a set that was requested before.
        data = json.loads(text) if text else {}
        if not isinstance(data.get("listing"), dict):
            return cls()
        return cls(listing=data["listing"], requested=data.get("requested") or {})

    def to_json(self) -> str:
        return json.dumps({"listing": self.listing, "requested": self.requested}, sort_keys=True)


@dg.sensor(
    job=refresh_all_job,
    minimum_interval_seconds=30,
    description="Requests a full refresh once all four CSV files are present and none changed "
    "since the previous tick; a set already requested is not requested again.",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_sensor(
    context: dg.SensorEvaluationContext, landing: Landing
) -> dg.RunRequest | dg.SkipReason:
    """Waits for a complete, stable set: a run over three files, or over a file still being
    uploaded, would fail or read half an export.

    A file counts once its size and version (mtime locally, ETag + last-modified on S3) are the
    same as at the previous tick, i.e. after one tick unchanged.
    """
    previous = LandingCursor.from_json(context.cursor)
    listed = landing.list_csv()
    current = {f.name: f"{f.size}:{f.version}" for f in listed if f.name in EXPECTED_FILES}
    ignored = sorted(f.name for f in listed if f.name not in EXPECTED_FILES)
    missing = sorted(EXPECTED_FILES - set(current))
    changing = sorted(name for name, seen in current.items() if previous.listing.get(name) != seen)
    note = f"; ignored (not part of the contract): {ignored}" if ignored else ""
    if missing or changing:
        context.update_cursor(LandingCursor(current, requested=previous.requested).to_json())
        waits = [f"still missing: {missing}"] if missing else []
        if changing:
            waits.append(
                f"waiting for {changing} to stop changing (a file counts once it is "
                "unchanged for one tick)"
            )
        return dg.SkipReason(
            f"No complete, stable set of CSV files in {landing.location} yet: "
            + "; ".join(waits)
            + note
        )
    context.update_cursor(LandingCursor(current, requested=current).to_json())
    if current == previous.requested:
        return dg.SkipReason(
            f"No new or changed CSV in {landing.location} (the {len(current)} files are "
            f"unchanged since their run was requested){note}"
        )
    changed = sorted(name for name, seen in current.items() if previous.requested.get(name) != seen)
    return dg.RunRequest(
        run_key=_fingerprint(current),
        tags={"car_rental/changed_files": ",".join(changed)},
    )


@dg.run_failure_sensor(
    name="report_failed_runs",
    description="Logs one clear summary per failed run: the job, the failed steps and why.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def report_failed_runs(context: dg.RunFailureSensorContext) -> None:
    summary = failure_summary(context)
    context.log.error(summary)


def failure_summary(context: dg.RunFailureSensorContext) -> str:
    run = context.dagster_run
    lines = [f"Run {run.run_id} of job {run.job_name} failed."]
    for event in context.get_step_failure_events():
        error = event.event_specific_data.error if event.event_specific_data else None
        message = error.message.strip().splitlines()[0] if error and error.message else "?"
        message = EXCEPTION_PREFIX.sub("", message)
        lines.append(f"- step {event.step_key}: {message}")
    if len(lines) == 1 and context.failure_event.message:
        lines.append(f"- {context.failure_event.message}")
    return "\n".join(lines)
