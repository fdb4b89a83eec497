"""Output panels: job progress (polled while the job runs), metrics, loss chart, snapshots, comparison, downloads.

Every panel renders a JobView, so a live job and a run read back from disk look the same.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np
import streamlit as st

from dip.core.fit import FitConfig
from dip.core.impedance import target_slug
from dip.core.records import RunMetrics
from dip.core.registry import TASKS
from dip.lab.report import baseline_rows, report_zip
from ui import keys, state
from ui.service import config
from ui.service.access import share_token
from ui.service.charts import impedance_figure, loss_figure
from ui.service.imaging import preview, wipe
from ui.service.jobs import JobView
from ui.service.runs import TASK_TITLES, RunRow, run_label, task_title, when
from ui.service.text import plain
from ui.widgets import duration, show_images


def _fits_several(task: Optional[str]) -> bool:
    """A task that fits several targets per job (noise impedance) gets the panel that shows them side by side."""
    return task in TASKS and TASKS[task].fits > 1


def job_panel(task: str, render: Optional[Callable[[JobView], None]] = None) -> None:
    """This session's job of ``task``: polled every DIP_POLL_SECONDS while queued or running."""
    render = render or (render_impedance if _fits_several(task) else render_task)
    job = state.job_id(task)
    v = state.view(job)
    if job and v is None:
        st.info(f"Job {job} is no longer available (the server may have restarted before it finished).")
        state.set_job_id(task, None)
        return
    if v is None:
        return
    st.divider()
    if not v.active:
        render(v)
        return

    @st.fragment(run_every=config.poll_seconds())
    def live():
        current = state.view(job)
        if current is None or not current.active:
            # The whole page draws the final state once (result, downloads) and polling stops. Drawing it here
            # too would show it twice while that rerun runs (the fragment's copy stays until the page is done).
            st.rerun()
        render(current)

    live()


def status(v: JobView) -> None:
    """Progress bar (iteration, iterations per second, ETA) or the final status, and Cancel for the job's owner."""
    m = v.metrics or NO_METRICS
    mine = state.is_mine(v)
    if v.status == "queued":
        ahead = f"{v.position} job(s) ahead" if v.position else "starts next"
        st.progress(
            0.0,
            text=f"Queued · {ahead}" + (" · continues from its checkpoint after a server restart" if v.resumed else ""),
        )
    elif v.status == "running":
        rate, eta = v.iterations_per_second, v.eta_seconds
        text = f"Running · iteration {v.iteration}/{v.total}"
        if v.note:
            text += f" · {v.note}…"
        elif rate:
            text += f" · {rate:.2f} it/s · " + (f"ETA {duration(eta)}" if eta is not None else "ETA: measuring…")
        if v.resumed:
            text += " · resumed after a server restart"
        st.progress(min(1.0, v.iteration / max(1, v.total)), text=text)
    elif v.status == "done":
        st.success(
            f"Done · {v.iteration} iterations in {duration(m.seconds or 0)} "
            f"on {plain(m.device or '?')} · saved as run {v.id}",
            icon=":material/check_circle:",
        )
    elif v.status == "cancelled":
        reason = m.stop_reason or v.stop_reason
        st.warning(
            ("Stopped" if reason else "Cancelled")
            + f" at iteration {v.iteration} of {v.total}"
            + (f": {plain(reason, limit=200)}" if reason else "")
            + f"; the result so far is saved as run {v.id}."
        )
    else:
        st.error(f"The job failed: {plain(v.error or 'unknown error', limit=400)}")
    if not mine:
        st.caption(":material/visibility: You are viewing another browser's job, read-only.")
    elif v.active:
        st.button(
            "Cancel",
            key=keys.cancel(v.id),
            icon=":material/stop:",
            on_click=state.get_registry().cancel,
            args=(v.id, state.owner()),
        )
    else:
        share_link(v)


def share_link(v: JobView) -> None:
    """The owner of a finished run can make a read-only link to it (runs are private by default)."""
    folder = v.run_dir
    if not folder or v.info.get("public") or config.public_runs():
        return
    if st.button(
        "Make a read-only share link",
        key=keys.share(v.id),
        icon=":material/share:",
        help="Anyone with the link can see this run (not change it). Without one, only this browser can.",
    ):
        st.session_state[keys.share_token(v.id)] = share_token(Path(folder))
    token = st.session_state.get(keys.share_token(v.id))
    if token:
        st.caption("Read-only link to this run (copy it):")
        st.code(f"{_app_url()}/runs?share={token}", language=None)


