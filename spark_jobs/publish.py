"""Write-audit-publish: tables are written aside, checked, then moved into place.

A reader of the lake (DuckDB views, Athena over Glue tables) reads whatever is in a table's
folder. Writing there directly would show a half-written table after a crash, and a table
whose checks failed. So a job writes ``<root>/_staging/<zone>/<table>/``, checks what it
wrote, and only then publishes: the old folder is renamed aside (into the staging folder),
the new one renamed into place, the old one deleted. Locally each rename is atomic; on S3 a
rename is a copy, so a reader may see the copy in progress (see the README's notes on AWS).
"""

from __future__ import annotations

import argparse

from pyspark.sql import SparkSession

from spark_jobs import cli
from spark_jobs.contract import Zone

STAGING = Zone.STAGING.value
"""Top-level folder of the lake, outside every crawled zone: no catalog reads it."""


def staging_path(args: argparse.Namespace, zone_arg: str, table: str) -> str:
    return f"{args.lake_root.rstrip('/')}/{STAGING}/{getattr(args, zone_arg)}/{table}"


def publish(spark: SparkSession, args: argparse.Namespace, zone_arg: str, table: str) -> str:
    """Move a staged table into its place in the zone; return its path.

    Hadoop's FileSystem API through the session's JVM (PySpark has no public file-system
    API), so the same code moves folders on a local disk, HDFS and S3.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    final = cli.lake_path(args, zone_arg, table)
    source = jvm.org.apache.hadoop.fs.Path(staging_path(args, zone_arg, table))
    target = jvm.org.apache.hadoop.fs.Path(final)
    aside = jvm.org.apache.hadoop.fs.Path(f"{staging_path(args, zone_arg, table)}.__replaced")
    fs = source.getFileSystem(conf)
    if not fs.exists(source):
        raise FileNotFoundError(f"nothing staged for {final} at {source}")
    if not fs.exists(target) and fs.exists(aside):
        fs.rename(aside, target)  # an earlier publish died between its two renames: undo it
    fs.delete(aside, True)
    fs.mkdirs(target.getParent())
    if fs.exists(target) and not fs.rename(target, aside):
        raise OSError(f"could not move {final} aside to {aside}")
    if not fs.rename(source, target):
        raise OSError(f"could not move {source} into place at {final}")
    fs.delete(aside, True)
    return final
