"""What a job does in the worker thread: run the engine, report progress, write ``runs/<id>/``.

No Streamlit here. Run folders use ``dip.runio`` so the app and the command line write the same layout;
an impedance run is written by ``dip.impedance.write_impedance_run`` (one sub-folder per target), and the
classical baselines of a finished run by ``dip.runio.write_baselines``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dip.baselines import denoise_baselines, inpaint_baselines, sr_baselines
from dip.device import available_cpus
from dip.errors import DIPError
from dip.fit import Snapshot, fit
from dip.impedance import run_impedance, target_slug, write_impedance_run
from dip.models import make_input_code
from dip.operators import Identity
from dip.presets import Preset
from dip.runio import preset_as_dict, write_baselines, write_json, write_run, write_snapshots
from dip.tasks import Problem, build_net, solve, summarize
from ui.config import SNAPSHOT_SIDE
from ui.imaging import preview
from ui.jobs import Job

log = logging.getLogger(__name__)


@dataclass
class TaskSpec:
    """Everything a job needs. ``problem`` for denoise/sr/inpaint; ``image`` (prepared) for impedance."""

    task: str
    preset: Preset
    runs_dir: Path
    source: str
    problem: Optional[Problem] = None
    image: Optional[np.ndarray] = None
    device: Optional[str] = None

    @property
    def total(self) -> int:
        return self.preset.fit.iterations * (4 if self.task == "impedance" else 1)


def configure_torch() -> None:
    """Worker start: one thread per CPU this process may use (DIP_THREADS overrides).

    The web server shares these CPUs, but its reruns are short: on 2 cores, with the page open and polling, a
    256 px lab denoising job took 3.14 s per iteration with 2 threads and 4.85 s with 1 (scripts/app_threads.py).
    """
    threads = int(os.environ.get("DIP_THREADS") or available_cpus())
    torch.set_num_threads(threads)


def release_memory() -> None:
    """After each job: hand cached GPU memory back so the next job starts clean."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_job(job: Job) -> dict:
    """The registry's runner: fit, compare with classical baselines, write ``runs/<id>/``; returns the outcome."""
    spec: TaskSpec = job.spec
    folder = Path(spec.runs_dir) / job.id
    try:
        try:
            if spec.task == "impedance":
                return _run_impedance(job, spec, folder)
            return _run_task(job, spec, folder)
        except torch.cuda.OutOfMemoryError:
            raise DIPError("the GPU ran out of memory; choose a smaller working size or fewer channels.") from None
    except Exception as err:
        _write_error(folder, spec, job, err)
        raise


def _snapshot_writer(job: Job, folder: Path, series: str = ""):
    """Write each snapshot at full size to ``folder/snapshots`` and keep a small preview in the job."""
    def on_snapshot(snap: Snapshot) -> None:
        write_snapshots([snap], folder / "snapshots")
        job.add_snapshot(snap.iteration, preview(snap.image, SNAPSHOT_SIDE), series)
    return on_snapshot


def _base_metrics(job: Job, spec: TaskSpec) -> dict:
    return {"job_id": job.id, "source": spec.source, "created": time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(job.created))}


def classical_baselines(preset: Preset, problem: Problem) -> list:
    """The engine's classical methods for this problem (NLM/TV/wavelet, upsamplers, biharmonic)."""
    truth = problem.x_true
    if problem.task == "denoise":
        return denoise_baselines(problem.y, None if truth is None else preset.sigma_255, x_true=truth)
    if problem.task == "sr":
        return sr_baselines(problem.y, preset.factor, problem.shape, x_true=truth)
    if problem.task == "inpaint":
        return inpaint_baselines(problem.y, problem.mask, x_true=truth)
    return []