def _app_url() -> str:
    """The app's address as the browser sees it (without the page and query)."""
    url = str(getattr(st.context, "url", "") or "")
    for marker in ("?", "#"):
        url = url.split(marker)[0]
    return url.rsplit("/", 1)[0] if url.count("/") > 2 else url.rstrip("/")


NO_METRICS = RunMetrics()  # what a job that has no metrics (yet) reads: every value None

BLIND_LABEL = "Best (no ground truth)"
BLIND_HELP = (
    "The iterate a running-variance detector (ES-WMV) picks without ground truth: where the outputs "
    "changed least over a window of 100 iterations. What a blind run can rely on."
)


def _fmt(value: Optional[float], infinite: str = "identical") -> str:
    """A PSNR in dB; "–" when there is none, ``infinite`` when the images are identical (e.g. σ = 0: "no noise")."""
    if value is None:
        return "–"
    return f"{value:.2f} dB" if math.isfinite(value) else infinite


def _delta(value: Optional[float], base: Optional[float]) -> Optional[str]:
    """The gain over the degraded input, or None (no delta shown) when either PSNR is missing or infinite."""
    if value is None or base is None or not (math.isfinite(value) and math.isfinite(base)):
        return None
    return f"{value - base:+.2f} dB"


def psnr_metrics(v: JobView) -> None:
    """PSNR of the degraded input, the output, its EMA and the best iterate (or, blind, against the observation)."""
    finished = v.metrics is not None  # else the PSNRs come from the history so far
    m = v.metrics or NO_METRICS
    recs = v.history.get("", [])
    last = recs[-1] if recs else None
    blind = v.info.get("blind") or m.blind
    cols = st.columns(4 if blind else 5)
    if blind:
        cols[0].metric("Ground truth", "none (blind)")
        cols[1].metric(
            "PSNR vs observation",
            _fmt(last.psnr_observed if last else None),
            help="How closely the output, passed through the degradation, matches your image.",
        )
        blind_it = m.blind_iteration
        cols[2].metric(BLIND_LABEL, f"iteration {blind_it}" if blind_it else "–", help=BLIND_HELP)
        cols[3].metric("Iterations", f"{v.iteration}/{v.total}")
        _provisional_note(v.metrics)
        return
    degraded = v.info.get("psnr_degraded", m.psnr_observed)
    output = m.psnr_final if finished else (last.psnr_true if last else None)
    ema = m.psnr_ema if finished else (last.psnr_ema_true if last else None)
    best, best_it = (m.psnr_best, m.best_iteration) if finished else _best(recs)
    if v.task == "sr" or m.task == "sr":  # the low-resolution input, upsampled bicubically to be compared
        cols[0].metric(
            "PSNR bicubic input",
            _fmt(degraded),
            help="The low-resolution input upsampled by bicubic interpolation, against the ground truth.",
        )
    else:
        cols[0].metric(
            "PSNR degraded input",
            _fmt(degraded, "no noise"),
            help="No noise was added (σ = 0): the input is the ground truth."
            if degraded is not None and not math.isfinite(degraded)
            else None,
        )
    cols[1].metric("PSNR output", _fmt(output), _delta(output, degraded))
    if m.psnr_final_known_kept is not None:  # inpainting: what the baselines are compared with
        cols[1].caption(f"{_fmt(m.psnr_final_known_kept)} with the observed pixels kept")
    cols[2].metric("PSNR EMA output", _fmt(ema), _delta(ema, degraded))
    cols[3].metric(
        "PSNR best iterate",
        _fmt(best),
        _delta(best, degraded),
        help=f"Reached at iteration {best_it}." if best_it else None,
    )
    if best_it:
        cols[3].caption(f"at iteration {best_it}")
    blind_psnr, blind_it = m.psnr_blind, m.blind_iteration
    cols[4].metric(BLIND_LABEL, _fmt(blind_psnr), _delta(blind_psnr, degraded), help=BLIND_HELP)
    if blind_it:
        cols[4].caption(
            f"at iteration {blind_it}"
            + (f" ({blind_psnr - best:+.2f} dB vs the oracle)" if blind_psnr is not None and best is not None else "")
        )
    _provisional_note(v.metrics)


