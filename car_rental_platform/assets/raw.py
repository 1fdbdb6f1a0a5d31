"""Raw zone: the landed CSV exports, checked and copied into ``<lake>/raw/<file>/``."""

import tempfile
from pathlib import Path

import dagster as dg

from car_rental_platform.assets.common import LAKE_WRITERS_POOL, OWNERS
from car_rental_platform.raw_records import Landed, land
from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.landing import Landing, MissingSourceFileError
from spark_jobs.contract import SOURCE_TABLES, SourceTable, Zone
from spark_jobs.raw_format import MANIFEST, Manifest


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
    )
    for table in SOURCE_TABLES
]
TABLES_BY_KEY = {raw_key(t): t for t in SOURCE_TABLES}


LANDING_ERRORS = (ValueError, LookupError, MissingSourceFileError)
"""Schema, encoding and setting errors (ValueError subclasses), a codec that is not a text
encoding (LookupError), a missing file: each named in the landing's one failure."""


@dg.multi_asset(specs=RAW_SPECS, can_subset=True, name="raw_files", pool=LAKE_WRITERS_POOL)
def raw_files(context: dg.AssetExecutionContext, landing: Landing, lake: LakeStorage):
    """Check every selected export, then copy them into the raw zone: all of them or none.

    Each file is decoded, split into records and written as the canonical copy the transform
    reads (``spark_jobs.raw_format``). Only when every file passed is anything replaced, so a
    bad export never leaves the raw zone mixing two exports.
    """
    tables = [TABLES_BY_KEY[key] for key in sorted(context.selected_asset_keys)]
    with tempfile.TemporaryDirectory() as tmp:
        landed: dict[SourceTable, Landed] = {}
        problems: list[str] = []
        for table in tables:
            source = f"{landing.location.rstrip('/')}/{table.file_name}"
            folder = Path(tmp, table.raw_name)
            folder.mkdir()
            try:
                export = landing.fetch(table.file_name, folder / f"export-{table.file_name}")
                landed[table] = land(
                    export,
                    table,
                    source,
                    folder / table.file_name,
                    landing.encoding_of(table.file_name),
                )
            except LANDING_ERRORS as exc:
                problems.append(str(exc))
        if problems:
            raise dg.Failure(
                description=(
                    f"Nothing landed ({len(problems)} of {len(tables)} export(s) cannot be "
                    "used; the raw zone keeps the previous export of every file): "
                    + " | ".join(problems)
                ),
                metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))},
            )
        for table, item in landed.items():
            manifest_file = item.canonical.with_name(MANIFEST)
            manifest_file.write_text(item.manifest.to_json())
            uri = lake.put_files(
                {table.file_name: item.canonical, MANIFEST: manifest_file}, Zone.RAW, table.raw_name
            )
            yield materialization(context, table, item.manifest, f"{uri}/{table.file_name}")


def materialization(
    context: dg.AssetExecutionContext, table: SourceTable, manifest: Manifest, uri: str
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
        f"{manifest.encoding}{detail} -> {uri}"
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
            "path": dg.MetadataValue.path(uri),
            "source": dg.MetadataValue.path(manifest.source),
        },
    )
