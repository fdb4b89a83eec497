"""A small load test on this machine: N browsers watching while M denoising jobs queue (loopback only, bounded).

It starts its own ``streamlit run`` on a free 127.0.0.1 port with a temporary runs folder and drives one headless
Chromium (Debian's, with the browser tests' arguments) with M "job" contexts, i.e. M owners, each starting a small
denoising job on the sample image (one runs, the others queue), and N "watcher" contexts that open the Denoising
page, the Runs page or one job's read-only URL (``/denoising?job=<id>``), switch pages through the sidebar a fixed
number of times, then watch until every job is done. It talks to nothing but that server, every wait has a
timeout, the whole run stops at ``--deadline``, and the browser and the server are closed on every way out.

Reported: page latency (``page.goto`` to the app connected and the page's title visible; the same for a sidebar
page switch; and until the script run has finished, "settled"; the cold start, one visit of Home on the fresh
server before the clock starts, apart), the server's RSS sampled every second (idle before any browser, after that
first visit, peak and when, at the end with the browsers still open, after they closed), each job's seconds per
iteration (its run's metrics.json), the time until every job is done, and errors: exception elements on any page,
Tracebacks in the server log, failed navigations or steps, uncaught JavaScript exceptions, jobs that failed or never
finished. The browser console's error lines (failed resource loads) are listed apart, not counted as errors.
The numbers include the browsers' own CPU use on the same machine; on a shared machine they are noisy.

    .venv/bin/python scripts/load_test.py                            # 8 watchers, 3 jobs of 100 it at 64 px
    .venv/bin/python scripts/load_test.py --browsers 3 --jobs 2 --iterations 40 --json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import locators as sel  # noqa: E402
from appserver import _free_port, _wait_healthy, streamlit_command  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from playwright.async_api import Error as PlaywrightError  # noqa: E402
from playwright.async_api import async_playwright, expect  # noqa: E402

# Nothing but the test's own server: every host name but 127.0.0.1 fails to resolve in this Chromium (the app's
# favicon, a Material icon, is otherwise fetched from fonts.gstatic.com by every page).
LOOPBACK_ONLY = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
HEADINGS = {"/": "Deep Image Prior Studio", "Home": "Deep Image Prior Studio"}
WATCH_POLL_S = 3.0  # how often a watcher looks for exceptions and a lost connection
OWNER_POLL_S = 2.0  # how often a job's owner reads its progress


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the server and its memory --------------------------------------------------------------------------------------
class Server:
    """``streamlit run streamlit_app.py`` on a free 127.0.0.1 port, in its own session (a Ctrl-C in the terminal
    reaches this script, which then stops the server itself)."""

    def __init__(self, work: Path, env: dict):
        self.work, self.env = work, env
        self.log_path = work / "server.log"
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""

    def start(self) -> None:
        port = _free_port()
        cmd = streamlit_command(port)
        with open(self.log_path, "w") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{port}"
        _wait_healthy(self.url, self.proc)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def log_errors(self) -> list[str]:
        """One line per Traceback in the log (its exception line), and any missing ScriptRunContext warning."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        found = []
        for i, line in enumerate(lines):
            if "Traceback" in line:
                tail = next((t for t in lines[i + 1 :] if t and not t[0].isspace() and "Traceback" not in t), "?")
                found.append(f"Traceback: {tail.strip()[:300]}")
            elif "missing ScriptRunContext" in line:
                found.append(f"log: {line.strip()[:300]}")
        return found


