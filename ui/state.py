"""Process-wide resources (the job registry, the device) and per-session state (owner, job ids kept in the URL).

The registry is a module-level object made once per process, not a ``st.cache_resource`` entry: any client can
send Streamlit's ``clear_cache`` message, which releases every cached resource for every user.

Owners: each browser holds a random 128-bit secret in a cookie (``dip_owner``, set by a line of JavaScript since
Streamlit has no API to set a cookie; read back through ``st.context.cookies`` when the browser reconnects). It
survives a reload and is shared by the browser's tabs, and it is never part of a URL, so a copied link carries no
ownership. Jobs and runs record only a hash of it (``owner()``). A job's link opened elsewhere shows it read-only,
when its run may be seen there at all (``ui.service.access``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import runpy
import secrets
import statistics
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import streamlit as st

from dip.core.device import describe_device, pick_device
from dip.core.errors import DIPError
from dip.core.limits import Limits
from dip.core.presets import Preset
from dip.core.registry import TASKS
from dip.core.retention import prune_runs
from ui import keys
from ui.service import config
from ui.service.access import find_shared, may_view, read_access
from ui.service.backend import make_registry
from ui.service.jobs import JobRegistry, JobView
from ui.service.runners import (
    PIXEL_EXPONENT,
    admit,
    configure_torch,
    discard,
    measure_iteration,
    persist,
    recover,
    reference_size,
    release_memory,
    run_job,
    scale_time,
)
from ui.service.runs import RunListing, load_view, run_folder, scan_runs

log = logging.getLogger(__name__)
_entry = threading.local()  # per script thread: is the entry point running the page now?

# key -> (page file, title, icon): home, one page per registered task (dip.core.registry), runs. The entry point lists
# them with st.navigation (run_through_entry_point says why each page also guards its first line).
PAGES = {
    "home": ("pages/home.py", "Home", ":material/home:"),
    **{t.name: (f"pages/{t.page}.py", t.title, f":material/{t.icon}:") for t in TASKS.values()},
    "runs": ("pages/runs.py", "Runs", ":material/history:"),
}
JOB_ID = re.compile(r"^\d{8}-\d{6}-[a-z]+-[0-9a-f]{6,32}$")  # ui.service.jobs.new_job_id

_registry: Optional[JobRegistry] = None
_registry_lock = threading.Lock()


def get_registry() -> JobRegistry:
    """The one job registry of this server process, shared by every session. Made on first use, when it also
    queues again the jobs an earlier process left unfinished. Its jobs run in this process, or as Ray tasks when
    ``DIP_RAY_ADDRESS`` is set (``ui.service.backend``)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = make_registry(
                run_job,
                admit=admit(limits),
                accept=persist,
                discard=discard,
                max_queue=config.max_queue(),
                max_per_owner=config.max_jobs_per_owner(),
                max_seconds=limits().max_minutes * 60,
                max_snapshots=config.MAX_SNAPSHOTS,
                initializer=configure_torch,
                after_job=lambda job: _after_job(_registry, job),
            )
            recover(_registry, config.runs_dir())
            _tidy_runs(_registry)
        return _registry


def _after_job(registry: Optional[JobRegistry], job) -> None:
    release_memory()
    record_actual(job)
    if registry is not None:
        _tidy_runs(registry)


def _tidy_runs(registry: JobRegistry) -> None:
    """Keep the runs folder within its age and size limits, oldest first, never touching an active job."""
    try:
        removed = prune_runs(
            config.runs_dir(),
            max_age_days=config.runs_max_age_days(),
            max_total_mb=config.runs_max_mb(),
            protect={j.id for j in registry.active_jobs()},
        )
    except OSError:
        log.exception("pruning the runs folder failed")
        return
    if removed:
        log.info("retention removed %d run(s): %s", len(removed), ", ".join(removed))


