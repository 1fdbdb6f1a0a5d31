"""A two-asset code location for the run command's tests: no Spark, one switchable failure."""

import os

import dagster as dg


@dg.asset
def first() -> int:
    return 1


@dg.asset(deps=[first])
def second() -> None:
    if os.environ.get("LAUNCH_TARGET_FAIL") == "1":
        raise RuntimeError("second asset broke on purpose")


defs = dg.Definitions(
    assets=[first, second],
    jobs=[dg.define_asset_job("refresh_all", selection=dg.AssetSelection.all())],
)
