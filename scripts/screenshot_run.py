"""Screenshot of the Runs page opened on one finished run folder (e.g. a full-size ``dip reproduce`` run).

    .venv/bin/python scripts/screenshot_run.py docs/runs/lab-denoise-astronaut \
        docs/screenshots/runs_astronaut_full_size.png

The folder is copied into a temporary runs directory, a headless ``streamlit run`` serves it, and Chromium (the
browser tests' set-up: /usr/bin/chromium, never ``playwright install``) saves the whole page.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import locators as sel  # noqa: E402
from appserver import serve  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (metrics.json, history.csv, images)")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    run_id = f"{time.strftime('%Y%m%d')}-{args.run.resolve().name}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(args.run, work / "runs" / run_id)
        with serve(work) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": args.width, "height": 1000}).new_page()
            page.set_default_timeout(90_000)
            page.goto(f"{url}/runs?run={run_id}")
            expect.set_options(timeout=90_000)  # the first run of a page loads torch
            expect(page.locator(sel.APP_CONNECTED)).to_be_visible()
            expect(page.locator(sel.APP)).to_have_attribute("data-test-script-state", "notRunning")
            expect(page.get_by_test_id(sel.PLOTLY)).to_be_visible()
            expect(page.get_by_test_id(sel.EXCEPTION)).to_have_count(0)
            # Streamlit scrolls an inner container: make the viewport as tall as the content instead.
            height = page.get_by_test_id(sel.MAIN).evaluate("e => e.scrollHeight")
            page.set_viewport_size({"width": args.width, "height": min(6000, height + 120)})
            page.wait_for_timeout(2500)  # let the images and the chart redraw at the new size
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
