"""Submitting a run: the time estimate, the Run button, and the summary of what a job will do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import numpy as np
import streamlit as st

from dip.core.tasks import fits_network
from ui import keys, state
from ui.service import config
from ui.service.jobs import JobRefused
from ui.service.runners import TaskSpec, fits_per_job
from ui.settings import Settings, preset_label
from ui.widgets import duration


def time_estimate(task: str, s: Settings, shape: tuple) -> Optional[state.Estimate]:
    """On a CPU: the expected run time (start-up, iterations, baselines, measured here), and a smaller working size
    if it is long. Returns the estimate, which the job keeps to compare with its real time."""
    dev, _ = state.device()
    if not dev.startswith("cpu"):
        return None
    h, w, c = shape
    est = state.estimate_run(s.preset, shape, fits=fits_per_job(task))
    if est is None:
        st.caption("The time estimate appears when the worker is idle (measuring now would slow the running job).")
        return None
    how = (
        f"{est.per_iteration:.2f} s per iteration at {w}x{h} px measured here, plus start-up"
        + (" and the classical baselines" if task != "impedance" else "")
        + (f", ×{est.correction:.2f} from how long the last runs here took" if est.correction != 1.0 else "")
    )
    busy = (
        " It waits for the job(s) ahead of it, and the machine is busy: expect it to take longer." if est.busy else ""
    )
    st.caption(f"Expected time on this CPU: ≈ {duration(est.total)} ({how}).{busy}")
    total, budget = est.total, config.cpu_budget_minutes() * 60
    side = max(h, w)
    smaller = [x for x in config.WORKING_SIZES if x < side and fits_network(h, w, s.preset, max_side=x)]
    if total <= budget or not smaller:
        return est
    estimate = lambda x: total * (x / side) ** (2 * est.pixel_exponent)  # time ~ pixels^e ~ side^2e
    within = [x for x in smaller if estimate(x) <= budget]
    offers = sorted({within[-1] if within else smaller[0], smaller[-1]}, reverse=True)
    st.caption("This will take a while on this CPU. A smaller working size is much faster:")
    for col, new in zip(st.columns(3), offers):
        col.button(
            f"Use {new} px (≈ {duration(estimate(new))})",
            key=keys.smaller_size(task, new),
            on_click=lambda n=new: st.session_state.update({keys.max_side(task): n}),
        )
    return est


def run_button(task: str, make_spec: Callable[[], TaskSpec], info: dict) -> None:
    """Run: queue the job unless this session already has one (then say where it is)."""
    if not st.button("Run", type="primary", key=keys.run(task), icon=":material/play_arrow:"):
        return
    busy = state.session_active_job()
    if busy is not None:
        where = "running" if busy.position == 0 else f"queued with {busy.position} job(s) ahead of it"
        st.warning(
            f"You already have a {busy.task} job {where} ({busy.id}). Cancel it or wait until it "
            "finishes before starting another one.",
            icon=":material/hourglass_top:",
        )
        return
    spec = make_spec()
    try:
        job = state.get_registry().submit(
            spec, task=task, owner=state.owner(), total=spec.total, info={**info, "public": spec.public}
        )
    except JobRefused as err:
        st.warning(str(err))
        return
    state.set_job_id(task, job.id)
    st.query_params["job"] = job.id


def run_area(task: str, s: Settings, info: dict, *, problem=None, image: Optional[np.ndarray] = None) -> None:
    """Time estimate (CPU), then Run. The job gets the problem (or, for impedance, the prepared image)."""
    shape = problem.shape if problem is not None else image.shape
    est = time_estimate(task, s, shape)
    info = {**info, "summary": summary(task, s, shape, info.get("source", "?"), blind=info.get("blind", False))}
    if est is not None:  # kept by the job: its real time corrects the next estimates
        info.update(estimate_seconds=est.total, estimate_correction=est.correction)

    def make_spec() -> TaskSpec:
        # A bundled sample image is nobody's private photo: its runs may be shown to every visitor.
        public = st.session_state.get(keys.source(task)) == "sample"
        return TaskSpec(
            task,
            s.preset,
            config.runs_dir(),
            info.get("source", "?"),
            problem=problem,
            image=image,
            device=state.device()[0],
            public=public,
            checkpoint_every=config.checkpoint_every(),
        )

    run_button(task, make_spec, info)


def summary(task: str, s: Settings, shape: tuple, source: str, *, blind: bool = False) -> str:
    """One line naming everything a run used, e.g. for a result shown after a reload."""
    p, (h, w) = s.preset, shape[:2]
    parts = [
        source + (" (blind)" if blind else ""),
        f"{w}x{h} px",
        f"{preset_label(task)(p.name)} ({p.name})",
        f"{p.fit.iterations} iterations",
        f"LR {p.fit.lr:g}",
        f"σ_p {p.fit.reg_noise_std:.4g}",
        f"{max(p.net.down)} channels",
        f"seed {p.fit.seed}",
    ]
    if task in ("denoise", "impedance") and not blind:
        parts.append(f"noise σ {p.sigma_255:g}")
    if task == "sr":
        parts.append(f"×{p.factor}")
    return " · ".join(parts)
