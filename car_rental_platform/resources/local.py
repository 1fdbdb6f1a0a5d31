"""Resources of the local deployment: a folder lake, local Spark, a DuckDB catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster_pyspark import LazyPySparkResource

from car_rental_platform.resources.dashboard import DashboardLinks
from car_rental_platform.resources.duckdb_catalog import DuckDBCatalog, DuckDBQueryEngine
from car_rental_platform.resources.io_manager import LakehouseIOManager
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.landing import LocalLanding
from car_rental_platform.resources.spark import LocalSparkRunner, local_spark_config
from car_rental_platform.settings import LocalSettings
from spark_jobs.contract import (
    LANDED_FOLDER,
    RENTALS,
    SOURCE_TABLES,
    ExportNameError,
    Zone,
    batch_folder,
    rental_batch,
    table_path,
)
from spark_jobs.raw_format import MANIFEST, Manifest


def landed_size(lake_root: str, file_name: str) -> int | None:
    """Size of the export ``file_name`` as the raw zone last landed it (its manifest's), None
    when it never landed (or is not an export)."""
    try:
        batch = rental_batch(file_name)
    except ExportNameError:
        return None  # the run's landing names the error; here it only is not landed
    if batch is not None:
        raw = Path(table_path(lake_root, Zone.RAW.value, RENTALS.raw_name))
        manifests = [raw / batch_folder(batch) / MANIFEST]
    else:
        table = next((t for t in SOURCE_TABLES if t.file_name == file_name), None)
        if table is None:
            return None
        raw = Path(table_path(lake_root, Zone.RAW.value, table.raw_name))
        manifests = sorted(raw.glob(f"{LANDED_FOLDER}*/{MANIFEST}"))[-1:]  # the newest
    manifest = next((m for m in manifests if m.is_file()), None)
    return Manifest.from_json(manifest.read_text()).size_bytes if manifest else None


def new_export_bytes(source_dir: str, lake_root: str) -> int | None:
    """Bytes of the landing folder's CSV exports that the raw zone does not hold at their size
    (never landed, or landed at another size): about what the next run lands and cleans.
    None when there is no landing folder.

    Read when the code location loads, which every run worker does at the start of its run,
    before its landing. A new day beside a landed history counts that day's bytes, not the
    history's. A backfill re-running exports already landed counts none (it then runs on the
    quick JIT): a guess about speed only, never about what is processed.
    """
    folder = Path(source_dir)
    if not folder.is_dir():
        return None
    return sum(
        path.stat().st_size
        for path in folder.glob("*.csv")
        if path.is_file() and landed_size(lake_root, path.name) != path.stat().st_size
    )


def local_resources(settings: LocalSettings) -> dict[str, Any]:
    lake = LocalLake(root=settings.lake_root)
    engine = DuckDBQueryEngine(database=settings.database, database_path=settings.catalog_path)
    return {
        "landing": LocalLanding(source_dir=settings.source_dir, encoding=settings.source_encoding),
        "lake": lake,
        "spark": LocalSparkRunner(
            mode=settings.spark_mode,
            pyspark=LazyPySparkResource(
                spark_config=local_spark_config(
                    input_bytes=new_export_bytes(settings.source_dir, settings.lake_root)
                )
            ),
        ),
        "catalog": DuckDBCatalog(database=settings.database, database_path=settings.catalog_path),
        "engine": engine,
        "io_manager": LakehouseIOManager(lake=lake, engine=engine),
        "dashboard": DashboardLinks(base_url=settings.dashboard_url),
    }