class RssSampler(threading.Thread):
    """VmRSS of one process every ``period`` seconds, with a label for the phase of the test."""

    def __init__(self, pid: int, period: float = 1.0):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, str, int]] = []  # (monotonic time, phase, kB)
        self.phase = "idle"
        self._halt = threading.Event()

    def read(self) -> Optional[int]:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return None

    def run(self) -> None:
        while not self._halt.is_set():
            kb = self.read()
            if kb is not None:
                self.samples.append((time.monotonic(), self.phase, kb))
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def peak_at(self, t0: float) -> Optional[float]:
        """Seconds after ``t0`` (the browsers' start) of the highest sample."""
        return round(max(self.samples, key=lambda s: s[2])[0] - t0, 1) if self.samples else None

    def timeline(self, t0: float, every: float = 5.0) -> list:
        """[seconds after t0, MiB] about every ``every`` seconds (the highest sample of each stretch)."""
        out: dict[int, float] = {}
        for t, _, kb in self.samples:
            slot = int((t - t0) // every)
            out[slot] = max(out.get(slot, 0.0), round(kb / 1024, 1))
        return [[slot * every, mib] for slot, mib in sorted(out.items())]

    def mib(self, phase: Optional[str] = None, how=max) -> Optional[float]:
        kbs = [kb for _, p, kb in self.samples if phase is None or p == phase]
        return round(how(kbs) / 1024, 1) if kbs else None


def server_cpu_seconds(pid: int) -> Optional[float]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# -- what the browsers saw ------------------------------------------------------------------------------------------
@dataclass
class JobRecord:
    owner: str
    id: Optional[str] = None
    submitted: Optional[float] = None  # seconds since the test started
    started: Optional[float] = None  # first seen running by its owner
    done: Optional[float] = None  # first seen Done by its owner
    status: str = "not submitted"
    first_position: Optional[str] = None  # the queue text the owner saw first
    last_rate: Optional[str] = None  # the last "it/s" the progress bar showed
    metrics: dict = field(default_factory=dict)


@dataclass
class Results:
    t0: float = field(default_factory=time.monotonic)
    loads: list = field(default_factory=list)  # {"who", "path", "connected_s", "settled_s"}
    switches: list = field(default_factory=list)  # {"who", "to", "visible_s", "settled_s"}
    errors: list = field(default_factory=list)  # {"who", "kind", "detail", "at_s"}
    console_errors: list = field(default_factory=list)
    disconnected: list = field(default_factory=list)  # (who, at_s, state) seen by a poll
    jobs: list = field(default_factory=list)
    all_done_s: Optional[float] = None
    cold_start: Optional[dict] = None  # the warm-up visit of Home on the fresh server
    deadline_hit: bool = False
    interrupted: bool = False

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def error(self, who: str, kind: str, detail) -> None:
        text = re.sub(r"\s+", " ", str(detail)).strip()[:400]
        self.errors.append({"who": who, "kind": kind, "detail": text, "at_s": self.now()})
        log(f"ERROR {who}: {kind}: {text[:200]}")


# -- page helpers (async versions of tests/e2e/test_browser.py's) ---------------------------------------------------
def heading(page, title: str):
    return page.get_by_role("heading", level=1, name=HEADINGS.get(title, title))


async def wait_for_app(page, timeout_ms: int) -> None:
    await page.wait_for_selector(sel.APP_CONNECTED, timeout=timeout_ms)
    await expect(page.locator(sel.APP)).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout_ms)
    await expect(page.locator(sel.STALE)).to_have_count(0, timeout=timeout_ms)


async def set_number(page, label: str, value: int, timeout_ms: int) -> None:
    box = page.get_by_label(label, exact=True)
    await box.fill(str(value))
    await box.press("Enter")
    await wait_for_app(page, timeout_ms)


async def choose(page, label: str, option: str, timeout_ms: int) -> None:
    box = page.get_by_test_id(sel.SELECTBOX).filter(has_text=label)
    item = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):  # the first click can land while the app is still redrawing
        await box.click()
        try:
            await item.click(timeout=5_000)
            break
        except PlaywrightError:
            await page.keyboard.press("Escape")
    await wait_for_app(page, timeout_ms)


