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


def new_partition_keys(instance: dg.DagsterInstance, batches: list[RentalBatch]) -> list[str]:
    """Keys of ``batches`` not yet partitions of ``RENTAL_BATCHES``, in batch order."""
    known = set(instance.get_dynamic_partitions(RENTAL_BATCHES.name))
    return [b.key for b in batches if b.key not in known]