def _provisional_note(m: Optional[RunMetrics]) -> None:
    """Say when the blind pick was never confirmed (the detector had not seen the fit turn to noise yet), or why a
    finished run has none at all."""
    if m is None:
        return
    if m.blind_iteration is None and m.iterations and m.early_stop != "none":  # absent: the default "wmv"
        window = m.es_window or FitConfig.es_window
        st.caption(
            f"{BLIND_LABEL}: no pick. The detector compares the outputs over windows of {window} iterations "
            f"and this run had {m.iterations}, so it never had a full window; run at least {window + 1} "
            "iterations to get one."
        )
    if m.blind_confirmed is False:
        st.caption(
            f"{BLIND_LABEL} is provisional: the variance did not fall below its value at iteration "
            f"{m.blind_iteration} again, but the run ended before the detector's patience "
            f"({m.es_patience} iterations) ran out, so the fit may still have been improving; "
            "the output may be the better choice."
        )


def _best(recs: list) -> tuple[Optional[float], Optional[int]]:
    scored = [r for r in recs if r.psnr_true is not None]
    if not scored:
        return None, None
    top = max(scored, key=lambda r: r.psnr_true)
    return top.psnr_true, top.iteration


def snapshot_picker(snaps: list, key: str, *, live: bool) -> tuple[int, np.ndarray]:
    """A slider over stored snapshots. While the job runs it follows the latest one until "Follow" is switched off;
    a finished job's slider is free from the start (there is nothing new to follow)."""
    its = [i for i, _ in snaps]
    follow_key, slider_key = keys.follow(key), keys.snapshot(key)
    follow = False
    if live:
        st.session_state.setdefault(follow_key, True)
        follow = st.toggle("Follow the latest snapshot", key=follow_key, help="Switch off to move the slider.")
    if follow or st.session_state.get(slider_key) not in its:
        st.session_state[slider_key] = its[-1]
    if len(its) > 1:
        chosen = st.select_slider("Snapshot (iteration)", its, key=slider_key, disabled=follow)
    else:
        chosen = its[0]
        st.caption(f"One snapshot {'so far' if live else 'was stored'}, at iteration {chosen}.")
    return chosen, dict(snaps)[chosen]


def comparison(v: JobView) -> None:
    """Output picker (snapshot / final / EMA / best), degraded | output | ground truth, and a wipe slider."""
    images = v.images
    snaps = v.snapshots.get("", [])
    choices = {}
    if not v.active:
        choices.update(
            {
                "result": "Final output",
                "result_known_kept": "Final, observed pixels kept",
                "result_ema": "EMA output",
                "best": "Best iterate",
                "blind": BLIND_LABEL,
            }
        )
        choices = {k: label for k, label in choices.items() if k in images}
    if snaps:
        choices["snapshot"] = "Snapshot"
    if not choices:
        st.caption("The first snapshot appears after a few iterations.")
        return
    phase = "live" if v.active else "final"  # a finished job opens on its final output
    shown = st.radio(
        "Output shown", list(choices), format_func=choices.get, horizontal=True, key=keys.shown(v.id, phase)
    )
    if shown == "snapshot":
        it, output = snapshot_picker(snaps, keys.snapshots(v.id), live=v.active)
        label = f"Output at iteration {it}"
    else:
        output, label = images[shown], choices[shown]
    truth, degraded = images.get("ground_truth"), images.get("observed")
    if "bicubic" in images:
        sr_row(v, images, output, label)
    else:
        show_images([("Degraded input", degraded), (label, output), ("Ground truth", truth)])
    left = truth if truth is not None else degraded
    if left is not None:
        name = "ground truth" if truth is not None else "degraded input"
        pos = st.slider(f"Wipe: {name} (left) · output (right)", 0, 100, 50, key=keys.wipe(v.id))
        image = wipe(preview(left), output, pos)
        st.image(image, caption=f"{name} | {label.lower()}", width=int(min(640, max(384, image.shape[1]))))


def sr_row(v: JobView, images: dict, output: np.ndarray, label: str) -> None:
    """Super-resolution: bicubic | nearest | Deep Image Prior | ground truth, with PSNRs."""
    m = v.metrics or NO_METRICS
    base = v.baselines
    psnr_of = {
        "Final output": m.psnr_final,
        "EMA output": m.psnr_ema,
        "Best iterate": m.psnr_best,
        BLIND_LABEL: m.psnr_blind,
    }
    value = psnr_of.get(label)
    show_images(
        [
            (f"Bicubic · {_fmt(base.get('bicubic', {}).get('psnr'))}", images["bicubic"]),
            (f"Nearest · {_fmt(base.get('nearest', {}).get('psnr'))}", images["nearest"]),
            (f"Deep Image Prior · {label.lower()}" + (f" · {_fmt(value)}" if value is not None else ""), output),
            ("Ground truth", images.get("ground_truth")),
        ]
    )