class Load:
    """Everything the browsers share: settings, the server's URL, the jobs' ids and the results."""

    def __init__(self, args, url: str, runs_dir: Path, res: Results, rss: RssSampler):
        self.args, self.url, self.runs_dir, self.res, self.rss = args, url, runs_dir, res, rss
        self.step_ms = int(args.step_timeout * 1000)
        self.deadline = time.monotonic() + args.deadline
        self.job_ids: list[Optional[str]] = [None] * args.jobs
        self.job_known = [asyncio.Event() for _ in range(args.jobs)]
        self.finished = 0  # owners whose job is over (done, failed, or never submitted)
        self.all_done = asyncio.Event()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def owner_finished(self) -> None:
        self.finished += 1
        if self.finished >= self.args.jobs:
            if self.res.all_done_s is None and all(j.status == "done" for j in self.res.jobs):
                self.res.all_done_s = self.res.now()
            self.all_done.set()

    async def new_page(self, browser, who: str):
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        page = await context.new_page()
        page.set_default_timeout(self.step_ms)
        page.on("pageerror", lambda err: self.res.error(who, "javascript", err))
        page.on("crash", lambda _: self.res.error(who, "page crashed", ""))
        page.on(
            "console",
            lambda msg: self.res.console_errors.append(
                {
                    "who": who,
                    "text": msg.text[:300],
                    "url": (msg.location or {}).get("url", "")[:200],
                    "at_s": self.res.now(),
                }
            )
            if msg.type == "error"
            else None,
        )
        return context, page

    async def open(self, page, who: str, path: str, title: str) -> bool:
        """goto, then the app connected and the page's title visible (the latency), then settled."""
        t = time.monotonic()
        try:
            await page.goto(self.url + path, wait_until="domcontentloaded")
            await page.wait_for_selector(sel.APP_CONNECTED, timeout=self.step_ms)
            await expect(heading(page, title)).to_be_visible(timeout=self.step_ms)
            visible = time.monotonic() - t
            await wait_for_app(page, self.step_ms)
        except (PlaywrightError, AssertionError) as err:
            self.res.error(who, f"navigation to {path} failed", err)
            return False
        self.res.loads.append(
            {
                "who": who,
                "path": path,
                "visible_s": round(visible, 3),
                "settled_s": round(time.monotonic() - t, 3),
                "at_s": self.res.now(),
            }
        )
        return True

    async def switch(self, page, who: str, title: str) -> bool:
        """A page switch through the sidebar: click to the new page's title visible, then settled."""
        t = time.monotonic()
        try:
            await page.get_by_test_id(sel.SIDEBAR_NAV).get_by_text(title, exact=True).click()
            await expect(heading(page, title)).to_be_visible(timeout=self.step_ms)
            visible = time.monotonic() - t
            await wait_for_app(page, self.step_ms)
        except (PlaywrightError, AssertionError) as err:
            self.res.error(who, f"switch to {title} failed", err)
            return False
        self.res.switches.append(
            {
                "who": who,
                "to": title,
                "visible_s": round(visible, 3),
                "settled_s": round(time.monotonic() - t, 3),
                "at_s": self.res.now(),
            }
        )
        return True

    async def check(self, page, who: str, seen: set) -> None:
        """Exception elements (each new text once per browser) and a connection that is not CONNECTED."""
        try:
            texts = await page.get_by_test_id(sel.EXCEPTION).all_inner_texts()
            state = await page.locator(sel.APP).get_attribute("data-test-connection-state", timeout=5_000)
        except PlaywrightError as err:
            self.res.error(who, "page check failed", err)
            return
        for text in texts:
            if text not in seen:
                seen.add(text)
                self.res.error(who, "stException on the page", text)
        if state != "CONNECTED":
            self.res.disconnected.append({"who": who, "at_s": self.res.now(), "state": state})

    # -- a job's owner ------------------------------------------------------------------------------------------
    async def owner(self, browser, i: int) -> None:
        who, a = f"job{i + 1}", self.args
        rec = JobRecord(owner=who)
        self.res.jobs.append(rec)
        context = None
        try:
            context, page = await self.new_page(browser, who)
            if not await self.open(page, who, "/denoising", "Denoising"):
                return
            try:
                advanced = page.get_by_test_id(sel.EXPANDER).filter(has_text="Advanced")
                await expect(advanced).to_have_count(1, timeout=self.step_ms)
                await advanced.get_by_text("Advanced", exact=False).click()
                await choose(page, "Working size", str(a.size), self.step_ms)
                await set_number(page, "Iterations", a.iterations, self.step_ms)
                await set_number(page, "Channels (widest level)", a.channels, self.step_ms)
                await set_number(page, "Snapshot every (iterations)", a.snapshot_every, self.step_ms)
                await expect(page.get_by_text(re.compile(r"Working image: \d+x\d+ px"))).to_be_visible()
                await page.get_by_test_id(sel.PRIMARY_BUTTON).filter(has_text="Run").click()
                rec.submitted = self.res.now()
                refused = page.get_by_test_id("stAlertContentWarning")
                while "job=" not in page.url:
                    if await refused.count():
                        raise RuntimeError(f"job refused: {(await refused.first.inner_text())[:300]}")
                    if time.monotonic() - self.res.t0 - rec.submitted > a.step_timeout:
                        raise RuntimeError("no job id in the URL after Run")
                    await asyncio.sleep(0.25)
            except (PlaywrightError, AssertionError, RuntimeError) as err:
                self.res.error(who, "starting the job failed", err)
                return
            rec.id = re.search(r"job=([^&#]+)", page.url).group(1)
            rec.status = "submitted"
            self.job_ids[i] = rec.id
            self.job_known[i].set()
            log(f"{who}: submitted {rec.id} at {rec.submitted:.1f} s")
            await self.follow(page, who, rec)
        finally:
            self.job_known[i].set()  # a watcher of this job stops waiting (there is no job when rec.id is None)
            self.owner_finished()
            if rec.id:
                rec.metrics = self.run_metrics(rec.id)
            if context is not None:
                await context.close()

    async def follow(self, page, who: str, rec: JobRecord) -> None:
        """Read the owner's progress bar until Done (or the job fails, or the deadline)."""
        seen: set = set()
        success, failed = page.get_by_test_id(sel.SUCCESS), page.get_by_test_id(sel.ERROR)
        while self.left() > 0:
            try:
                progress = " ".join(await page.get_by_test_id(sel.PROGRESS).all_inner_texts())
                if await success.count() and "Done" in (await success.first.inner_text()):
                    rec.done, rec.status = self.res.now(), "done"
                    log(f"{who}: {rec.id} done at {rec.done:.1f} s")
                    break
                if await failed.count():
                    text = await failed.first.inner_text()
                    if "failed" in text:
                        rec.status = "failed"
                        self.res.error(who, "job failed", text)
                        break
            except PlaywrightError as err:
                self.res.error(who, "reading progress failed", err)
                progress = ""
            if progress.startswith("Queued") and rec.first_position is None:
                rec.first_position = progress.split("·", 1)[-1].strip()
            if progress.startswith("Running"):
                if rec.started is None:
                    rec.started = self.res.now()
                    rec.first_position = rec.first_position or "running at once"
                    log(f"{who}: {rec.id} running at {rec.started:.1f} s")
                rate = re.search(r"([\d.]+) it/s", progress)
                rec.last_rate = rate.group(1) if rate else rec.last_rate
            await self.check(page, who, seen)
            await asyncio.sleep(OWNER_POLL_S)
        else:
            rec.status = "not done by the deadline"
        await self.check(page, who, seen)

    def run_metrics(self, job_id: str) -> dict:
        path = self.runs_dir / job_id / "metrics.json"
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        keep = {k: m.get(k) for k in ("status", "iterations", "seconds", "shape", "device", "precision")}
        if m.get("seconds") and m.get("iterations"):
            keep["s_per_iteration"] = round(m["seconds"] / m["iterations"], 4)
        return keep

    # -- a watcher ----------------------------------------------------------------------------------------------
    async def watcher(self, browser, i: int) -> None:
        a = self.args
        kind = ("denoising", "runs", "job")[i % 3]
        who = f"watch{i + 1}-{kind}"
        if kind == "job":
            n = (i // 3) % a.jobs
            try:
                await asyncio.wait_for(self.job_known[n].wait(), timeout=max(1.0, self.left()))
            except TimeoutError:
                self.res.error(who, "no job to watch", f"job{n + 1} never got an id")
                return
            if self.job_ids[n] is None:
                return
            who = f"watch{i + 1}-job{n + 1}"
            path, own, other = f"/denoising?job={self.job_ids[n]}", "Denoising", "Runs"
        elif kind == "runs":
            path, own, other = "/runs", "Runs", "Home"
        else:
            path, own, other = "/denoising", "Denoising", "Runs"
        await asyncio.sleep(i * a.stagger)
        context = None
        seen: set = set()
        try:
            context, page = await self.new_page(browser, who)
            if not await self.open(page, who, path, own):
                return
            if kind == "job":
                await self.expect_read_only(page, who)
            for s in range(a.switches):
                await asyncio.sleep(a.switch_every)
                if self.left() <= 0:
                    break
                await self.switch(page, who, other if s % 2 == 0 else own)
                await self.check(page, who, seen)
            while self.left() > 0 and not self.all_done.is_set():
                await self.check(page, who, seen)
                try:
                    await asyncio.wait_for(self.all_done.wait(), timeout=min(WATCH_POLL_S, max(0.1, self.left())))
                except TimeoutError:
                    pass
            if kind == "job" and self.all_done.is_set():  # the watched job shows its result here too
                try:
                    await expect(page.get_by_test_id(sel.SUCCESS)).to_contain_text("Done", timeout=self.step_ms)
                except (PlaywrightError, AssertionError) as err:
                    self.res.error(who, "the watched job never showed Done", err)
            await self.check(page, who, seen)
        finally:
            if context is not None:
                await context.close()

    async def expect_read_only(self, page, who: str) -> None:
        try:
            await expect(page.get_by_text("another browser's job, read-only")).to_be_visible(timeout=self.step_ms)
        except (PlaywrightError, AssertionError) as err:
            self.res.error(who, "the job's URL did not show it read-only", err)

    async def warm_up(self, browser) -> None:
        """One visit of Home on the fresh server (it imports the app and torch, makes the job registry), closed
        before the test's clock starts; its latency is reported as the cold start."""
        self.rss.phase = "first visit"
        context, page = await self.new_page(browser, "warm-up")
        try:
            if await self.open(page, "warm-up", "/", "Home"):
                self.res.cold_start = self.res.loads.pop()
        finally:
            await context.close()
        self.rss.phase = "warm"
        await asyncio.sleep(3)

    async def run(self) -> None:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + LOOPBACK_ONLY
            )
            try:
                if self.args.warmup:
                    await self.warm_up(browser)
                self.rss.phase = "load"
                self.res.t0 = time.monotonic()
                tasks = [self.owner(browser, i) for i in range(self.args.jobs)]
                tasks += [self.watcher(browser, i) for i in range(self.args.browsers)]
                await asyncio.gather(*tasks)
            finally:
                await browser.close()


