"""Spark's own log lines on EMR (``spark_jobs.driver_log``, ``EmrJobs.with_driver_log``), as far
as they can be tested without a JVM: the log4j2 configuration the step gets, the bash launcher
run for real around a stand-in for spark-submit, and the job side tailing a real file into the
real Pipes S3 message writer (the moto server). That log4j2 on EMR picks the configuration up is
for a real cluster to show (README, "What the tests prove")."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from dagster_pipes import PipesMessage, PipesMessageWriterChannel

from car_rental_platform.resources.aws.emr_jobs import EmrJobs
from spark_jobs.driver_log import (
    DRIVER_LOG_PARAM,
    EVENT_START,
    LAYOUT,
    DriverLogForwarder,
    DriverLogS3MessageWriter,
    driver_log_folder,
    file_appender_config,
    forwarding_driver_log,
)
from tests.aws.support import AwsEnv, object_bytes, object_keys

WARN = "25/01/31 10:00:00 WARN TaskSetManager: Lost task 0.0 in stage 3.0"
TRACE = "java.io.IOException: No space left on device\n\tat org.apache.Spark.Foo(Foo.java:1)"
INFO = "25/01/31 10:00:01 INFO SparkContext: Running Spark version 3.5.2-amzn-1"
ERROR = "25/01/31 10:00:02 ERROR Executor: Exception in task 1.0 in stage 3.0"


def _properties(text: str) -> dict[str, str]:
    pairs = [line.split(" = ", 1) for line in text.splitlines() if not line.startswith("#")]
    return dict(pairs)


def test_the_configuration_adds_a_file_appender_in_sparks_layout() -> None:
    config = _properties(file_appender_config("/tmp/car-rental-driver-abc/driver.log"))

    assert config == {
        "appender.dagster_pipes.type": "File",
        "appender.dagster_pipes.name": "dagster_pipes",
        "appender.dagster_pipes.fileName": "/tmp/car-rental-driver-abc/driver.log",
        "appender.dagster_pipes.layout.type": "PatternLayout",
        "appender.dagster_pipes.layout.pattern": "%d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex",
        "rootLogger.appenderRef.dagster_pipes.ref": "dagster_pipes",
    }
    assert "rootLogger.level" not in config, "Spark's level stays"
    assert LAYOUT.startswith("%d{yy/MM/dd HH:mm:ss} %p ")
    assert EVENT_START.match(WARN)["level"] == "WARN"
    assert EVENT_START.match(TRACE) is None
    assert driver_log_folder("abc") == "/tmp/car-rental-driver-abc"


STAND_IN = (
    "import json, os, sys\n"
    "print(json.dumps({'argv': sys.argv[1:], 'log4j': os.environ.get('LOG4J_CONFIGURATION_FILE')}))"
)


def _launch(tmp_path: Path, spark_conf: Path) -> tuple[dict[str, Any], Path]:
    folder = tmp_path / "car-rental-driver-abc"
    tricky = ["--conf", "a=b c", "it's", '"quoted"', "$HOME", "two\nlines"]
    args = EmrJobs.with_driver_log([sys.executable, "-c", STAND_IN, *tricky], folder=str(folder))
    done = subprocess.run(
        args,
        env={"PATH": "/usr/bin:/bin", "SPARK_CONF_DIR": str(spark_conf)},
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["argv"] == tricky, "the command's arguments pass through untouched"
    return out, folder


def test_the_launcher_lists_the_appender_after_sparks_configuration(tmp_path: Path) -> None:
    spark_conf = tmp_path / "spark-conf"
    spark_conf.mkdir()
    (spark_conf / "log4j2.properties").write_text("rootLogger.level = info\n")

    out, folder = _launch(tmp_path, spark_conf)

    config = folder / "log4j2.properties"
    assert out["log4j"] == f"{spark_conf / 'log4j2.properties'},{config}"
    assert config.read_text() == file_appender_config(f"{folder}/driver.log") + "\n"


def test_without_sparks_configuration_the_launcher_changes_nothing(tmp_path: Path) -> None:
    out, _ = _launch(tmp_path, tmp_path / "absent")

    assert out["log4j"] is None, "Spark keeps its built-in defaults"


class ListChannel(PipesMessageWriterChannel):
    def __init__(self) -> None:
        self.messages: list[PipesMessage] = []

    def write_message(self, message: PipesMessage) -> None:
        self.messages.append(message)

    def streamed(self) -> str:
        return "".join(
            m["params"]["text"] for m in self.messages if m["method"] == "log_external_stream"
        )

    def logged(self) -> list[tuple[str, str]]:
        return [
            (m["params"]["level"], m["params"]["message"])
            for m in self.messages
            if m["method"] == "log"
        ]


def test_whole_lines_are_streamed_and_warnings_logged_with_their_stack_trace(
    tmp_path: Path,
) -> None:
    log = tmp_path / "driver.log"
    channel = ListChannel()
    forwarder = DriverLogForwarder(log, channel)

    forwarder.poll()  # the JVM has not created its file yet
    assert channel.messages == []
    warn = f"{WARN}: disk é full".encode()
    cut = warn.index("é".encode()) + 1  # in the middle of a two-byte character
    log.write_bytes(f"{INFO}\n".encode() + warn[:cut])
    forwarder.poll()
    assert channel.streamed() == f"{INFO}\n", "a line only once it is whole"
    with log.open("ab") as out:
        out.write(warn[cut:] + f"\n{TRACE}\n".encode())
    forwarder.poll()
    assert channel.logged() == [], "a warning waits for its stack trace to end"
    with log.open("ab") as out:
        out.write(f"{ERROR}\n".encode())
    forwarder.poll()
    forwarder.close()

    assert channel.streamed() == f"{INFO}\n{WARN}: disk é full\n{TRACE}\n{ERROR}\n"
    assert channel.logged() == [
        ("WARNING", f"{WARN}: disk é full\n{TRACE}"),
        ("ERROR", ERROR),
    ]
    assert {m["params"]["stream"] for m in channel.messages if "stream" in m["params"]} == {
        "stderr"
    }


def test_a_log_that_never_appears_is_reported_once(tmp_path: Path) -> None:
    channel = ListChannel()
    forwarder = DriverLogForwarder(tmp_path / "driver.log", channel)
    forwarder.poll()
    forwarder.close()

    ((level, message),) = channel.logged()
    assert level == "WARNING"
    assert message.startswith(f"no log of the driver JVM at {tmp_path / 'driver.log'}")


def _messages(bucket: str, prefix: str) -> list[dict[str, Any]]:
    keys = sorted(object_keys(bucket, f"{prefix}/"), key=lambda k: int(re.findall(r"\d+", k)[-1]))
    return [json.loads(line) for key in keys for line in object_bytes(bucket, key).splitlines()]


def test_the_s3_message_writer_forwards_the_log_while_the_session_is_open(
    aws_env: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's writer (reporting.open_reporter uses it on EMR), with a file the "JVM" appends
    to between two of the forwarder's polls."""
    s3 = aws_env.client("s3")
    s3.create_bucket(Bucket=aws_env.bucket)
    folder = tmp_path / "car-rental-driver-abc"
    folder.mkdir()
    (folder / "log4j2.properties").write_text("# the step's configuration\n")
    log = folder / "driver.log"
    log.write_text(f"{INFO}\n")
    params = {"bucket": aws_env.bucket, "key_prefix": "dagster_pipes/run-1/x"}
    polled = threading.Event()
    poll = DriverLogForwarder.poll

    def observed_poll(forwarder: DriverLogForwarder) -> None:
        poll(forwarder)
        polled.set()

    monkeypatch.setattr(DriverLogForwarder, "poll", observed_poll)

    with DriverLogS3MessageWriter(client=s3, interval=1).open(
        {**params, DRIVER_LOG_PARAM: str(log)}
    ):
        assert polled.wait(10)
        with log.open("a") as out:
            out.write(f"{WARN}\n{TRACE}\n")
        polled.clear()
        assert polled.wait(10)

    messages = _messages(aws_env.bucket, params["key_prefix"])
    streamed = [m["params"]["text"] for m in messages if m["method"] == "log_external_stream"]
    assert streamed == [f"{INFO}\n", f"{WARN}\n{TRACE}\n"], "as it came, not only at the end"
    logged = [m["params"] for m in messages if m["method"] == "log"]
    assert logged == [{"message": f"{WARN}\n{TRACE}", "level": "WARNING"}]
    assert not folder.exists(), "the step's log folder is removed when the session closes"


def test_without_a_file_named_nothing_is_forwarded() -> None:
    channel = ListChannel()
    with forwarding_driver_log(channel, None):
        pass
    assert channel.messages == []
