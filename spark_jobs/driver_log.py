"""The driver JVM's own log lines (Spark's log4j output) sent to Dagster through Pipes.

On EMR the job's Python output reaches the run through the Pipes messages
(``include_stdio_in_messages``), but Spark's log4j lines come from the driver JVM, the process
that started this one: they reach S3 with the step's stderr, minutes after the step. So the EMR
runner starts ``spark-submit`` with a log4j2 configuration (``file_appender_config``) that adds a
file appender to Spark's own appenders, and names the file in the Pipes message parameters
(``DRIVER_LOG_PARAM``). ``DriverLogS3MessageWriter`` tails that file while the Pipes session is
open: every line goes to the run's stderr (``log_external_stream``, the step's compute log), and
each WARN, ERROR or FATAL event (with its stack trace) to the run's event log at that level.
"""

from __future__ import annotations

import codecs
import re
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster_pipes import (
    PIPES_PROTOCOL_VERSION,
    PIPES_PROTOCOL_VERSION_FIELD,
    PipesMessageWriterChannel,
    PipesParams,
    PipesS3MessageWriter,
)

DRIVER_LOG_PARAM = "driver_jvm_log"
"""Pipes message parameter: the file the driver JVM's log4j appender writes, on this node."""
FOLDER_PREFIX = "car-rental-driver-"
LOG_NAME = "driver.log"
CONFIG_NAME = "log4j2.properties"
LAYOUT = "%d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex"
"""Spark's own console layout: the lines look as they do in the step's stderr."""
EVENT_START = re.compile(
    r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (?P<level>TRACE|DEBUG|INFO|WARN|ERROR|FATAL) "
)
"""The first line of a log event in ``LAYOUT``; other lines continue it (a stack trace)."""
RUN_LOG_LEVELS = {"WARN": "WARNING", "ERROR": "ERROR", "FATAL": "CRITICAL"}
"""Events that also go to the run's event log, at these Python logging levels."""
POLL_SECONDS = 1.0


def driver_log_folder(token: str, root: str = "/tmp") -> str:
    """``/tmp/car-rental-driver-<token>``: the step's log4j configuration and its log file."""
    return f"{root.rstrip('/')}/{FOLDER_PREFIX}{token}"


def file_appender_config(log_path: str) -> str:
    """A log4j2 configuration that adds an appender writing to ``log_path`` to the root logger.

    It is meant to be merged with Spark's own (log4j2's composite configuration, the
    configuration files given as a comma-separated list): appenders and appender references are
    added, and without a level of its own the root logger keeps Spark's.
    """
    appender = "appender.dagster_pipes"
    return "\n".join(
        [
            "# This step's Spark log, also written to a file the job forwards through Pipes.",
            f"{appender}.type = File",
            f"{appender}.name = dagster_pipes",
            f"{appender}.fileName = {log_path}",
            f"{appender}.layout.type = PatternLayout",
            f"{appender}.layout.pattern = {LAYOUT}",
            "rootLogger.appenderRef.dagster_pipes.ref = dagster_pipes",
        ]
    )


def _message(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        PIPES_PROTOCOL_VERSION_FIELD: PIPES_PROTOCOL_VERSION,
        "method": method,
        "params": params,
    }


class DriverLogForwarder:
    """Reads what was appended to the log file and writes it to a Pipes message channel.

    Only whole lines are sent; an event is sent to the run log once its next event starts (its
    stack trace is complete then), or at ``close``.
    """

    def __init__(self, path: Path, channel: PipesMessageWriterChannel) -> None:
        self.path = path
        self.channel = channel
        self._handle: Any = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._event: list[str] = []
        self._level: str | None = None

    def poll(self) -> None:
        """Forward the lines appended since the last poll."""
        if self._handle is None:
            if not self.path.exists():
                return
            self._handle = self.path.open("rb")
        text = self._partial + self._decoder.decode(self._handle.read())
        *lines, self._partial = text.split("\n")
        if not lines:
            return
        self.channel.write_message(
            _message(
                "log_external_stream",
                {"stream": "stderr", "text": "".join(f"{line}\n" for line in lines), "extras": {}},
            )
        )
        for line in lines:
            start = EVENT_START.match(line)
            if start:
                self._send_event()
                self._level = start["level"]
            self._event.append(line)

    def _send_event(self) -> None:
        level = RUN_LOG_LEVELS.get(self._level or "")
        if level and self._event:
            self.channel.write_message(
                _message("log", {"message": "\n".join(self._event), "level": level})
            )
        self._event, self._level = [], None

    def close(self) -> None:
        """Forward the rest, the last event too; say so when the file never appeared."""
        self.poll()
        if self._handle is None:
            self.channel.write_message(
                _message(
                    "log",
                    {
                        "message": f"no log of the driver JVM at {self.path}: Spark's own log "
                        "lines are only in the step's stderr (in S3, minutes after the step)",
                        "level": "WARNING",
                    },
                )
            )
            return
        self._handle.close()
        self._send_event()


@contextmanager
def forwarding_driver_log(
    channel: PipesMessageWriterChannel, path: str | None, *, poll_seconds: float = POLL_SECONDS
) -> Iterator[None]:
    """Forward ``path`` to ``channel`` every ``poll_seconds`` until the block ends (no path: no-op).

    Afterwards the step's folder (log and configuration) is removed: the JVM, still running
    Spark's shutdown, keeps writing to a file that no longer has a name.
    """
    if not path:
        yield
        return
    forwarder = DriverLogForwarder(Path(path), channel)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(poll_seconds):
            forwarder.poll()

    thread = threading.Thread(target=loop, name="driver-jvm-log", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        forwarder.close()
        folder = Path(path).parent
        if folder.name.startswith(FOLDER_PREFIX):
            shutil.rmtree(folder, ignore_errors=True)


class DriverLogS3MessageWriter(PipesS3MessageWriter):
    """``PipesS3MessageWriter`` that also forwards the driver JVM's log named in its params."""

    @contextmanager
    def open(self, params: PipesParams) -> Iterator[PipesMessageWriterChannel]:
        with (
            super().open(params) as channel,
            forwarding_driver_log(channel, params.get(DRIVER_LOG_PARAM)),
        ):
            yield channel