# -- the report -----------------------------------------------------------------------------------------------------
def spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    v = sorted(values)
    p95 = v[min(len(v) - 1, max(0, -(-95 * len(v) // 100) - 1))]  # nearest rank
    return {"n": len(v), "median": round(statistics.median(v), 2), "p95": round(p95, 2), "max": round(v[-1], 2)}


def console_kinds(messages: list[dict]) -> list[dict]:
    """Distinct JavaScript console errors (digits blanked), most frequent first, with when each was first seen."""
    kinds: dict[str, dict] = {}
    for m in messages:
        url = re.sub(r"^https?://127\.0\.0\.1:\d+", "", m["url"])  # this run's port is no part of the kind
        key = re.sub(r"\d+", "N", m["text"])[:200] + " " + url
        k = kinds.setdefault(key, {"text": m["text"][:300], "url": url, "count": 0, "first_s": m["at_s"], "who": set()})
        k["count"] += 1
        k["who"].add(m["who"])
    return [{**k, "who": sorted(k["who"])} for k in sorted(kinds.values(), key=lambda k: -k["count"])]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "?"


def summary(
    args,
    res: Results,
    rss: RssSampler,
    log_errors: list[str],
    *,
    wall_s: float,
    load_before: tuple,
    cpu_s: Optional[float],
) -> dict:
    done = [j for j in res.jobs if j.status == "done"]
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "settings": {
            "browsers": args.browsers,
            "jobs": args.jobs,
            "size": args.size,
            "iterations": args.iterations,
            "channels": args.channels,
            "snapshot_every": args.snapshot_every,
            "switches": args.switches,
            "switch_every_s": args.switch_every,
            "deadline_s": args.deadline,
            "threads": args.threads,
        },
        "cold_start_s": res.cold_start,
        "latency_s": {
            "load_visible": spread([x["visible_s"] for x in res.loads]),
            "load_settled": spread([x["settled_s"] for x in res.loads]),
            "switch_visible": spread([x["visible_s"] for x in res.switches]),
            "switch_settled": spread([x["settled_s"] for x in res.switches]),
        },
        "rss_mib": {
            "idle": rss.mib("idle", how=statistics.median),
            "warm": rss.mib("warm", how=statistics.median),
            "peak": rss.mib(),
            "end": rss.mib("end", how=statistics.median),
            "after_close": rss.mib("closed", how=min),
            "peak_at_s": rss.peak_at(res.t0),
            "timeline": rss.timeline(res.t0),
        },
        "server_cpu_s": cpu_s,
        "jobs_done": len(done),
        "all_jobs_done_s": res.all_done_s,
        "jobs": [vars(j) for j in res.jobs],
        "errors": {
            "count": len(res.errors) + len(log_errors),
            "browser": res.errors,
            "server_log": log_errors,
            "console_errors": len(res.console_errors),
            "console": console_kinds(res.console_errors),
            "not_connected_polls": res.disconnected,
        },
        "deadline_hit": res.deadline_hit,
        "interrupted": res.interrupted,
        "wall_s": round(wall_s, 1),
        "loads": res.loads,
        "switches": res.switches,
    }


def markdown(s: dict) -> str:
    def lat(d: dict) -> str:
        return "–" if not d["n"] else f"{d['median']:.2f} / {d['p95']:.2f} / {d['max']:.2f} (n={d['n']})"

    def mib(x) -> str:
        return "–" if x is None else f"{x:.0f}"

    st, r, e = s["settings"], s["rss_mib"], s["errors"]
    kinds: dict[str, int] = {}
    for err in e["browser"]:
        kinds[err["kind"]] = kinds.get(err["kind"], 0) + 1
    kinds.update({"server log": len(e["server_log"])} if e["server_log"] else {})
    per_job = ", ".join(f"{j['owner']} {j['metrics'].get('s_per_iteration', '–')}" for j in s["jobs"]) or "–"
    lines = [
        f"Load test, {s['date']}, CPU: {s['cpu']} ({s['cpus']} CPUs), load average before "
        f"{' / '.join(f'{x:.2f}' for x in s['load_average_before'])}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| browsers | {st['browsers']} watching + {st['jobs']} job owner(s) (one Chromium, "
        f"{st['browsers'] + st['jobs']} contexts) |",
        f"| jobs | {st['jobs']} × denoising, sample image, {st['size']} px, {st['iterations']} it, "
        f"{st['channels']} channels, snapshot every {st['snapshot_every']} |",
        "| cold start: first visit of Home on the fresh server, s (title visible / settled) | "
        + (
            f"{s['cold_start_s']['visible_s']:.2f} / {s['cold_start_s']['settled_s']:.2f} |"
            if s["cold_start_s"]
            else "– |"
        ),
        f"| page load latency, s: median / p95 / max (to title visible) | {lat(s['latency_s']['load_visible'])} |",
        f"| page load until settled, s | {lat(s['latency_s']['load_settled'])} |",
        f"| page switch latency, s (sidebar, to title visible) | {lat(s['latency_s']['switch_visible'])} |",
        f"| page switch until settled, s | {lat(s['latency_s']['switch_settled'])} |",
        f"| server RSS, MiB: idle / after one visit / peak / end / after browsers closed | {mib(r['idle'])} / "
        f"{mib(r['warm'])} / {mib(r['peak'])} (at {r['peak_at_s']} s) / {mib(r['end'])} / {mib(r['after_close'])} |",
        f"| jobs done | {s['jobs_done']} / {st['jobs']} |",
        f"| s per iteration of each job (metrics.json) | {per_job} |",
        f"| all jobs done after, s | {s['all_jobs_done_s'] if s['all_jobs_done_s'] is not None else '–'} |",
        f"| errors | {e['count']}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in kinds.items())})" if kinds else "")
        + f"; JavaScript console errors {e['console_errors']}, polls not connected "
        f"{len(e['not_connected_polls'])} |",
        f"| wall time, s | {s['wall_s']}"
        + (" (deadline hit)" if s["deadline_hit"] else "")
        + (" (interrupted)" if s["interrupted"] else "")
        + " |",
        "",
        "| job | id | queue when submitted | submitted / running / done at, s | s/it | last it/s shown |",
        "|---|---|---|---|---|---|",
    ]
    for j in s["jobs"]:
        at = " / ".join("–" if x is None else f"{x:.0f}" for x in (j["submitted"], j["started"], j["done"]))
        lines.append(
            f"| {j['owner']} | {j['id'] or '–'} ({j['status']}) | {j['first_position'] or '–'} | {at} | "
            f"{j['metrics'].get('s_per_iteration', '–')} | {j['last_rate'] or '–'} |"
        )
    if e["browser"] or e["server_log"]:
        lines += (
            ["", "Errors:"]
            + [f"- {x['who']} at {x['at_s']:.0f} s: {x['kind']}: {x['detail'][:200]}" for x in e["browser"][:30]]
            + [f"- server: {x}" for x in e["server_log"][:30]]
        )
    if e["console"]:
        lines += ["", "JavaScript console errors (not counted above):"] + [
            f"- {k['count']}× from {len(k['who'])} browser(s), first at {k['first_s']:.0f} s: {k['text'][:150]} "
            f"({k['url'][:120]})"
            for k in e["console"][:5]
        ]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--browsers", type=int, default=8, help="watching browsers (contexts), besides the job owners")
    p.add_argument("--jobs", type=int, default=3, help="job owners, each starting one denoising job")
    p.add_argument("--size", type=int, default=64, help="working size of each job (longer side, px)")
    p.add_argument("--iterations", type=int, default=100, help="iterations of each job")
    p.add_argument("--channels", type=int, default=16, help="channels of the widest level")
    p.add_argument("--snapshot-every", type=int, default=10)
    p.add_argument("--switches", type=int, default=4, help="sidebar page switches per watcher")
    p.add_argument("--switch-every", type=float, default=15.0, help="seconds between a watcher's switches")
    p.add_argument("--stagger", type=float, default=1.0, help="seconds between the watchers' first visits")
    p.add_argument("--deadline", type=float, default=900.0, help="seconds for the whole test, then it stops")
    p.add_argument("--step-timeout", type=float, default=120.0, help="seconds one page step may take")
    p.add_argument("--threads", type=int, default=None, help="DIP_THREADS for the server (default: the app's)")
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="no visit of Home before the browsers start (their first loads then include the cold start)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the Markdown table")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (server.log, runs)")
    args = p.parse_args()
    if args.browsers < 0 or args.jobs < 1 or args.deadline <= 0:
        p.error("need --jobs >= 1, --browsers >= 0 and a positive --deadline")
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM}")

    # Ctrl-C, and a SIGTERM alike, end the test the same way: the browsers closed, the server stopped, the report
    # of what was measured so far (also when started in the background, where SIGINT would be ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    load_before = tuple(round(x, 2) for x in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="dip-load-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIP_")} | {
        "DIP_RUNS_DIR": str(work / "runs"),
        "DIP_MAX_QUEUE": str(max(5, args.jobs + 1)),
        "PYTHONPATH": str(ROOT),
    }
    if args.threads:
        env["DIP_THREADS"] = str(args.threads)
    server, rss, res = Server(work, env), None, Results()
    started = time.monotonic()
    cpu_s = None
    try:
        log(f"starting the server (work folder {work})")
        server.start()
        rss = RssSampler(server.proc.pid)
        rss.start()
        time.sleep(3)  # idle samples: the server up, no browser yet
        log(
            f"server up at {server.url}, idle RSS {rss.mib('idle')} MiB; opening {args.jobs} + {args.browsers} browsers"
        )
        res.t0 = time.monotonic()
        runner = Load(args, server.url, work / "runs", res, rss)
        try:
            asyncio.run(asyncio.wait_for(runner.run(), timeout=args.deadline + 60))
        except TimeoutError:
            res.deadline_hit = True
            log("deadline: browsers stopped")
        if runner.left() <= 0 and res.all_done_s is None:
            res.deadline_hit = True
        rss.phase = "closed"
        time.sleep(5)  # the server forgets the closed sessions
    except KeyboardInterrupt:
        res.interrupted = True
        log("interrupted: stopping")
    finally:
        try:
            if rss is not None:
                rss.stop()
            if server.proc is not None:
                cpu_s = server_cpu_seconds(server.proc.pid)
        finally:
            server.stop()
    if rss is None:
        sys.exit(f"the server did not start; its log: {server.log_path}")
    # "end": the last 5 s of the browsers' phase (jobs done, browsers still connected)
    load_samples = [(t, kb) for t, ph, kb in rss.samples if ph == "load"]
    if load_samples:
        last = load_samples[-1][0]
        rss.samples += [(t, "end", kb) for t, kb in load_samples if t >= last - 5]
    s = summary(
        args, res, rss, server.log_errors(), wall_s=time.monotonic() - started, load_before=load_before, cpu_s=cpu_s
    )
    s["work"] = str(work) if args.keep else None
    print(json.dumps(s, indent=1) if args.json else markdown(s))
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
