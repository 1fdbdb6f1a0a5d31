"""The run command: a configured instance, one code location name, the named job, real events,
the run's failed checks, the exit status they give, and a summary that survives empty or missing
tables."""

from __future__ import annotations

import os
import tomllib
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import yaml

from car_rental_platform import main
from car_rental_platform.settings import LocalSettings

PROJECT = Path(main.__file__).resolve().parents[1]


def test_one_code_location_name_everywhere_and_the_named_job() -> None:
    workspace = yaml.safe_load((PROJECT / "workspace.yaml").read_text())
    cloud = yaml.safe_load((PROJECT / "dagster_cloud.yaml").read_text())
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    names = {
        workspace["load_from"][0]["python_module"]["location_name"],
        cloud["locations"][0]["location_name"],
        pyproject["tool"]["dagster"]["code_location_name"],
    }
    assert names == {main.LOCATION}
    command = main.launch_command("some-run-id")
    assert command[1:3] == ["job", "launch"]
    assert command[command.index("-l") + 1] == main.LOCATION
    assert command[command.index("-j") + 1] == "refresh_all"
    assert Path(command[command.index("-w") + 1]) == PROJECT / "workspace.yaml"


def test_the_instance_is_configured_and_the_run_log_is_not_in_telemetry_logs(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    main.prepare_instance(home)
    assert (home / "dagster.yaml").read_text() == (
        PROJECT / "instance" / "dagster.yaml"
    ).read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_launcher.__class__.__name__ == "DefaultRunLauncher"
        assert instance.run_monitoring_enabled
    assert (home / "history" / "runs.db").is_file()  # SQLite storage in DAGSTER_HOME
    log = main.run_log_path(home)
    assert home / "logs" not in log.parents
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    main.prepare_instance(home)  # a user's own configuration is kept
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def launch(tmp_path: Path, *, fail: bool) -> tuple[bool, str, list[str], Path]:
    """Launch tests/launch_target's refresh_all as main does, in a DAGSTER_HOME under tmp_path."""
    home = tmp_path / "home"
    main.prepare_instance(home)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "tests.launch_target.definitions",
                            "location_name": "launch_target",
                            "working_directory": str(PROJECT),
                        }
                    }
                ]
            }
        )
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "LAUNCH_TARGET_FAIL": "1" if fail else "0"}
    run_id = str(uuid.uuid4())
    command = main.launch_command(run_id, workspace=workspace, location="launch_target")
    lines: list[str] = []
    log_path = main.run_log_path(home)
    log_path.parent.mkdir(parents=True)
    with log_path.open("w") as log:
        succeeded = main.run_job(env, log, command, run_id, out=lines.append)
    return succeeded, run_id, lines, home


def steps(lines: list[str]) -> list[tuple[str, str]]:
    return [tuple(line.split()[1:3]) for line in lines if "STEP_" in line]


def test_a_launched_run_belongs_to_its_location_and_job_and_reports_progress(
    tmp_path: Path,
) -> None:
    succeeded, run_id, lines, home = launch(tmp_path, fail=False)
    assert succeeded
    assert steps(lines) == [
        ("STEP_START", "first"),
        ("STEP_SUCCESS", "first"),
        ("STEP_START", "second"),
        ("STEP_SUCCESS", "second"),
    ]
    assert lines[-1].split()[1] == "RUN_SUCCESS"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        assert run.job_name == "refresh_all"
        assert run.tags["dagster/code_location"] == "launch_target"  # what the UI filters on
        assert run.remote_job_origin is not None  # re-executable from the UI's location
        report: list[str] = []
        status = main.conclude(
            instance,
            run_id,
            run_succeeded=succeeded,
            settings=settings(tmp_path),
            out=report.append,
        )
    assert status == 0  # the failed check is a warning
    assert report[:2] == [
        "Failed checks (an ERROR fails the command, a WARN is listed only):",
        "  WARN  first is_even: value=1",
    ]


def test_a_failed_asset_fails_the_command_with_its_reason(tmp_path: Path) -> None:
    succeeded, run_id, lines, home = launch(tmp_path, fail=True)
    assert not succeeded
    assert ("STEP_FAILURE", "second") in steps(lines)
    assert any("second asset broke on purpose" in line for line in lines)
    assert lines[-1].split()[1] == "RUN_FAILURE"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        report: list[str] = []
        status = main.conclude(
            instance,
            run_id,
            run_succeeded=succeeded,
            settings=settings(tmp_path),
            out=report.append,
        )
    assert status == 1
    assert "Total revenue: rentals not in the catalog yet" in report[-1]


