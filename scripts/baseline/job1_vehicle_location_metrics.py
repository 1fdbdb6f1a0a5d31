"""Baseline job 1, the hand-built way: location, vehicle-type and brand metrics.

spark-submit scripts/baseline/job1_vehicle_location_metrics.py --data DIR --out DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import inputs, parse_args, session, write

from spark_jobs.kpis import brand_metrics, location_metrics, vehicle_type_metrics


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    spark = session("baseline-job1")
    data = inputs(spark, args.data)
    write(
        {
            "location_metrics": location_metrics(data),
            "vehicle_type_metrics": vehicle_type_metrics(data),
            "brand_metrics": brand_metrics(data),
        },
        args.out,
    )
    spark.stop()


if __name__ == "__main__":
    main()