def _run_task(job: Job, spec: TaskSpec, folder: Path) -> dict:
    preset, problem = spec.preset, spec.problem
    result = solve(preset, problem, device=spec.device, on_step=job.add_step,
                   on_snapshot=_snapshot_writer(job, folder), should_stop=job.should_stop)
    metrics = {**_base_metrics(job, spec), **summarize(preset, problem, result),
               "blind": problem.x_true is None, "status": "cancelled" if result.cancelled else "done"}
    write_run(folder, metrics=metrics, config=preset_as_dict(preset), result=result, degraded=problem.degraded,
              x_true=problem.x_true, mask=problem.mask)
    images = {"observed": problem.degraded, "result": result.output, "result_ema": result.ema,
              "ground_truth": problem.x_true, "best": result.best, "blind": result.blind,
              "result_known_kept": problem.holes_filled(result.output)}
    baselines = []
    if not result.cancelled:
        job.set_note("comparing with classical methods")
        try:
            baselines = classical_baselines(preset, problem)
            write_baselines(folder, baselines)
        except Exception:  # a failing baseline must not lose the fit, which is already on disk
            log.exception("baselines of job %s failed", job.id)
            baselines = []
    images.update({b.name: b.image for b in baselines})
    return {"metrics": metrics, "run_dir": str(folder), "cancelled": result.cancelled,
            "baselines": [b.as_record() for b in baselines],
            "images": {k: preview(v) for k, v in images.items() if v is not None}}


def _run_impedance(job: Job, spec: TaskSpec, folder: Path) -> dict:
    preset, x = spec.preset, spec.image
    writers = {}

    def on_snapshot(name: str, snap: Snapshot) -> None:
        writers.setdefault(name, _snapshot_writer(job, folder / target_slug(name), name))(snap)

    res = run_impedance(preset, x, device=spec.device, on_step=lambda name, rec: job.add_step(rec, name),
                        on_snapshot=on_snapshot, should_stop=job.should_stop)
    cancelled = any(r.cancelled for r in res.results.values()) or len(res.results) < len(res.targets)
    # Snapshots are already on disk (written as they came), so none are passed here.
    metrics = write_impedance_run(folder, preset, res, extra={
        **_base_metrics(job, spec), "status": "cancelled" if cancelled else "done"})
    images = {}
    for name, r in res.results.items():
        images[f"target:{name}"], images[f"result:{name}"] = preview(res.targets[name]), preview(r.output)
    if "image" in res.results:
        images["result"], images["result_ema"] = preview(res.results["image"].output), preview(
            res.results["image"].ema)
    return {"metrics": metrics, "run_dir": str(folder), "cancelled": cancelled, "images": images}


def _write_error(folder: Path, spec: TaskSpec, job: Job, err: Exception) -> None:
    """A failed job still leaves a record on the Runs page."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "metrics.json", {**_base_metrics(job, spec), "task": spec.task,
                                             "preset": spec.preset.name, "status": "error",
                                             "error": f"{type(err).__name__}: {err}"})
        write_json(folder / "config.json", preset_as_dict(spec.preset))
    except OSError:
        pass


def reference_size(preset: Preset, height: int, width: int, *, side: int = 128) -> tuple[int, int]:
    """The size a speed measurement runs at: at most ``side`` px, same aspect, at least the network's minimum."""
    scale = min(1.0, side / max(height, width))
    return max(preset.net.min_side, int(height * scale)), max(preset.net.min_side, int(width * scale))


def measure_iteration(preset: Preset, height: int, width: int, channels: int, *,
                      device: Optional[str] = None) -> float:
    """Seconds of one iteration of the preset's network at this size: the second of two (the first warms up)."""
    net = build_net(preset, channels)
    z = make_input_code(preset.input, height, width, generator=torch.Generator().manual_seed(0))
    y = torch.rand(1, channels, height, width, generator=torch.Generator().manual_seed(1))
    stamps = []
    config = replace(preset.fit, iterations=2, early_stop="none", backtrack=False, snapshot_every=10**6)
    fit(net, z, y, Identity(), config, on_step=lambda rec: stamps.append(time.perf_counter()), device=device)
    return stamps[-1] - stamps[-2]


def scale_time(seconds: float, measured: tuple[int, int], target: tuple[int, int]) -> float:
    """Per-iteration time at ``target`` size from a measurement at ``measured`` size.

    Time grows slightly faster than the pixel count (measured on a 2-core CPU with the standard net:
    x4.4 from 64 to 128 px, x4.9 from 128 to 256 px), hence the exponent 1.1.
    """
    return seconds * ((target[0] * target[1]) / (measured[0] * measured[1])) ** 1.1
