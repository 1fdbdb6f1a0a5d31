"""What both baseline jobs share: the hand-built scripts' session and CSV reading.

The baseline reproduces how the pipelines this product replaces ran (two spark-submit
applications on EMR, Spark's defaults, ``header=True, inferSchema=True``, no validation), with
the contract's KPI formulas (``spark_jobs.kpis``), so ``make bench`` compares the same output.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.cleaning import with_rental_derivations
from spark_jobs.contract import LOCATIONS, RENTALS, USERS, VEHICLES, SourceTable
from spark_jobs.kpis import KpiInputs


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, required=True, help="Folder of the four CSV files.")
    parser.add_argument("--out", type=Path, required=True, help="Folder for the Parquet output.")
    return parser.parse_args()


def session(app_name: str) -> SparkSession:
    """Spark's defaults, as the scripts had them; ANSI off as on the Spark 3 they targeted."""
    spark = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_csv(spark: SparkSession, data: Path, table: SourceTable) -> DataFrame:
    return spark.read.csv(str(data / table.file_name), header=True, inferSchema=True)


def inputs(spark: SparkSession, data: Path) -> KpiInputs:
    """The four CSVs as inferred, with the rentals' timestamps and derived columns."""
    rentals = read_csv(spark, data, RENTALS).withColumns(
        {
            "rental_start_time": F.to_timestamp("rental_start_time"),
            "rental_end_time": F.to_timestamp("rental_end_time"),
            "total_amount": F.col("total_amount").cast("decimal(18,2)"),
        }
    )
    return KpiInputs(
        rentals=with_rental_derivations(rentals),
        vehicles=read_csv(spark, data, VEHICLES),
        users=read_csv(spark, data, USERS),
        locations=read_csv(spark, data, LOCATIONS),
    )


def run(description: str, kpis: dict[str, Callable[[KpiInputs], DataFrame]]) -> None:
    """One baseline application: read the CSVs, write each KPI table as Parquet, stop."""
    args = parse_args(description)
    spark = session(description.split(":")[0])
    data = inputs(spark, args.data)
    for name, kpi in kpis.items():
        kpi(data).write.mode("overwrite").parquet(str(args.out / name))
    spark.stop()
