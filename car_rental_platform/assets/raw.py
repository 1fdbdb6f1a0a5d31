"""Raw zone: the landed CSV exports, checked and copied into ``<lake>/raw/<file>/``."""

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from car_rental_platform.assets.common import LAKE_WRITERS_POOL, OWNERS
from car_rental_platform.partitions import (
    RENTAL_BATCHES,
    SINGLE_RUN,
    landed_batches,
    run_partition_keys,
)
from car_rental_platform.raw_records import Landed, land
from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.landing import Landing, MissingSourceFileError
from spark_jobs.contract import (
    BATCH_FOLDER,
    RENTALS,
    SOURCE_TABLES,
    SourceTable,
    Zone,
    batch_folder,
    batch_of_key,
    batch_order,
    landed_folder,
)
from spark_jobs.raw_format import MANIFEST, Manifest, combined


def raw_key(table: SourceTable) -> dg.AssetKey:
    return dg.AssetKey([Zone.RAW.value, table.name])


RAW_SPECS = [
    dg.AssetSpec(
        raw_key(table),
        description=f"{table.file_name} as exported by the marketplace. {table.description}",
        group_name="raw",
        kinds={"csv"},
        owners=OWNERS,
        metadata={"file_name": table.file_name},
        # The rentals: one partition per landed export (the full file, each day's).
        partitions_def=RENTAL_BATCHES if table is RENTALS else None,
    )
    for table in SOURCE_TABLES
]
TABLES_BY_KEY = {raw_key(t): t for t in SOURCE_TABLES}


LANDING_ERRORS = (ValueError, LookupError, MissingSourceFileError)
"""Schema, encoding and setting errors (ValueError subclasses), a codec that is not a text
encoding (LookupError), a missing file: each named in the landing's one failure."""


@dg.multi_asset(
    specs=RAW_SPECS,
    can_subset=True,
    name="raw_files",
    pool=LAKE_WRITERS_POOL,
    backfill_policy=SINGLE_RUN,
)
def raw_files(context: dg.AssetExecutionContext, landing: Landing, lake: LakeStorage):
    """Check every selected export, then copy them into the raw zone: all of them or none.

    Rentals: the export of each partition of the run (the full file, daily exports) goes to
    its own ``raw/rental_transactions/batch=<key>/``; other batches stay as they were.

    Each file is decoded, split into records and written as the canonical copy the transform
    reads (``spark_jobs.raw_format``). Only when every file passed is anything replaced, so a
    bad export never leaves the raw zone mixing two exports.
    """
    tables = [TABLES_BY_KEY[key] for key in sorted(context.selected_asset_keys)]
    with tempfile.TemporaryDirectory() as tmp:
        landed: dict[SourceTable, list[tuple[str, Landed]]] = {}
        problems: list[str] = []
        attempted = 0
        for table in tables:
            try:
                exports = exports_of(table, landing, partition_keys(context, table))
            except LANDING_ERRORS as exc:
                problems.append(str(exc))
                attempted += 1
                continue
            attempted += len(exports)
            keys = partition_keys(context, table) or []
            kept = sorted(set(keys) - {f.removeprefix(BATCH_FOLDER) for f, _ in exports})
            if kept:
                context.log.warning(
                    f"Not in {landing.location}, so not landed again (the raw zone keeps their "
                    f"earlier copy): {', '.join(kept)}"
                )
            for folder_name, file_name in exports:
                source = f"{landing.location.rstrip('/')}/{file_name}"
                folder = Path(tmp, table.raw_name, folder_name)
                folder.mkdir(parents=True)
                try:
                    export = landing.fetch(file_name, folder / f"export-{file_name}")
                    item = land(
                        export,
                        table,
                        source,
                        folder / table.file_name,
                        landing.encoding_of(file_name),
                    )
                    landed.setdefault(table, []).append((folder_name, item))
                except LANDING_ERRORS as exc:
                    problems.append(str(exc))
        if problems:
            raise dg.Failure(
                description=(
                    f"Nothing landed ({len(problems)} of {attempted} export(s) cannot be "
                    "used; the raw zone keeps the previous export of every file): "
                    + " | ".join(problems)
                ),
                metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))},
            )
        for table, items in landed.items():
            uris = []
            for folder_name, item in items:
                manifest_file = item.canonical.with_name(MANIFEST)
                manifest_file.write_text(item.manifest.to_json())
                target = f"{table.raw_name}/{folder_name}"
                uri = lake.put_files(
                    {table.file_name: item.canonical, MANIFEST: manifest_file}, Zone.RAW, target
                )
                uris.append(f"{uri}/{table.file_name}")
            manifest = combined([item.manifest for _, item in items])
            yield materialization(context, table, manifest, uris)


