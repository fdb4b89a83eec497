"""Browser tests: a real ``streamlit run`` on a free localhost port, driven by Playwright with Debian's Chromium.

Skipped when /usr/bin/chromium (or $DIP_CHROMIUM) is missing; install it with ``apt-get install -y chromium``
(never ``playwright install``). Set DIP_SCREENSHOTS=1 to save a screenshot of every page to docs/screenshots/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from appserver import serve

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DIP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def _need_chromium() -> None:
    # A pytestmark here would not reach the test modules: every browser fixture checks instead.
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """URL of the app server the browser tests share."""
    _need_chromium()
    with serve(tmp_path_factory.mktemp("e2e")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    _need_chromium()
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
def new_browser(browser):
    """new_browser() -> a page in a new browser context: its own cookies, so another owner (another visitor).

    A second tab of the same browser (same cookies, same owner) is ``page.context.new_page()``. Every context is
    closed after the test.
    """
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
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
