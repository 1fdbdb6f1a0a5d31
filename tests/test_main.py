"""The run command: a configured instance, one code location name, the named job, real events."""

from __future__ import annotations

import os
import tomllib
import uuid
from pathlib import Path

import dagster as dg
import yaml

from car_rental_platform import main

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


def test_a_failed_asset_fails_the_command_with_its_reason(tmp_path: Path) -> None:
    succeeded, _, lines, _ = launch(tmp_path, fail=True)
    assert not succeeded
    assert ("STEP_FAILURE", "second") in steps(lines)
    assert any("second asset broke on purpose" in line for line in lines)
    assert lines[-1].split()[1] == "RUN_FAILURE"
