"""Baseline job 2, the hand-built way: daily, user, hourly and day-of-week metrics.

spark-submit scripts/baseline/job2_user_transaction_analysis.py --data DIR --out DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import inputs, parse_args, session, write

from spark_jobs.kpis import (
    daily_metrics,
    day_of_week_metrics,
    hourly_metrics,
    user_metrics,
)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    spark = session("baseline-job2")
    data = inputs(spark, args.data)
    write(
        {
            "daily_metrics": daily_metrics(data),
            "user_metrics": user_metrics(data),
            "hourly_metrics": hourly_metrics(data),
            "day_of_week_metrics": day_of_week_metrics(data),
        },
        args.out,
    )
    spark.stop()


if __name__ == "__main__":
    main()
