"""A headless ``streamlit run`` of the app on a free localhost port, for the browser tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]


def streamlit_command(port: int) -> list[str]:
    """The app served headless on loopback at ``port``, as in production but without a file watcher or telemetry."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"streamlit did not become healthy at {url} within {timeout:.0f} s")


def check_log(text: str) -> None:
    """A server log must show no Traceback and no missing ScriptRunContext (the message quotes the first one)."""
    for marker in ("Traceback", "missing ScriptRunContext"):
        at = text.find(marker)
        assert at < 0, text[max(0, at - 300) : at + 5000]


class AppServer:
    """One ``streamlit run`` at a time on ``work/runs`` (or ``runs``), restartable on the same runs folder.

    ``env``: extra environment variables (e.g. ``{"DIP_PUBLIC_RUNS": "1"}``). Every start gets a free port and its
    own log (``server.log``, then ``server-2.log``...); ``kill()`` ends the process with SIGKILL, as a crash or an
    OOM killer would, and ``start()`` then starts a new one on the same runs folder.
    """

    def __init__(self, work: Path, env: Optional[dict] = None, runs: Optional[Path] = None):
        self.work, self.runs = Path(work), Path(runs) if runs is not None else Path(work) / "runs"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {}), "DIP_RUNS_DIR": str(self.runs)}
        self.proc: Optional[subprocess.Popen] = None
        self.url: Optional[str] = None
        self.logs: list[Path] = []

    @property
    def log(self) -> Path:
        """The log of the current (or last) process."""
        return self.logs[-1]

    def start(self) -> str:
        assert self.proc is None or self.proc.poll() is not None, "a server is already running"
        port = _free_port()
        log_path = self.work / ("server.log" if not self.logs else f"server-{len(self.logs) + 1}.log")
        self.logs.append(log_path)
        cmd = streamlit_command(port)
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.url = f"http://127.0.0.1:{port}"
        _wait_healthy(self.url, self.proc)
        return self.url

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (no atexit, no finally, daemon threads die mid-iteration)."""
        assert self.proc is not None and self.proc.poll() is None, "no server is running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def check_logs(self) -> None:
        """Every process's log: no Traceback, no missing ScriptRunContext (a killed one's too, up to its death)."""
        for path in self.logs:
            check_log(path.read_text())


@contextlib.contextmanager
def app_server(work: Path, env: Optional[dict] = None, runs: Optional[Path] = None):
    """An ``AppServer``, started; stopped afterwards, when every log it wrote must be clean."""
    server = AppServer(work, env, runs)
    try:
        server.start()
        yield server
    finally:
        server.stop()
    server.check_logs()


@contextlib.contextmanager
def serve(work: Path, env: Optional[dict] = None):
    """A headless ``streamlit run`` on a free port; yields its URL. Its log must show no Traceback and no
    missing ScriptRunContext. ``env``: extra environment variables for the server."""
    with app_server(work, env) as server:
        yield server.url
