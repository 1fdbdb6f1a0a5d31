"""Raw zone: the landed CSV files, header-checked and copied into ``<lake>/raw/<file>/``."""

import csv
import tempfile
from pathlib import Path

import dagster as dg

from car_rental_platform.assets.common import OWNERS
from car_rental_platform.resources.lake import LakeStorage
from car_rental_platform.resources.landing import Landing, MissingSourceFileError
from spark_jobs.contract import SOURCE_TABLES, RawSchemaError, SourceTable, Zone, check_header


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


def inspect_csv(path: Path, table: SourceTable, source: str) -> int:
    """Check the header against the contract; return the data rows (blank lines are no rows).

    An empty file is zero rows, like a header-only one. Counting lines the way Spark reads
    them (one record per non-blank line) lets the conservation check compare the two.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        first = handle.readline()
        if not first.strip():
            return 0
        header = next(csv.reader([first]))
        check_header(table, header, source)
        return sum(1 for line in handle if line.strip())


@dg.multi_asset(specs=RAW_SPECS, can_subset=True, name="raw_files")
def raw_files(context: dg.AssetExecutionContext, landing: Landing, lake: LakeStorage):
    """Validate and copy each selected CSV from the landing area into the raw zone."""
    for key in sorted(context.selected_asset_keys):
        table = TABLES_BY_KEY[key]
        source = f"{landing.location.rstrip('/')}/{table.file_name}"
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = landing.fetch(table.file_name, Path(tmp, table.file_name))
                rows = inspect_csv(local, table, source)
            except (RawSchemaError, MissingSourceFileError) as exc:
                raise dg.Failure(description=str(exc), metadata={"file": source}) from exc
            except UnicodeDecodeError as exc:
                raise dg.Failure(description=f"{source} is not UTF-8 text: {exc}") from exc
            size = local.stat().st_size
            uri = lake.put_file(local, Zone.RAW, table.raw_name, table.file_name)
        context.log.info(f"{table.file_name}: {rows} rows, {size} bytes -> {uri}")
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "row_count": rows,
                "dagster/row_count": rows,
                "size_bytes": size,
                "path": dg.MetadataValue.path(uri),
                "source": dg.MetadataValue.path(source),
            },
        )
