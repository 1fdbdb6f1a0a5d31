"""The local Spark runner in both modes: one in-process SparkSession, or spark-submit per job.

The session-wide ``graph`` fixture materializes in the default mode (in-process); here the
same sample goes through ``spark-submit``, and both must report the very same figures.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster_pyspark import LazyPySparkResource

from car_rental_platform.assets.kpi import kpi_tables
from car_rental_platform.assets.processed import processed_tables
from car_rental_platform.assets.raw import raw_files
from car_rental_platform.resources.local import local_resources, new_export_bytes
from car_rental_platform.resources.spark import (
    QUICK_JIT_CODE_CACHE,
    QUICK_JIT_MAX_INPUT_BYTES,
    QUICK_JIT_OPTION,
    LocalSparkRunner,
    SparkJobError,
    cancelling_spark_on_interrupt,
    local_spark_config,
)
from car_rental_platform.sample_data.generator import generate
from car_rental_platform.settings import SettingsError, spark_mode
from spark_jobs import kpi_job
from spark_jobs.contract import (
    KPI_BY_NAME,
    RENTALS,
    USERS,
    RentalBatch,
    Zone,
    batch_folder,
    landed_folder,
    table_path,
)
from spark_jobs.raw_format import MANIFEST, Manifest
from spark_jobs.session import SESSION_CONF
from tests.graph_fixtures import SMALL_RENTALS, MaterializedGraph, landed_range, settings_for

SPARK_ASSETS = [raw_files, processed_tables, kpi_tables]


def figures(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    """Every materialization's and check's reported figures, by key (paths left out)."""
    found: dict[str, object] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        metadata.pop("path", None)
        metadata.pop("source", None)
        if materialization.asset_key.to_user_string() == "processed/rejected_rows":
            metadata.pop("preview")  # its records name their source file, a path
        found[materialization.asset_key.to_user_string()] = metadata
    for evaluation in result.get_asset_check_evaluations():
        key = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        metadata.pop("source", None)
        found[key] = (evaluation.passed, evaluation.severity, metadata)
    return found


@pytest.fixture(scope="module")
def submitted(tmp_path_factory: pytest.TempPathFactory) -> dg.ExecuteInProcessResult:
    """The Spark part of the graph through spark-submit, on the graph fixture's sample."""
    root = tmp_path_factory.mktemp("spark_submit")
    settings = settings_for(root)
    generate(Path(settings.source_dir), rentals=SMALL_RENTALS, seed=7)
    resources = local_resources(dataclasses.replace(settings, spark_mode="spark_submit"))
    assert resources["spark"].mode == "spark_submit"
    with dg.instance_for_test() as instance:
        tags = landed_range(instance, settings.source_dir)
        return dg.materialize(SPARK_ASSETS, resources=resources, instance=instance, tags=tags)


def test_both_modes_report_the_same_figures(
    graph: MaterializedGraph, submitted: dg.ExecuteInProcessResult
) -> None:
    in_process = {
        key: value
        for key, value in figures(graph.result).items()
        if key.split("/")[0] in ("raw", "processed", "kpi")
    }
    assert graph.settings.spark_mode == "in_process"
    assert submitted.success
    assert figures(submitted) == in_process
    assert in_process["processed/rentals"]["row_count"] > 0
    assert len(in_process) == 4 + 5 + 7 + (4 * 3 + 1 + 7 * 3)


def test_spark_submit_gets_the_session_configuration() -> None:
    config = local_spark_config(driver_memory="3g", extra={"spark.driver.cores": "2"})
    runner = LocalSparkRunner(mode="spark_submit", pyspark=LazyPySparkResource(spark_config=config))
    command = runner.command("kpi_job.py", ["--lake-root", "/lake"])
    assert command[0].endswith("spark-submit")
    assert command[-3:] == [command[-3], "--lake-root", "/lake"]
    assert command[-3].endswith("spark_jobs/kpi_job.py")
    given = dict(item.split("=", 1) for item in command[2:-3:2])
    assert command[1:-3:2] == ["--conf"] * len(given)
    assert given["spark.driver.memory"] == "3g"
    assert given["spark.driver.cores"] == "2"
    assert given["spark.master"] == "local[*]"
    for key, value in SESSION_CONF.items():
        assert given[key] == value


def test_small_inputs_run_on_the_quick_jit_and_large_or_unknown_ones_on_both_tiers() -> None:
    def java_options(input_bytes: int | None) -> list[str]:
        config = local_spark_config(input_bytes=input_bytes)
        return config["spark.driver.extraJavaOptions"].split()

    assert QUICK_JIT_OPTION in java_options(0)
    assert QUICK_JIT_CODE_CACHE in java_options(0)
    assert QUICK_JIT_CODE_CACHE not in java_options(None)
    assert QUICK_JIT_OPTION in java_options(QUICK_JIT_MAX_INPUT_BYTES - 1)
    assert QUICK_JIT_OPTION not in java_options(QUICK_JIT_MAX_INPUT_BYTES)
    assert QUICK_JIT_OPTION not in java_options(None)
    assert "-XX:-DontCompileHugeMethods" in java_options(0)


