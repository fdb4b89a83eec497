"""Browser tests: a real ``streamlit run`` on a free localhost port, driven by Playwright with Debian's Chromium.

Skipped when /usr/bin/chromium (or $DIP_CHROMIUM) is missing; install it with ``apt-get install -y chromium``
(never ``playwright install``). Set DIP_SCREENSHOTS=1 to save a screenshot of every page to docs/screenshots/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DIP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
SCREENSHOTS = ROOT / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


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


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """URL of a headless app server; its log must show no Traceback and no missing ScriptRunContext."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    port = _free_port()
    work = tmp_path_factory.mktemp("e2e")
    log_path = work / "server.log"
    env = {**os.environ, "DIP_RUNS_DIR": str(work / "runs"), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert "Traceback" not in text, text[-4000:]
    assert "missing ScriptRunContext" not in text, text[-4000:]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, name): the whole page to docs/screenshots/<name>.png when DIP_SCREENSHOTS=1.

    Streamlit scrolls an inner container, so a full-page screenshot only shows the viewport; the viewport is
    made as tall as the content for the shot instead.
    """
    import locators as sel

    def take(page, name: str) -> None:
        if os.environ.get("DIP_SCREENSHOTS") != "1":
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        size = page.viewport_size
        height = page.get_by_test_id(sel.MAIN).evaluate("e => e.scrollHeight")
        page.set_viewport_size({"width": size["width"], "height": min(6000, max(size["height"], height + 120))})
        page.wait_for_timeout(1500)  # let images and charts redraw at the new size
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        page.set_viewport_size(size)
    return take