def baselines_table(v: JobView) -> None:
    """Deep Image Prior beside the engine's classical methods (PSNR and time), once the run has finished."""
    base = v.baselines
    m = v.metrics
    if v.active or not base or m is None:
        return
    blind = m.psnr_final is None
    columns = ("method", "PSNR (dB)", "seconds", "settings")
    rows = [
        {k: x for k, x in zip(columns, r) if not (blind and k == "PSNR (dB)")}  # no PSNR without ground truth
        for r in baseline_rows(list(base.values()), m.to_dict())
    ]
    st.markdown("**Compared with classical methods**" + (" (no ground truth: no PSNR)" if blind else ""))
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        key=keys.baselines(v.id),
        column_config={
            "PSNR (dB)": st.column_config.NumberColumn(format="%.2f"),
            "seconds": st.column_config.NumberColumn(format="%.2f"),
        },
    )


def loss_chart(v: JobView) -> None:
    recs = v.history.get("", [])
    if recs:
        st.plotly_chart(loss_figure(recs), key=keys.loss_chart(v.id), width="stretch")


def downloads(v: JobView) -> None:
    folder = v.run_dir
    if v.active or not folder:
        return
    targets = v.metrics.targets if v.task == "impedance" and v.metrics is not None else None
    if targets is not None:  # noise impedance: each target's final fit, named by its target
        files = [
            (f"Fit: {plain(name, limit=40)} PNG", f"{target_slug(name)}/result.png", "image/png") for name in targets
        ]
    else:
        files = [("Result PNG", "result.png", "image/png"), ("EMA PNG", "result_ema.png", "image/png")]
    files.append(("History CSV", "history.csv", "text/csv"))
    if (Path(folder) / "result_known_kept.png").is_file():  # inpainting: only the holes filled in
        files.insert(1, ("Holes filled PNG", "result_known_kept.png", "image/png"))
    cols = st.columns(len(files) + 1)
    for col, (label, name, mime) in zip(cols, files):
        path = Path(folder) / name
        if path.is_file() and ".." not in name:  # a target's name comes from metrics.json
            col.download_button(
                label,
                path.read_bytes(),
                file_name=f"{v.id}_{name.replace('/', '_')}",
                mime=mime,
                on_click="ignore",
                key=keys.download(v.id, name),
                icon=":material/download:",
            )
    if (Path(folder) / "metrics.json").is_file():  # the zip is built only when clicked
        cols[-1].download_button(
            "Report (ZIP)",
            lambda: report_zip(folder),
            file_name=f"{v.id}_report.zip",
            mime="application/zip",
            on_click="ignore",
            key=keys.download(v.id, "zip"),
            icon=":material/folder_zip:",
            help="Summary, curves, images, settings and the "
            "classical baselines of this run" + (" (or each target and its fit)." if targets is not None else "."),
        )


def settings_line(v: JobView) -> None:
    """What this job ran with (the widgets above may show other settings after a reload)."""
    if v.info.get("summary"):
        st.caption(f"This run: {plain(v.info['summary'], limit=400)}")


def render_task(v: JobView) -> None:
    """Denoising, super-resolution and inpainting: status, PSNRs, loss curve, images, downloads."""
    status(v)
    settings_line(v)
    if v.status == "queued" or (v.status == "error" and not v.history):
        return
    psnr_metrics(v)
    loss_chart(v)
    comparison(v)
    baselines_table(v)
    downloads(v)


def render_impedance(v: JobView) -> None:
    """Noise impedance: the four loss curves on a log-x axis (paper Fig. 2) and snapshots per target."""
    status(v)
    settings_line(v)
    if v.status == "running" and v.history:
        st.caption(f"Fitting target {len(v.history)} of 4: {list(v.history)[-1]}")
    if not v.history:
        return
    st.plotly_chart(impedance_figure(v.history), key=keys.impedance_chart(v.id), width="stretch")
    fitted = {name: recs[-1] for name, recs in v.history.items() if recs}
    for col, (name, last) in zip(st.columns(4), fitted.items()):
        col.metric(
            f"PSNR of the fit: {name}",
            _fmt(last.psnr_true),
            help=f"After {last.iteration} iterations; higher means the network reproduced this target more closely.",
        )
    st.dataframe(
        [
            {
                "target": name,
                "iterations": last.iteration,
                "final loss": last.loss,
                "lowest loss": min(r.loss for r in v.history[name]),
            }
            for name, last in fitted.items()
        ],
        hide_index=True,
        width="stretch",
    )
    targets = [t for t in v.history if v.snapshots.get(t)]
    if targets:
        target = st.radio("Snapshots of target", targets, horizontal=True, key=keys.target(v.id))
        it, snap = snapshot_picker(v.snapshots[target], keys.snapshots(v.id, target), live=v.active)
        images = v.images
        show_images(
            [
                (f"Target: {target}", images.get(f"target:{target}")),
                (f"Fit at iteration {it}", snap),
                ("Final fit", images.get(f"result:{target}")),
            ]
        )
    downloads(v)


