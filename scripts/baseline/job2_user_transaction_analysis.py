"""Baseline job 2, the hand-built way: daily, user, hourly and day-of-week metrics.

spark-submit scripts/baseline/job2_user_transaction_analysis.py --data DIR --out DIR
"""

from __future__ import annotations

from common import run  # the folder of the script is first on sys.path

from spark_jobs.kpis import KPI_FUNCTIONS

TABLES = ("daily_metrics", "user_metrics", "hourly_metrics", "day_of_week_metrics")

if __name__ == "__main__":
    run(__doc__.splitlines()[0], {name: KPI_FUNCTIONS[name] for name in TABLES})
