"""Process-wide resources (the job registry, the device) and per-session state (job ids, kept in the URL)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Optional

import streamlit as st

from dip.device import describe_device, pick_device
from dip.errors import DIPError
from dip.presets import Preset
from ui import config
from ui.jobs import JobRegistry, JobView
from ui.runners import (configure_torch, measure_iteration, reference_size, release_memory, run_job,
                        scale_time)
from ui.runs import load_view, run_folder

# key -> (page file, title, icon). The folder is not called pages/: Streamlit 1.67 treats an app with a pages/
# folder as a legacy multipage app on a fresh server's first run (its own page list, no entry point).
PAGES = {
    "home": ("app_pages/home.py", "Home", ":material/home:"),
    "impedance": ("app_pages/noise_impedance.py", "Noise impedance", ":material/show_chart:"),
    "denoise": ("app_pages/denoising.py", "Denoising", ":material/blur_off:"),
    "sr": ("app_pages/super_resolution.py", "Super-resolution", ":material/zoom_in:"),
    "inpaint": ("app_pages/inpainting.py", "Inpainting", ":material/format_paint:"),
    "runs": ("app_pages/runs.py", "Runs", ":material/history:"),
}
TASKS = ("impedance", "denoise", "sr", "inpaint")


def _release(registry: JobRegistry) -> None:
    registry.shutdown(wait=False)


@st.cache_resource(show_spinner=False, on_release=_release)
def get_registry() -> JobRegistry:
    """The one job registry of this server process, shared by every session."""
    return JobRegistry(run_job, max_queue=config.max_queue(), max_snapshots=config.MAX_SNAPSHOTS,
                       initializer=configure_torch, after_job=release_memory)


@st.cache_resource(show_spinner=False)
def device() -> tuple[str, str]:
    """(torch device string, human-readable description) of the device jobs run on."""
    configure_torch()  # before any torch work in this process, so the description shows the thread count used
    try:
        dev = pick_device(config.device_name())
    except DIPError:
        dev = pick_device("auto")
    return str(dev), describe_device(dev)


@st.cache_resource(show_spinner=False)
def _timings() -> dict:
    return {}


def owner() -> str:
    """A token for this browser session (adopted from a job found through the URL)."""
    return st.session_state.setdefault("owner", secrets.token_hex(8))


def job_id(task: str) -> Optional[str]:
    return st.session_state.get(f"job.{task}")


def set_job_id(task: str, value: Optional[str]) -> None:
    st.session_state[f"job.{task}"] = value


def view(job: Optional[str]) -> Optional[JobView]:
    """A live job from the registry, else a finished run read from disk, else None."""
    if not job:
        return None
    live = get_registry().view(job)
    if live is not None:
        return live
    folder = run_folder(config.runs_dir(), job)
    return _load_run(str(folder), folder.stat().st_mtime) if folder else None


@st.cache_data(show_spinner=False, max_entries=8)
def _load_run(folder: str, mtime: float) -> JobView:
    return load_view(Path(folder))


def session_active_job() -> Optional[JobView]:
    """This session's queued or running job, whichever page started it."""
    job = get_registry().active_for(owner())
    return get_registry().view(job.id) if job else None


def sync_url(task: Optional[str]) -> None:
    """Keep ``?job=<id>`` in the URL for the current page's job; a new session adopts the job in its URL.

    Page switches drop query parameters, so this runs on every script run from the entry point.
    """
    wanted = st.query_params.get("job")
    if not st.session_state.get("url_checked"):
        st.session_state["url_checked"] = True
        if wanted and _adopt(wanted, task):
            return
    current = job_id(task) if task in TASKS else None
    if current and st.query_params.get("job") != current:
        st.query_params["job"] = current
    elif not current and "job" in st.query_params:
        del st.query_params["job"]


def _adopt(wanted: str, task: Optional[str]) -> bool:
    """Attach the job named in the URL to this session; True when it switched to the job's page."""
    live = get_registry().get(wanted)
    saved = None if live else view(wanted)
    found = live.task if live else (saved.task if saved else None)
    if found not in TASKS:
        st.toast(f"Job {wanted} is not known here (it may never have finished).", icon=":material/error:")
        return False
    set_job_id(found, wanted)
    if live is not None:
        st.session_state["owner"] = live.owner
    if found != task:
        st.switch_page(PAGES[found][0], query_params={"job": wanted})
        return True
    return False


def estimate_seconds(preset: Preset, shape: tuple) -> Optional[float]:
    """Seconds per iteration at ``shape`` on this device, from a short measurement cached per network.

    None while a job runs: measuring then would compete with it and mislead.
    """
    h, w, c = shape
    rh, rw = reference_size(preset, h, w)
    key = (repr(preset.net), repr(preset.input), preset.fit.precision, rh, rw, c)
    cache = _timings()
    if key not in cache:
        if get_registry().active_jobs():
            return None
        with st.spinner("Measuring the speed of this network on this machine…"):
            cache[key] = measure_iteration(preset, rh, rw, c, device=device()[0])
    return scale_time(cache[key], (rh, rw), (h, w))


def sidebar(pages: dict) -> None:
    """Below the page list: the device, the queue length and a link to this session's active job."""
    dev, description = device()
    with st.sidebar:
        st.caption(f":material/memory: **Device:** {description}")
        active = get_registry().active_jobs()
        st.caption(f":material/queue: **Queue:** {len(active)} job(s) waiting or running")
        mine = get_registry().active_for(owner())
        if mine is not None:
            st.page_link(pages[mine.task], label=f"Your {PAGES[mine.task][1].lower()} job: {mine.status}",
                         icon=":material/pending:", query_params={"job": mine.id})
