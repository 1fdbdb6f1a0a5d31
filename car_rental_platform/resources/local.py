"""Resources of the local deployment: a folder lake, local Spark, a DuckDB catalog."""

from __future__ import annotations

from typing import Any

from dagster_pyspark import LazyPySparkResource

from car_rental_platform.resources.dashboard import DashboardLinks
from car_rental_platform.resources.duckdb_catalog import DuckDBCatalog, DuckDBQueryEngine
from car_rental_platform.resources.io_manager import LakehouseIOManager
from car_rental_platform.resources.lake import LocalLake
from car_rental_platform.resources.landing import LocalLanding
from car_rental_platform.resources.spark import LocalSparkRunner, local_spark_config
from car_rental_platform.settings import LocalSettings


def local_resources(settings: LocalSettings) -> dict[str, Any]:
    lake = LocalLake(root=settings.lake_root)
    engine = DuckDBQueryEngine(database=settings.database, database_path=settings.catalog_path)
    return {
        "landing": LocalLanding(source_dir=settings.source_dir, encoding=settings.source_encoding),
        "lake": lake,
        "spark": LocalSparkRunner(
            mode=settings.spark_mode,
            pyspark=LazyPySparkResource(spark_config=local_spark_config()),
        ),
        "catalog": DuckDBCatalog(database=settings.database, database_path=settings.catalog_path),
        "engine": engine,
        "io_manager": LakehouseIOManager(lake=lake, engine=engine),
        "dashboard": DashboardLinks(base_url=settings.dashboard_url),
    }
