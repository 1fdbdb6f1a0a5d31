"""Jobs, the daily schedule and the sensors that keep the lake fresh."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import dagster as dg

from car_rental_platform.assets.common import DAILY_REFRESH_CRON
from car_rental_platform.assets.raw import raw_key
from car_rental_platform.partitions import (
    RANGE_END,
    RANGE_START,
    RENTAL_BATCHES,
    new_partition_keys,
)
from car_rental_platform.resources.landing import LandedFile, Landing
from spark_jobs.contract import (
    RENTALS,
    SOURCE_TABLES,
    ExportNameError,
    RentalBatch,
    batch_order,
    rental_batch,
)

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

refresh_rentals_job = dg.define_asset_job(
    "refresh_rentals",
    selection=dg.AssetSelection.assets(raw_key(RENTALS)).downstream(),
    description="The rentals partitions of the run and everything they feed (rejected rows, "
    "KPIs, catalog, analyses); the snapshots stay as they are. What the run command launches "
    "when no snapshot changed.",
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


@dg.schedule(
    name="daily_refresh",
    job=refresh_all_job,
    cron_schedule=DAILY_REFRESH_CRON,
    execution_timezone="UTC",
    description="Rebuild everything at 03:00 UTC from whatever has landed.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def daily_refresh_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """One run over every registered rentals batch: ``refresh_all`` is partitioned, and one
    range (a single run, as the assets' backfill policy asks) rebuilds the KPIs once, not once
    per day.

    The range goes from the first to the last key in registration order, the order a range of
    dynamic partitions follows, so it holds every key even if a day was registered late.
    """
    keys = context.instance.get_dynamic_partitions(RENTAL_BATCHES.name)
    if not keys:
        return dg.SkipReason(
            f"No {RENTAL_BATCHES.name} partition registered yet (the landing sensor and the run "
            "command register one per landed rentals export): nothing to refresh."
        )
    return dg.RunRequest(
        tags={
            RANGE_START: keys[0],
            RANGE_END: keys[-1],
        }
    )


EXCEPTION_PREFIX = re.compile(r"^[\w.]+(Error|Failure|Exception): ")
SNAPSHOTS = {t.file_name: t for t in SOURCE_TABLES if t is not RENTALS}
"""The snapshot exports by file name, each replaced whole when it lands again."""
A_RENTALS_EXPORT = f"a rentals export ({RENTALS.file_name} or {RENTALS.raw_name}_YYYY-MM-DD.csv)"
LANDED_ASSETS = dg.AssetSelection.assets(*(raw_key(t) for t in SOURCE_TABLES)).downstream()
"""What the landing sensor may request: the raw files and everything built from them."""


@dataclass(frozen=True)
class LandingCursor:
    """What the landing sensor remembers between ticks, stored as JSON.

    ``listing`` is the contract files seen at the last tick (name -> size and version), to tell
    a file that stopped changing from one still being written; ``requested`` is the version of
    each file when its run was last requested, so each version of a file is requested once.
    """

    listing: dict[str, str] = field(default_factory=dict)
    requested: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> "LandingCursor":
        # A cursor of another shape starts afresh: the run keys still dedupe a file version
        # that was requested before.
        data = json.loads(text) if text else {}
        if not isinstance(data.get("listing"), dict):
            return cls()
        return cls(listing=data["listing"], requested=data.get("requested") or {})

    def to_json(self) -> str:
        return json.dumps({"listing": self.listing, "requested": self.requested}, sort_keys=True)


@dataclass(frozen=True)
class LandingState:
    """One tick's listing, sorted by what the contract makes of each CSV file."""

    versions: dict[str, str]
    """Contract files (snapshots and rentals exports) -> ``size:version``."""
    batches: dict[str, RentalBatch]
    """The rentals exports among them, by file name."""
    stable: frozenset[str]
    """Contract files with the same size and version as at the previous tick."""
    ignored: list[str]
    misnamed: list[str]
    """Why each file named like a daily export with an impossible day cannot be used."""

    @classmethod
    def of(cls, files: list[LandedFile], previous: LandingCursor) -> "LandingState":
        versions: dict[str, str] = {}
        batches: dict[str, RentalBatch] = {}
        ignored: list[str] = []
        misnamed: list[str] = []
        for landed in files:
            try:
                batch = rental_batch(landed.name)
            except ExportNameError as exc:
                misnamed.append(str(exc))
                continue
            if batch is not None:
                batches[landed.name] = batch
            elif landed.name not in SNAPSHOTS:
                ignored.append(landed.name)
                continue
            versions[landed.name] = f"{landed.size}:{landed.version}"
        stable = frozenset(n for n, seen in versions.items() if previous.listing.get(n) == seen)
        return cls(versions, batches, stable, sorted(ignored), misnamed)

    def waits(self) -> list[str]:
        """What holds every request back: the KPIs need the three snapshots and the rentals,
        and a rentals run reads the whole listing, which a misnamed export makes fail."""
        missing = sorted(set(SNAPSHOTS) - set(self.versions))
        if not self.batches:
            missing.append(A_RENTALS_EXPORT)
        waits = [f"still missing: {missing}"] if missing else []
        if self.misnamed:
            waits.append("rename " + "; ".join(self.misnamed))
        ready = set(SNAPSHOTS) <= self.stable and bool(self.stable & set(self.batches))
        return waits + self.notes() if waits or not ready else []

    def notes(self) -> list[str]:
        """What the tick leaves for later: files still changing, files not in the contract."""
        changing = sorted(set(self.versions) - self.stable)
        notes = []
        if changing:
            notes.append(
                f"waiting for {changing} to stop changing (a file counts once it is unchanged "
                "for one tick)"
            )
        if self.ignored:
            notes.append(f"ignored (not part of the contract): {self.ignored}")
        return notes


def built_from(
    root: dg.AssetKey, assets: Mapping[dg.AssetKey, dg.AssetsDefinition], *, partitioned: bool
) -> list[dg.AssetKey]:
    """``root`` and everything downstream of it, without the partitioned assets unless
    ``partitioned``: a snapshot's run has no partition key, so it cannot rebuild one."""
    keys = dg.AssetSelection.assets(root).downstream().resolve(set(assets.values()))
    if not partitioned:
        keys = {k for k in keys if assets[k].get_asset_spec(k).partitions_def is None}
    return sorted(keys, key=dg.AssetKey.to_user_string)


@dg.sensor(
    target=LANDED_ASSETS,
    minimum_interval_seconds=30,
    description="Once the three snapshots and a rentals export have landed and stopped "
    "changing, requests one run per new or changed export: a rentals export's partition, or a "
    "snapshot, each with what is built from it.",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: Landing) -> dg.SensorResult:
    """Requests only what changed: a new day's export rebuilds its partition and what reads
    it, not the other days nor the snapshots.

    A file counts once its size and version (mtime locally, ETag + last-modified on S3) are the
    same as at the previous tick, so no run reads a file still being uploaded.
    """
    previous = LandingCursor.from_json(context.cursor)
    state = LandingState.of(landing.list_csv(), previous)
    # Files gone from the landing are forgotten; the run key still dedupes one put back as is.
    requested = {n: v for n, v in previous.requested.items() if n in state.versions}
    waits = state.waits()
    if waits:
        return dg.SensorResult(
            skip_reason=f"Nothing requested from {landing.location} until the three snapshots "
            f"and a rentals export are present and stable: {'; '.join(waits)}",
            cursor=LandingCursor(state.versions, requested).to_json(),
        )

    stable_batches = batch_order(state.batches[n] for n in state.stable & set(state.batches))
    # A batch whose partition is not registered was never requested as one (an older sensor's
    # cursor, a partition deleted in the UI): it is requested whatever the cursor says.
    unregistered = set(new_partition_keys(context.instance, stable_batches))
    due = {
        t.file_name: t
        for t in SNAPSHOTS.values()
        if requested.get(t.file_name) != state.versions[t.file_name]
    }
    due_batches = [
        b
        for b in stable_batches
        if b.key in unregistered or requested.get(b.file_name) != state.versions[b.file_name]
    ]
    if not due and not due_batches:
        return dg.SensorResult(
            skip_reason=f"No new or changed export in {landing.location} (the "
            f"{len(requested)} contract files are unchanged since their runs were requested)"
            + "".join(f"; {note}" for note in state.notes()),
            cursor=LandingCursor(state.versions, requested).to_json(),
        )

    if context.repository_def is None:
        raise dg.DagsterInvariantViolationError(
            "landing_sensor resolves each run's assets from its definitions: build its context "
            "with definitions= (the daemon always does)"
        )
    assets = context.repository_def.assets_defs_by_key
    rentals_run = built_from(raw_key(RENTALS), assets, partitioned=True) if due_batches else []
    # Snapshots first: runs start in request order, and a day's rentals are best checked
    # against the users, vehicles and locations that landed with them.
    runs = [
        dg.RunRequest(
            run_key=f"{name}:{state.versions[name]}",
            asset_selection=built_from(raw_key(table), assets, partitioned=False),
            tags=why(name, new=name not in requested),
        )
        for name, table in due.items()
    ] + [
        dg.RunRequest(
            run_key=f"{b.key}:{state.versions[b.file_name]}",
            partition_key=b.key,
            asset_selection=rentals_run,
            tags=why(b.file_name, new=b.key in unregistered or b.file_name not in requested),
        )
        for b in due_batches
    ]
    for note in state.notes():
        context.log.info(note)
    new_keys = [b.key for b in due_batches if b.key in unregistered]
    done = [*due, *(b.file_name for b in due_batches)]
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[RENTAL_BATCHES.build_add_request(new_keys)]
        if new_keys
        else [],
        cursor=LandingCursor(
            state.versions, requested | {n: state.versions[n] for n in done}
        ).to_json(),
    )


def why(file_name: str, *, new: bool) -> dict[str, str]:
    """Tags naming the export a run was requested for, and whether it is new or landed again."""
    return {
        "car_rental/changed_file": file_name,
        "car_rental/change": "new" if new else "re-landed",
    }


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
