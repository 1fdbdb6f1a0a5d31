"""Spark jobs of the car-rental platform: plain spark-submit scripts over pure functions.

The same files run locally (``spark-submit`` in ``local[*]`` mode) and on EMR (uploaded to
``s3://<bucket>/scripts/``). They import only PySpark, the standard library and, when launched
by Dagster, ``dagster-pipes``.
"""
