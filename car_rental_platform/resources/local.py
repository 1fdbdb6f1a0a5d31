"""Resources of the local deployment: a folder lake, local Spark, a DuckDB catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster_pyspark import LazyPySparkResource

from car_rental_platform.raw_records import landed_manifest
from car_rental_platform.resources.dashboard import DashboardLinks
from car_rental_platform.resources.duckdb_catalog import DuckDBCatalog, DuckDBQueryEngine
from car_rental_platform.resources.io_manager import LakehouseIOManager
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.landing import LocalLanding
from car_rental_platform.resources.spark import LocalSparkRunner, local_spark_config
from car_rental_platform.settings import LocalSettings
from spark_jobs.contract import DAILY_EXPORT_PATTERN, SOURCE_TABLES


def new_export_bytes(source_dir: str, lake_root: str) -> int | None:
    """Bytes of the landing folder's CSV exports that the raw zone does not hold at their size
    (never landed, or landed at another size): about what the next run lands and cleans.
    None when there is no landing folder.

    Read when the code location loads, which every run worker does at the start of its run,
    before its landing. A new day beside a landed history counts that day's bytes, not the
    history's. A backfill re-running exports already landed, or a re-execution after its
    landing, counts none (it then runs on the quick JIT): a guess about speed only, never
    about what is processed.
    """
    folder = Path(source_dir)
    if not folder.is_dir():
        return None
    exports = {t.file_name for t in SOURCE_TABLES}
    total = 0
    for path in folder.glob("*.csv"):
        is_export = path.name in exports or DAILY_EXPORT_PATTERN.fullmatch(path.name)
        if not is_export or not path.is_file():
            continue  # the run lands no such file
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # gone since the listing
            continue
        landed = landed_manifest(lake_root, path.name)
        if landed is None or landed.size_bytes != size:
            total += size
    return total


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
