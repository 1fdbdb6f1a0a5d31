"""Typed errors of the AWS resources: each message names the AWS object and how long we waited."""

from __future__ import annotations

from car_rental_platform.resources.catalog import CatalogError
from car_rental_platform.resources.spark import SparkJobError


class EmrError(SparkJobError):
    """Something went wrong running a Spark job on EMR."""


class EmrClusterError(EmrError):
    """No usable cluster: the named cluster is not active, or it ended with errors."""


class EmrStepError(EmrError):
    """A step ended FAILED, CANCELLED or INTERRUPTED (or its cluster died under it)."""


class EmrTimeoutError(EmrError):
    """A step did not finish within the configured timeout (it is cancelled)."""


class CrawlerError(CatalogError):
    """A Glue crawl ended FAILED or CANCELLED, or the crawler could not be set up."""


class CrawlerTimeoutError(CrawlerError):
    """A Glue crawler did not become READY within the configured timeout."""


class AthenaError(RuntimeError):
    """An Athena or Glue-catalog operation of the query engine failed."""


class AthenaQueryError(AthenaError):
    """A query ended FAILED or CANCELLED: carries Athena's reason."""


class AthenaTimeoutError(AthenaError):
    """A query did not finish within the configured timeout (it is stopped)."""


class TableRegistrationError(AthenaError):
    """A lake table could not be registered in Glue (no Parquet files, bad names, ...)."""
