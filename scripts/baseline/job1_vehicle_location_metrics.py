"""Baseline job 1, the hand-built way: location, vehicle-type and brand metrics.

spark-submit scripts/baseline/job1_vehicle_location_metrics.py --data DIR --out DIR
"""

from __future__ import annotations

from common import run  # the folder of the script is first on sys.path

from spark_jobs.kpis import KPI_FUNCTIONS

TABLES = ("location_metrics", "vehicle_type_metrics", "brand_metrics")

if __name__ == "__main__":
    run(__doc__.splitlines()[0], {name: KPI_FUNCTIONS[name] for name in TABLES})