def partition_keys(context: dg.AssetExecutionContext, table: SourceTable) -> list[str] | None:
    """The rentals batches of the run's partitions (None for a snapshot)."""
    return run_partition_keys(context) if table is RENTALS else None


def exports_of(
    table: SourceTable, landing: Landing, keys: list[str] | None = None
) -> list[tuple[str, str]]:
    """(raw-zone folder, landed file) of each export of a table.

    A snapshot lands in a folder named by the landing time (``landed=<UTC>``; the older
    landings stay as history). Rentals: the export of each batch key (DESIGN 3.5), each into
    its batch's folder, so a day's landing never replaces another day's; without keys, every
    export present.
    """
    if table is not RENTALS:
        return [(landed_folder(datetime.now(UTC)), table.file_name)]
    present = landed_batches([f.name for f in landing.list_csv()])
    if keys is None:
        batches = present
    else:
        wanted = batch_order(batch_of_key(key) for key in keys)
        batches = [b for b in wanted if b in present]
        if not batches:
            raise MissingSourceFileError(
                f"{', '.join(b.file_name for b in wanted)} not in {landing.location}: the "
                "partitions' exports are missing (a partition is one export file)"
            )
        # A day archived upstream keeps its earlier copy in the raw zone (the transform says
        # so if it has none): a range over it still runs.
    if not batches:
        raise MissingSourceFileError(
            f"no rentals export in {landing.location}: {RENTALS.file_name} or "
            f"{RENTALS.raw_name}_YYYY-MM-DD.csv files"
        )
    return [(batch_folder(b), b.file_name) for b in batches]


def materialization(
    context: dg.AssetExecutionContext, table: SourceTable, manifest: Manifest, uris: list[str]
) -> dg.MaterializeResult:
    """What a user wants to know of a landed file: its records and anything unusual in it."""
    notes = []
    if manifest.malformed:
        notes.append(f"{manifest.malformed} line(s) that are not records (rejected later)")
    if manifest.multiline_records:
        notes.append(f"{manifest.multiline_records} record(s) spanning lines")
    if manifest.empty_lines:
        notes.append(f"{manifest.empty_lines} empty line(s) skipped")
    if manifest.eof_marker_removed:
        notes.append("a trailing Ctrl-Z end-of-file byte removed")
    detail = f" ({'; '.join(notes)})" if notes else ""
    context.log.info(
        f"{table.file_name}: {manifest.records} records, {manifest.size_bytes} bytes, "
        f"{manifest.encoding}{detail} -> {', '.join(uris)}"
    )
    return dg.MaterializeResult(
        asset_key=raw_key(table),
        metadata={
            "row_count": manifest.records,
            "dagster/row_count": manifest.records,
            "malformed_lines": manifest.malformed,
            "multiline_records": manifest.multiline_records,
            "empty_lines": manifest.empty_lines,
            "eof_marker_removed": manifest.eof_marker_removed,
            "encoding": manifest.encoding,
            "size_bytes": manifest.size_bytes,
            "sha256": manifest.sha256,
            # Several exports: their table's folder (the parent of the batch folders).
            "path": dg.MetadataValue.path(uris[0] if len(uris) == 1 else uris[0].rsplit("/", 2)[0]),
            "exports": len(uris),
            "source": dg.MetadataValue.path(manifest.source),
        },
    )
