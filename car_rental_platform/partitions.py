"""The rentals' Dagster partitions: one per landed export (``full``, ``YYYY-MM-DD``).

Dynamic, not daily from a start date: the keys are the exports that actually landed (a day
with no export has no partition, the single ``rental_transactions.csv`` is ``full``), added by
the landing sensor and by the run command as files appear. Keys are added in batch order
(``spark_jobs.contract.batch_order``), so a range in the UI or CLI reads as days in order
unless an export for an earlier day lands after later ones (it is then listed last).
"""

import dagster as dg

from spark_jobs.contract import RentalBatch, batch_order, rental_batch

RENTAL_BATCHES = dg.DynamicPartitionsDefinition(name="rental_batches")

SINGLE_RUN = dg.BackfillPolicy.single_run()
"""A backfill of many days is one run, so one Spark application, not one per day."""


def landed_batches(file_names: list[str]) -> list[RentalBatch]:
    """The rentals batches among landed file names, in batch order."""
    return batch_order(b for name in file_names if (b := rental_batch(name)) is not None)


RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
"""Dagster's tags of a run over a range of partitions (what a single-run backfill sets)."""


def new_partition_keys(instance: dg.DagsterInstance, batches: list[RentalBatch]) -> list[str]:
    """Keys of ``batches`` not yet partitions of ``RENTAL_BATCHES``, in batch order."""
    known = set(instance.get_dynamic_partitions(RENTAL_BATCHES.name))
    return [b.key for b in batches if b.key not in known]


def register(instance: dg.DagsterInstance, batches: list[RentalBatch]) -> list[str]:
    """Add the batches not yet partitions (in batch order); the keys of all of them."""
    instance.add_dynamic_partitions(RENTAL_BATCHES.name, new_partition_keys(instance, batches))
    return [b.key for b in batches]


def range_tags(instance: dg.DagsterInstance, keys: list[str]) -> dict[str, str]:
    """Run tags over the partitions from the first to the last of ``keys`` (in the order the
    instance lists them: every partition between them is in the run too)."""
    order = instance.get_dynamic_partitions(RENTAL_BATCHES.name)
    first, last = min(keys, key=order.index), max(keys, key=order.index)
    return {RANGE_START: first, RANGE_END: last}


def run_partition_keys(context: dg.AssetExecutionContext) -> list[str] | None:
    """The run's rentals batches; None for a run without partitions, which takes every
    landed export (tests, and a materialization launched with no partition)."""
    if context.has_partition_key or context.has_partition_key_range:
        return list(context.partition_keys)
    return None
