"""Seconds per iteration of an app job for several worker thread counts, with the page open in Chromium.

The app's worker shares its process with the web server, which reruns the job's progress fragment while the
page is open. This runs a real ``streamlit run`` per setting of DIP_THREADS (rounds alternate the settings), opens
the Denoising page in headless Chromium, runs the lab denoising preset on the default sample at a small working
size and reads the fit's seconds from the run's metrics.json; with the page watched it also prints the time to
result, from the click on Run to the page saying "Done".

In deployment the browser runs on the visitor's machine; here it shares the server's CPUs, and its rendering of
the live page took a third of the fit's speed on 2 cores. So Chromium runs at the lowest CPU priority
(``--browser-shares-cpu`` gives it the same as the server, as before 2026-12-02).

    .venv/bin/python scripts/app_threads.py --threads 1,2 --rounds 2 --iterations 60 --size 128
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import locators as sel  # noqa: E402
from appserver import serve  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402
from test_browser import choose, open_page, set_number, wait_for_app  # noqa: E402


def low_priority_chromium(folder: Path) -> str:
    """A launcher that runs Chromium at the lowest CPU priority. Playwright starts the browser in a session of its
    own, i.e. its own scheduler autogroup (Linux), where a plain ``nice`` does not count against the server's
    threads; the autogroup's nice value does (raising it needs no privilege)."""
    launcher = folder / "chromium"
    launcher.write_text(f'#!/bin/sh\necho 19 2>/dev/null >/proc/self/autogroup\nexec {shlex.quote(CHROMIUM)} "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


def one_job(browser, threads: int, iterations: int, size: int, watch: bool = True) -> float:
    """Seconds per iteration of one denoising job served with DIP_THREADS=threads; with ``watch`` False the
    page is closed once the job starts (no progress reruns)."""
    os.environ["DIP_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as work, serve(Path(work)) as url:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        wait_for_app(page)
        open_page(page, "Denoising")
        page.get_by_test_id(sel.EXPANDER).filter(has_text="Advanced").get_by_text("Advanced").click()
        choose(page, "Working size", str(size))
        set_number(page, "Iterations", iterations)
        clicked = time.monotonic()
        page.get_by_test_id(sel.PRIMARY_BUTTON).filter(has_text="Run").click()
        if watch:
            expect(page.get_by_test_id(sel.SUCCESS)).to_contain_text("Done", timeout=7_200_000)
            print(f"  time to result (Run clicked -> 'Done' shown): {time.monotonic() - clicked:.1f} s", flush=True)
        else:
            expect(page.get_by_role("button", name="Cancel")).to_be_visible()
            page.goto("about:blank")
        deadline = time.monotonic() + 1800
        while not list(Path(work, "runs").glob("*/metrics.json")) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(1)  # metrics.json is written before the run's images
        metrics = json.loads(next(Path(work, "runs").glob("*/metrics.json")).read_text())
        page.context.close()
    print(f"  {metrics['shape']} px, {metrics['iterations']} iterations, {metrics['seconds']:.1f} s", flush=True)
    return metrics["seconds"] / metrics["iterations"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="comma-separated DIP_THREADS settings")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--size", type=int, default=128, help="working size (longer side, px)")
    p.add_argument("--closed", action="store_true", help="close the page once the job runs (no polling)")
    p.add_argument(
        "--browser-shares-cpu", action="store_true", help="run Chromium at the server's CPU priority, not the lowest"
    )
    args = p.parse_args()
    settings = [int(t) for t in args.threads.split(",")]
    times = {t: [] for t in settings}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as launchers:
        chromium = CHROMIUM if args.browser_shares_cpu else low_priority_chromium(Path(launchers))
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        for r in range(args.rounds):
            for t in settings if r % 2 == 0 else settings[::-1]:
                times[t].append(one_job(browser, t, args.iterations, args.size, watch=not args.closed))
                print(f"round {r + 1}, DIP_THREADS={t}: {times[t][-1]:.3f} s/it", flush=True)
        browser.close()
    base = statistics.median(times[settings[0]])
    for t, ts in times.items():
        med = statistics.median(ts)
        print(f"DIP_THREADS={t}: median {med:.3f} s/it ({med / base:.2f} of DIP_THREADS={settings[0]})")


if __name__ == "__main__":
    main()
