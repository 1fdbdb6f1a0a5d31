"""Car-rental data platform: a Dagster code location over the ``spark_jobs`` data plane."""
