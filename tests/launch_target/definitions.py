"""A two-asset code location for the run command's tests: no Spark, one switchable failure,
and one warning check that always fails (listed by the command, never failing it)."""

import os

import dagster as dg


@dg.asset(check_specs=[dg.AssetCheckSpec("is_even", asset="first")])
def first() -> dg.MaterializeResult:
    value = 1
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="is_even",
                passed=value % 2 == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"value": value},
            )
        ]
    )


@dg.asset(deps=[first])
def second() -> None:
    if os.environ.get("LAUNCH_TARGET_FAIL") == "1":
        raise RuntimeError("second asset broke on purpose")


defs = dg.Definitions(
    assets=[first, second],
    jobs=[dg.define_asset_job("refresh_all", selection=dg.AssetSelection.all())],
)
