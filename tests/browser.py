"""A real browser for the dashboard tests: Debian's headless Chromium driven over the DevTools
protocol, and the dashboard served by ``streamlit run`` on a free loopback port.

Every wait polls a condition with a deadline; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
POLL_SECONDS = 0.2
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """Poll ``probe`` until it returns something other than None; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception as error:  # not up yet: keep polling, report the last error
            last_error = error
            value = None
        if value is not None:
            return value
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s (last error: {last_error})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@contextmanager
def streamlit_server(
    app: Path, env: Mapping[str, str], log: Path, timeout: float = 90
) -> Iterator[str]:
    """``streamlit run`` the app on a free port; yields its base URL once it answers."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(command, env=dict(env), stdout=output, stderr=output)
        try:
            url = f"http://127.0.0.1:{port}"

            def healthy() -> bool | None:
                if process.poll() is not None:
                    raise RuntimeError(f"streamlit exited: {log.read_text()[-2000:]}")
                return True if _http_get(f"{url}/_stcore/health").strip() == "ok" else None

            wait_for("streamlit health check", healthy, timeout)
            yield url
        finally:
            stop(process)


class DevTools:
    """One page target of Chromium, driven over the DevTools protocol."""

    def __init__(self, websocket: ClientConnection) -> None:
        self._ws = websocket
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        self._ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:  # events may arrive before the answer: skip them
            message = json.loads(self._ws.recv(timeout=60))
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data


@contextmanager
def chromium(
    profile: Path, width: int = 1400, height: int = 1000, timeout: float = 60
) -> Iterator[DevTools]:
    """Headless Chromium with a fresh profile; yields its first page's DevTools session."""
    profile.mkdir(parents=True, exist_ok=True)
    active = profile / "DevToolsActivePort"
    active.unlink(missing_ok=True)  # a previous browser's port would be read as ours
    command = [
        CHROMIUM,
        *HEADLESS_FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def port() -> int | None:
            if process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {process.returncode}")
            lines = active.read_text().splitlines() if active.exists() else []
            return int(lines[0]) if len(lines) >= 2 else None

        devtools_port = wait_for("chromium DevTools port", port, timeout)

        def page_target() -> str | None:
            targets = json.loads(_http_get(f"http://127.0.0.1:{devtools_port}/json/list"))
            pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
            return pages[0] if pages else None

        target = wait_for("chromium page target", page_target, timeout)
        with connect(target, max_size=None, open_timeout=timeout) as websocket:
            yield DevTools(websocket)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """Terminate a server the test started; kill it if it does not stop within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
