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


def export_bytes(source_dir: str) -> int | None:
    """Bytes of the CSV exports in the landing folder (None if there is none yet).

    Read when the code location loads, which every run worker does at the start of its run,
    so the size is that of the data the run lands.
    """
    folder = Path(source_dir)
    if not folder.is_dir():
        return None
    return sum(path.stat().st_size for path in folder.glob("*.csv") if path.is_file())


def local_resources(settings: LocalSettings) -> dict[str, Any]:
    lake = LocalLake(root=settings.lake_root)
    engine = DuckDBQueryEngine(database=settings.database, database_path=settings.catalog_path)
    return {
        "landing": LocalLanding(source_dir=settings.source_dir, encoding=settings.source_encoding),
        "lake": lake,
        "spark": LocalSparkRunner(
            mode=settings.spark_mode,
            pyspark=LazyPySparkResource(
                spark_config=local_spark_config(input_bytes=export_bytes(settings.source_dir))
            ),
        ),
        "catalog": DuckDBCatalog(database=settings.database, database_path=settings.catalog_path),
        "engine": engine,
        "io_manager": LakehouseIOManager(lake=lake, engine=engine),
        "dashboard": DashboardLinks(base_url=settings.dashboard_url),
    }