def reset_registry() -> None:
    """Stop the registry and forget it (tests; a "restart" within one process)."""
    global _registry
    with _registry_lock:
        registry, _registry = _registry, None
    _corrections.clear()  # a new process has not seen any run finish
    if registry is not None:
        registry.shutdown(wait=True)
        if getattr(registry, "backend", None) is not None:
            registry.backend.close()


@st.cache_resource(show_spinner=False)
def device() -> tuple[str, str]:
    """(torch device string, human-readable description) of the device jobs run on."""
    configure_torch()  # before any torch work in this process, so the description shows the thread count used
    try:
        dev = pick_device(config.device_name())
    except DIPError:
        dev = pick_device("auto")
    return str(dev), describe_device(dev)


def limits() -> Limits:
    """The hard limits a job is checked against on this server's device (``ui.service.config.limits``)."""
    return config.limits(device()[0].split(":")[0])


@st.cache_resource(show_spinner=False)
def _timings() -> dict:
    return {}


OWNER_COOKIE = "dip_owner"
_SECRET = re.compile(r"^[0-9a-f]{32}$")
_COOKIE_DAYS = 30


def owner() -> str:
    """This browser's owner key: a hash of its secret (from its cookie, or new for a first visit)."""
    secret = st.session_state.get(keys.OWNER_SECRET)
    if secret is None:
        cookie = st.context.cookies.get(OWNER_COOKIE)
        secret = cookie if isinstance(cookie, str) and _SECRET.match(cookie) else secrets.token_hex(16)
        st.session_state[keys.OWNER_SECRET] = secret
        st.session_state[keys.OWNER_IN_COOKIE] = secret == cookie
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def remember_owner() -> None:
    """Store a new secret in the browser's cookie (unless a tab opened meanwhile stored one: that one wins on the
    next visit, and this tab keeps its own until then). SameSite=Strict: no other site's request carries it."""
    owner()
    if st.session_state.get(keys.OWNER_IN_COOKIE):
        return
    secret = st.session_state[keys.OWNER_SECRET]  # 32 hex digits (checked above): nothing to escape
    st.html(
        f"""<script>
if (!document.cookie.split("; ").some(c => c.startsWith("{OWNER_COOKIE}="))) {{
  document.cookie = "{OWNER_COOKIE}={secret}; path=/; max-age={_COOKIE_DAYS * 86400}; SameSite=Strict"
    + (location.protocol === "https:" ? "; Secure" : "");
}}
</script>""",
        unsafe_allow_javascript=True,
    )


def job_id(task: str) -> Optional[str]:
    return st.session_state.get(keys.job(task))


def set_job_id(task: str, value: Optional[str]) -> None:
    st.session_state[keys.job(task)] = value


def view(job: Optional[str], *, share: Optional[str] = None) -> Optional[JobView]:
    """A job this browser may see: live from the registry, else a finished run read from disk; None when there is
    no such job or it belongs to someone else (a gallery server, a public run and ``share`` aside)."""
    if not job:
        return None
    live = get_registry().view(job)
    if live is not None and (live.owner == owner() or config.public_runs() or live.info.get("public")):
        return live
    folder = run_folder(config.runs_dir(), job)  # a finished run (shared by link, perhaps), or none
    if folder is None:
        return None
    access = read_access(folder)
    if not may_view(access, owner(), gallery=config.public_runs(), share=share):
        return None
    v = _load_run(str(folder), folder.stat().st_mtime)
    return replace(v, owner=access.owner, info={**v.info, "public": access.public})


def visible_runs(*, also: Optional[str] = None) -> RunListing:
    """The saved runs this browser may see (``also``: a run opened through its share link), and the damaged
    folders among them: another owner's run is never named, not even as damaged."""
    root, me, gallery = config.runs_dir(), owner(), config.public_runs()

    def visible(run_id: str) -> bool:
        return run_id == also or may_view(read_access(root / run_id), me, gallery=gallery)

    listing = scan_runs(root)
    return RunListing(
        [r for r in listing.rows if visible(r.id)],
        [(run_id, why) for run_id, why in listing.skipped if visible(run_id)],
    )