def runs_browser() -> None:
    """A table of saved runs (newest first) and one run opened in full; ``?run=<id>`` opens that run.

    A run folder that cannot be read never breaks the page: the table leaves it out with a note, opening it (from
    the URL, or a damage found only then) shows why, and without ``?run=`` the newest run that opens is shown. An
    id in the URL that names no readable run gets a message and opens nothing else. Ids, names and reasons from
    the URL or the folders go through ``plain`` (they render as text, never as Markdown).
    """
    token = st.query_params.get("share")
    shared = state.shared_run(token) if token else None
    if token and shared is None:
        st.warning(
            "This share link names no run (it may have been mistyped, or the run was removed).",
            icon=":material/link_off:",
        )
    listing = state.visible_runs(also=shared)
    rows, skipped = listing.rows, dict(listing.skipped)
    wanted = shared or st.query_params.get("run")
    if not config.public_runs():
        st.caption("Listed: your own runs, runs of the sample images, and runs shared with you by link.")
    if not rows:
        _skipped_note(listing.skipped)
        if wanted:
            _unavailable(wanted, skipped)
        st.info("No runs yet: start one from an experiment page.")
        return
    st.dataframe(
        [_table_row(r) for r in rows], hide_index=True, width="stretch", key=keys.RUNS_TABLE, column_config=RUN_COLUMNS
    )
    _skipped_note(listing.skipped)
    ids = [r.id for r in rows]
    labels = _labels(rows)
    if st.session_state.get(keys.RUNS_PICK) not in ids:  # this session's first look, or its pick is gone
        if wanted in ids:
            st.session_state[keys.RUNS_PICK] = wanted
        elif wanted:  # a shared link to a run that is not here: say so, and show no other run in its place
            _unavailable(wanted, skipped)
            st.session_state[keys.RUNS_PICK] = None
        else:
            st.session_state[keys.RUNS_PICK] = _newest_readable(ids)
    run_id = st.selectbox(
        "Open a run",
        ids,
        key=keys.RUNS_PICK,
        index=None,
        placeholder="Choose a run",
        format_func=lambda i: labels.get(i, i),
    )
    if run_id is None:
        return
    st.query_params["run"] = run_id
    v, error = _open_run(run_id, share=token if run_id == shared else None)
    if v is None:
        st.error(plain(error, limit=400), icon=":material/error:")
        return
    title = TASK_TITLES.get(v.task) or plain(v.task or "?")
    st.subheader(f"{title} · {plain(v.info.get('source') or '')} · {plain(v.info.get('preset') or '')}")
    notes = v.info.get("notes") or []
    if notes:
        st.warning(plain(" ".join(notes), limit=600), icon=":material/warning:")
    (render_impedance if _fits_several(v.task) else render_task)(v)
    folder = v.run_dir
    if folder and (Path(folder) / "config.json").is_file():
        with st.expander("Configuration (config.json)"):
            try:
                st.code((Path(folder) / "config.json").read_text(), language="json")
            except (OSError, UnicodeDecodeError):
                st.caption("config.json could not be read.")


RUN_COLUMNS = {
    "started": st.column_config.TextColumn("started", width=95),
    "image": st.column_config.TextColumn("image", width=130),
    "task": st.column_config.TextColumn("task", width=115),
    "setting": st.column_config.TextColumn(
        "setting",
        width=150,
        help="σ of the added noise (denoising), the "
        "upscaling factor (super-resolution), the mask and the share of pixels "
        "kept (inpainting)",
    ),
    "PSNR (dB)": st.column_config.TextColumn(
        "PSNR (dB)",
        width=75,
        alignment="right",
        help="The final output against the ground truth (noise impedance: "
        "the fit of the image); – without ground truth",
    ),
    "size": st.column_config.TextColumn("size", width=80, help="Working size in pixels"),
    "iterations": st.column_config.TextColumn("iterations", width=95),
    "status": st.column_config.TextColumn("status", width=75),
    "run": st.column_config.TextColumn("run", width=220, help="The run's id, as in the link ?run=<id>"),
}
"""The Runs table: what tells runs apart first, so that the PSNR stays in view on a laptop screen."""


