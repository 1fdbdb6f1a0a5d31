"""Jobs, the daily schedule and the sensors that keep the lake fresh."""

import hashlib
import json
import re

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


@dg.sensor(
    job=refresh_all_job,
    minimum_interval_seconds=30,
    description="Requests a full refresh when one of the four CSV files appears or changes.",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: Landing):
    """Cursor: name -> size and version (mtime locally, ETag + last-modified on S3)."""
    previous: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    listed = landing.list_csv()
    current = {f.name: f"{f.size}:{f.version}" for f in listed if f.name in EXPECTED_FILES}
    ignored = sorted(f.name for f in listed if f.name not in EXPECTED_FILES)
    changed = sorted(name for name, version in current.items() if previous.get(name) != version)
    note = f"; ignored (not part of the contract): {ignored}" if ignored else ""
    if not changed:
        missing = sorted(EXPECTED_FILES - set(current))
        detail = f"; still missing: {missing}" if missing else ""
        context.update_cursor(json.dumps(current, sort_keys=True))
        return dg.SkipReason(
            f"No new or changed CSV in {landing.location} "
            f"({len(current)} of {len(EXPECTED_FILES)} files unchanged){detail}{note}"
        )
    context.update_cursor(json.dumps(current, sort_keys=True))
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