def is_mine(v: JobView) -> bool:
    return bool(v.owner) and v.owner == owner()


def shared_run(token: Optional[str]) -> Optional[str]:
    """The id of the run a share link names, or None."""
    return find_shared(config.runs_dir(), token)


@st.cache_data(show_spinner=False, max_entries=8)
def _load_run(folder: str, mtime: float) -> JobView:
    return load_view(Path(folder))


def session_active_job() -> Optional[JobView]:
    """This browser's queued or running job, whichever page or tab started it."""
    job = get_registry().active_for(owner())
    return get_registry().view(job.id) if job else None


def sync_url(task: Optional[str]) -> None:
    """Keep ``?job=<id>`` in the URL for the current page's job; a new session opens the job in its URL.

    Page switches drop query parameters, so this runs on every script run from the entry point.
    """
    wanted = st.query_params.get("job")
    if not st.session_state.get(keys.URL_CHECKED):
        st.session_state[keys.URL_CHECKED] = True
        if wanted and _adopt(wanted, task):
            return
    current = job_id(task) if task in TASKS else None
    if current and st.query_params.get("job") != current:
        st.query_params["job"] = current
    elif not current and "job" in st.query_params:
        del st.query_params["job"]


def _adopt(wanted: str, task: Optional[str]) -> bool:
    """Open the job named in the URL (read-only unless this browser owns it); True when it switched pages.

    The id is never echoed: it is user text, and whether someone else's job exists is not this visitor's business.
    """
    try:
        v = view(wanted) if JOB_ID.match(wanted) else None
    except DIPError:  # a damaged run folder: the Runs page says what is wrong with it
        v = None
    if v is None or v.task not in TASKS:
        why = (
            "is not a valid job id"
            if not JOB_ID.match(wanted)
            else "names no job you can open: it may belong to another browser (its owner can make a share link on "
            "the Runs page) or may never have finished"
        )
        st.toast(f"The link {why}.", icon=":material/error:")
        return False
    set_job_id(v.task, wanted)
    if v.task != task:
        st.switch_page(PAGES[v.task][0], query_params={"job": wanted})
        return True
    return False


@dataclass(frozen=True)
class Estimate:
    """Expected seconds of a run: its iterations at the measured rate, the start-up, the classical baselines, times
    how much longer the last runs here took than predicted (page watching, snapshots, a busy machine)."""

    total: float
    per_iteration: float  # measured, before the correction
    overhead: float  # start-up and baselines, corrected
    correction: float  # 1.0 until a run has finished here
    busy: bool  # another job was running: this one waits for it, and the measurement is older
    pixel_exponent: float = PIXEL_EXPONENT  # time ~ pixels ** this, from two measurements where there are two


_measuring = threading.Lock()  # one measurement at a time: visitors arriving together wait for the first one
_corrections: deque = deque(maxlen=5)  # actual / predicted seconds of the last finished runs


MEASURE_AT_SIZE_SECONDS = 4.0  # three iterations at the working size itself cost less than this: measure them there


def estimate_run(preset: Preset, shape: tuple, *, fits: int = 1) -> Optional[Estimate]:
    """The expected run time on this device from a short measurement (cached per network and measured size).

    Measured at a reference size and scaled by the pixel count; a network that is quick at the working size is
    measured there too, since a thin net's fixed per-layer costs do not grow with the pixels (the noise-impedance
    net took 1.9x, not the scaling's 4.6x, from 128 to 256 px). None when no measurement is cached and a job is
    running: measuring then would compete with it and mislead.
    """
    h, w, c = shape
    size = reference_size(preset, h, w)
    busy = bool(get_registry().active_jobs())
    timing = _measured(preset, size, c, busy=busy)
    if timing is None:
        return None
    per_iteration = scale_time(timing.per_iteration, size, (h, w))
    exponent = PIXEL_EXPONENT
    pixels = (h * w) / (size[0] * size[1])  # the working size's pixels per measured pixel
    if size != (h, w) and 3 * per_iteration < MEASURE_AT_SIZE_SECONDS:
        direct = _measured(preset, (h, w), c, busy=busy)
        if direct is not None:
            ratio = max(direct.per_iteration, 1e-9) / max(timing.per_iteration, 1e-9)
            exponent = min(1.5, max(0.3, math.log(ratio, pixels)))  # for the smaller sizes offered
            timing, per_iteration, pixels = direct, direct.per_iteration, 1.0
    overhead = fits * timing.startup + timing.baselines * pixels
    correction = min(5.0, max(0.5, statistics.median(_corrections))) if _corrections else 1.0
    total = (fits * per_iteration * preset.fit.iterations + overhead) * correction
    return Estimate(total, per_iteration, overhead * correction, correction, busy, exponent)


