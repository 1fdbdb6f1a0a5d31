"""Shared fixtures: one local SparkSession for the whole test session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from car_rental_platform.java import ensure_java


@pytest.fixture(scope="session")
def spark() -> Iterator:
    """A small local[2] session configured exactly like the jobs' local runs
    (``local_spark_config``: UTC, strict parsing, and the quick JIT small inputs get)."""
    ensure_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from car_rental_platform.resources.spark import local_spark_config

    config = local_spark_config(
        master="local[2]",
        driver_memory="2g",
        input_bytes=0,
        extra={"spark.app.name": "car-rental-tests", "spark.default.parallelism": "4"},
    )
    builder = SparkSession.builder
    for key, value in config.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def graph(tmp_path_factory: pytest.TempPathFactory):
    """The whole asset graph materialized once, on a small generated dataset with bad rows."""
    import dagster as dg

    from tests.graph_fixtures import materialize_graph

    ensure_java()
    root = tmp_path_factory.mktemp("graph")
    with dg.instance_for_test() as instance:
        yield materialize_graph(root, instance)