def settings(tmp_path: Path) -> LocalSettings:
    return LocalSettings(
        source_dir=str(tmp_path / "landing"),
        lake_root=str(tmp_path / "lake"),
        catalog_path=str(tmp_path / "lake" / "catalog" / "car_rental.duckdb"),
        database="car_rental_db",
    )


@dg.asset(
    key="orders",
    check_specs=[
        dg.AssetCheckSpec("rows_counted", asset="orders"),
        dg.AssetCheckSpec("key_unique", asset="orders"),
        dg.AssetCheckSpec("references_known", asset="orders"),
    ],
)
def orders() -> dg.MaterializeResult:
    """Three rows, two sharing a key, one with an unknown customer."""
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(check_name="rows_counted", passed=True, metadata={"rows": 3}),
            dg.AssetCheckResult(
                check_name="key_unique",
                passed=False,
                metadata={"rows": 3, "duplicate_rows": 1, "key": "order_id"},
            ),
            dg.AssetCheckResult(
                check_name="references_known",
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"orders_with_unknown_customer": 1, "example_order_ids": "o3"},
            ),
        ]
    )


def test_failed_checks_come_from_the_run_and_only_an_error_fails_the_command() -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize([orders], instance=instance)
        assert result.success  # non-blocking checks: the run itself succeeds
        failed = main.failed_checks(instance, result.run_id)
    assert failed == [
        main.FailedCheck(
            dg.AssetKey("orders"),
            "key_unique",
            dg.AssetCheckSeverity.ERROR,
            {"rows": 3, "duplicate_rows": 1, "key": "order_id"},
        ),
        main.FailedCheck(
            dg.AssetKey("orders"),
            "references_known",
            dg.AssetCheckSeverity.WARN,
            {"orders_with_unknown_customer": 1, "example_order_ids": "o3"},
        ),
    ]
    assert [c.line() for c in failed] == [
        "  ERROR orders key_unique: duplicate_rows=1, key=order_id, rows=3",
        "  WARN  orders references_known: example_order_ids=o3, orders_with_unknown_customer=1",
    ]
    error, warning = failed
    assert main.exit_status(run_succeeded=True, failed=failed) == 1
    assert main.exit_status(run_succeeded=True, failed=[error]) == 1
    assert main.exit_status(run_succeeded=True, failed=[warning]) == 0
    assert main.exit_status(run_succeeded=True, failed=[]) == 0
    assert main.exit_status(run_succeeded=False, failed=[]) == 1
    assert main.exit_status(run_succeeded=False, failed=[warning]) == 1


def test_the_summary_shows_empty_tables_as_zero_and_says_which_are_not_cataloged(
    tmp_path: Path,
) -> None:
    """A header-only input: empty processed tables; the run stopped before the KPI catalog."""
    config = settings(tmp_path)
    Path(config.catalog_path).parent.mkdir(parents=True)
    with duckdb.connect(config.catalog_path) as connection:
        connection.execute("CREATE SCHEMA car_rental_db")
        for name in ("vehicles", "users", "locations"):
            connection.execute(f"CREATE VIEW car_rental_db.{name} AS SELECT 1 AS id WHERE false")
        connection.execute(
            "CREATE VIEW car_rental_db.rentals AS "
            "SELECT CAST(NULL AS DECIMAL(10, 2)) AS total_amount WHERE false"
        )
        connection.execute(
            "CREATE VIEW car_rental_db.rejected_rows AS "
            "SELECT 'rentals' AS source_table, 'bad_amount' AS reason WHERE false"
        )
    assert main.summary(config).splitlines() == [
        f"Lake: {tmp_path / 'lake'}",
        f"Catalog: {config.catalog_path} (car_rental_db)",
        "Rows per table:",
        "  vehicles                        0",
        "  users                           0",
        "  locations                       0",
        "  rentals                         0",
        "  rejected_rows                   0",
        "  location_metrics       not in the catalog yet",
        "  vehicle_type_metrics   not in the catalog yet",
        "  brand_metrics          not in the catalog yet",
        "  daily_metrics          not in the catalog yet",
        "  user_metrics           not in the catalog yet",
        "  hourly_metrics         not in the catalog yet",
        "  day_of_week_metrics    not in the catalog yet",
        "Rejected rows by reason:",
        "  none",
        "Total revenue: 0.00",
    ]


def test_the_summary_before_anything_is_cataloged(tmp_path: Path) -> None:
    lines = main.summary(settings(tmp_path)).splitlines()
    assert lines[3:5] == [
        "  vehicles               not in the catalog yet",
        "  users                  not in the catalog yet",
    ]
    assert lines[-3:] == [
        "Rejected rows by reason:",
        "  rejected_rows not in the catalog yet",
        "Total revenue: rentals not in the catalog yet",
    ]