def _measured(preset: Preset, size: tuple[int, int], channels: int, *, busy: bool):
    """The cached measurement of ``preset``'s network at ``size``, made now unless a job is running (then None)."""
    key = (repr(preset.net), repr(preset.input), preset.fit.precision, preset.task, *size, channels)
    cache = _timings()
    if key not in cache:
        if busy:
            return None
        with _measuring, st.spinner("Measuring the speed of this network on this machine…"):
            if key not in cache:  # measured meanwhile by another visitor
                cache[key] = measure_iteration(preset, *size, channels, device=device()[0])
    return cache[key]


def record_actual(job) -> None:
    """After a finished run: how its real duration compares with the estimate it was queued with."""
    predicted = job.info.get("estimate_seconds")
    if job.status == "done" and predicted and job.started and job.finished and not job.resumed:
        _corrections.append((job.finished - job.started) / predicted * job.info.get("estimate_correction", 1.0))


def sidebar(pages: dict) -> None:
    """Below the page list: the device, the queue length and a link to this browser's active job (kept live)."""
    dev, description = device()
    with st.sidebar:
        st.caption(f":material/memory: **Device:** {description}")
        if get_registry().active_for(owner()) is None:
            _queue_line()
        else:
            _live_job_link(pages)
        remember_owner()


def _queue_line() -> None:
    st.caption(f":material/queue: **Queue:** {len(get_registry().active_jobs())} job(s) waiting or running")


@st.fragment(run_every=config.poll_seconds())
def _live_job_link(pages: dict) -> None:
    """The queue and "Your … job", refreshed with the page's own progress (a full rerun only came with a click)."""
    job = get_registry().active_for(owner())
    if job is None:  # it finished: one full rerun draws the sidebar without polling
        st.rerun(scope="app")
    _queue_line()
    v = get_registry().view(job.id)
    state = (
        f"running · iteration {v.iteration}/{v.total}"
        if v.status == "running"
        else f"queued · {v.position} ahead"
        if v.position
        else "queued · next"
    )
    # the link's label is one line, cut off at the sidebar's width: the state goes on its own line under it
    st.page_link(
        pages[v.task],
        label=f"Your {PAGES[v.task][1].lower()} job",
        icon=":material/pending:",
        query_params={"job": v.id},
    )
    st.caption(state.capitalize())


@contextmanager
def through_entry_point():
    """The entry point runs the chosen page inside this (see ``run_through_entry_point``)."""
    _entry.active = True
    st.session_state[keys.FULL_RUNS] = st.session_state.get(keys.FULL_RUNS, 0) + 1
    try:
        yield
    finally:
        _entry.active = False


def run_through_entry_point() -> None:
    """Every page's first call. Streamlit runs a file of ``pages/`` by itself when a fresh server's very first visit
    names it (its pages-folder convention applies until the entry point has called ``st.navigation`` once); the page
    then runs the entry point instead, which draws the app's navigation, sidebar and URL handling, then this page."""
    if not getattr(_entry, "active", False):
        runpy.run_path(str(config.ROOT / "streamlit_app.py"), run_name="__main__")
        st.stop()