def _text(value: object) -> str:
    """A table cell: "–" for a missing value (a dataframe would print "None")."""
    return "–" if value is None or value == "" else str(value)


def _table_row(r: RunRow) -> dict:
    """One saved run as a row of the Runs table (all text, "–" where the run records nothing)."""
    m = r.metrics
    psnr, shape = m.psnr_final, m.shape
    size = f"{shape[1]}x{shape[0]}" if shape is not None and len(shape) >= 2 else None
    done, planned = m.iterations, r.planned
    if m.targets is not None:  # noise impedance: the plan per target; what each target ran
        runs = sorted({t.get("iterations") for t in m.targets.values()} - {None})
        done = f"{runs[-1]} ×{len(m.targets)}" if runs else None
    elif done is not None and planned and planned != done:
        done = f"{done} of {planned}"
    return {
        "started": when(r.started),
        "image": _text(r.source),
        "task": task_title(m),
        "setting": _text(r.setting),
        "PSNR (dB)": f"{psnr:.2f}" if psnr is not None and math.isfinite(psnr) else "–",
        "size": _text(size),
        "iterations": _text(done),
        "status": m.run_status,
        "run": r.id,
    }


def _labels(rows: list[RunRow]) -> dict[str, str]:
    """Readable names of the listed runs for the "Open a run" select, "image · task · setting · time"; two runs
    that would read the same get the end of their id (or the whole id)."""
    labels = {r.id: run_label(r) for r in rows}
    for tail in (lambda i: i.rsplit("-", 1)[-1], lambda i: i):
        twice = {label for label, n in Counter(labels.values()).items() if n > 1}
        labels = {i: f"{label} · {tail(i)}" if label in twice else label for i, label in labels.items()}
    return labels


NEWEST_TRIED = 5  # runs the default view tries, newest first, before it gives up


def _open_run(run_id: str, share: Optional[str] = None) -> tuple[Optional[JobView], Optional[str]]:
    """(view, None), or (None, why the run cannot be opened: the specific message of a damaged folder)."""
    from dip.core.errors import DIPError

    try:
        v = state.view(run_id, share=share)
    except DIPError as err:  # RunFolderError: names the file and what is wrong, never a server path
        return None, str(err)
    except OSError:  # the folder went away between the listing and now (e.g. retention removed it)
        return None, f"Run {run_id} could not be read: its folder is gone."
    return (v, None) if v is not None else (None, f"There is no saved run you can open named {run_id}.")


def _newest_readable(ids: list[str]) -> Optional[str]:
    """The first of ``ids`` (newest first) that opens; a warning names the newer ones that did not."""
    failed = []
    for run_id in ids[:NEWEST_TRIED]:
        v, error = _open_run(run_id)
        if v is not None:
            if failed:
                st.warning(
                    plain(f"{' '.join(failed)} Showing {run_id}, the newest run that opens.", limit=800),
                    icon=":material/warning:",
                )
            return run_id
        failed.append(error)
    st.warning(plain(f"{' '.join(failed)} Choose a run below.", limit=800), icon=":material/warning:")
    return None


def _unavailable(run_id: str, skipped: dict[str, str]) -> None:
    """Why the run the URL names is not shown: its folder's damage, or that there is no such run."""
    if run_id in skipped:
        st.error(plain(f"Run {run_id} could not be read: {skipped[run_id]}", limit=400), icon=":material/error:")
    else:
        st.warning(
            f"There is no saved run you can open named {plain(run_id)} (the link may be wrong, the run may "
            "have been removed, or it belongs to another browser: its owner can make a share link).",
            icon=":material/search_off:",
        )


def _skipped_note(skipped: list[tuple[str, str]], shown: int = 5) -> None:
    """One caption naming the run folders the listing left out, and why."""
    if not skipped:
        return
    n = len(skipped)
    head = (
        "1 run folder could not be read and is not listed"
        if n == 1
        else f"{n} run folders could not be read and are not listed"
    )
    items = "; ".join(f"{run_id} ({reason.rstrip('.')})" for run_id, reason in skipped[:shown])
    st.caption(plain(f"{head}: {items}{'; …' if n > shown else ''}", limit=1000))