def test_the_jit_is_picked_by_the_bytes_of_exports_not_landed_at_their_size(
    tmp_path: Path,
) -> None:
    landing, lake = tmp_path / "landing", str(tmp_path / "lake")
    assert new_export_bytes(str(landing), lake) is None
    landing.mkdir()
    (landing / "users.csv").write_bytes(b"x" * 700)
    (landing / "rental_transactions_2024-03-01.csv").write_bytes(b"x" * 300)
    (landing / "rental_transactions_2024-03-02.csv").write_bytes(b"x" * 40)
    (landing / "rental_transactions_2024-02-30.csv").write_bytes(b"x" * 6)  # no such day
    (landing / "notes.txt").write_bytes(b"x" * 5000)
    assert new_export_bytes(str(landing), lake) == 1046  # nothing landed yet

    def landed(folder: str, file_name: str, size: int) -> None:
        path = Path(folder) / MANIFEST
        path.parent.mkdir(parents=True)
        manifest = Manifest(
            source=str(landing / file_name),
            file_name=file_name,
            encoding="utf-8",
            records=1,
            malformed=0,
            empty_lines=0,
            multiline_records=0,
            eof_marker_removed=False,
            size_bytes=size,
            sha256="",
        )
        path.write_text(manifest.to_json())

    users = table_path(lake, Zone.RAW.value, USERS.raw_name)
    landed(f"{users}/{landed_folder(datetime(2026, 12, 1, tzinfo=UTC))}", "users.csv", 70)
    landed(f"{users}/{landed_folder(datetime(2026, 12, 2, tzinfo=UTC))}", "users.csv", 700)
    rentals = table_path(lake, Zone.RAW.value, RENTALS.raw_name)
    batch = batch_folder(RentalBatch(date(2024, 3, 1)))
    landed(f"{rentals}/{batch}", RENTALS.file_name, 300)
    # users.csv as its newest landing, the 1 March export as landed: only the rest is new
    assert new_export_bytes(str(landing), lake) == 46
    (landing / "rental_transactions_2024-03-01.csv").write_bytes(b"y" * 301)  # corrected
    assert new_export_bytes(str(landing), lake) == 347
    (landing / "rental_transactions_2024-03-01.csv").write_bytes(b"x" * 300)  # as landed
    (landing / "notes.csv").write_bytes(b"x" * 9)  # no export's name: the run lands no such file
    assert new_export_bytes(str(landing), lake) == 46
    # A manifest that cannot be read is a copy to land again, not a failed code location.
    (Path(rentals) / batch / MANIFEST).write_text('{"size_bytes": 30')
    assert new_export_bytes(str(landing), lake) == 346


def test_a_failing_job_in_process_fails_the_asset_naming_the_job(tmp_path: Path) -> None:
    runner = local_resources(settings_for(tmp_path))["spark"]

    @dg.asset
    def broken(context) -> None:
        runner.run_job(
            context=context,
            script="kpi_job.py",
            args=["--lake-root", str(tmp_path), "--tables", "no_such_table"],
        )

    result = dg.materialize([broken], raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure.cls_name == SparkJobError.__name__
    assert "Spark job kpi_job.py failed" in failure.message
    assert "no_such_table" in failure.message
    assert "daily_metrics" in failure.message


def test_an_interrupted_step_cancels_its_running_spark_jobs(spark) -> None:
    """A cancelled run interrupts the step; the in-process JVM must stop computing too."""
    errors: list[BaseException] = []
    started = threading.Event()

    def long_job() -> None:
        spark.sparkContext.setJobGroup("long", "a job that only a cancel ends")
        started.set()
        try:
            spark.range(10**12).selectExpr("max(hash(id))").collect()
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=long_job)
    worker.start()
    assert started.wait(30)
    deadline = time.monotonic() + 60
    while not spark.sparkContext.statusTracker().getActiveJobsIds():
        assert time.monotonic() < deadline, "the long job never started"
        worker.join(0.1)
    with pytest.raises(KeyboardInterrupt), cancelling_spark_on_interrupt(spark):
        raise KeyboardInterrupt
    worker.join(60)
    assert not worker.is_alive()
    assert errors and "cancel" in str(errors[0]).lower()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "in_process"), ("spark-submit", "spark_submit"), (" IN_PROCESS ", "in_process")],
)
def test_spark_mode_setting(value: str | None, expected: str) -> None:
    env = {} if value is None else {"CAR_RENTAL_SPARK_MODE": value}
    assert spark_mode(env) == expected


def test_an_unknown_spark_mode_names_the_variable_and_the_choices() -> None:
    with pytest.raises(SettingsError, match=r"CAR_RENTAL_SPARK_MODE='yarn'.*in_process"):
        spark_mode({"CAR_RENTAL_SPARK_MODE": "yarn"})


def test_an_empty_kpi_table_list_is_refused_rather_than_read_as_all() -> None:
    with pytest.raises(SystemExit, match="--tables: no table named"):
        kpi_job.parse_tables(" , ")
    assert kpi_job.parse_tables(None) == list(KPI_BY_NAME)
    assert kpi_job.parse_tables("user_metrics,daily_metrics") == ["daily_metrics", "user_metrics"]
