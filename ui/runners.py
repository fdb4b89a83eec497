"""What a job does in the worker thread: run the engine, report progress, write ``runs/<id>/``.

No Streamlit here. Run folders use ``dip.runio`` so the app and the command line write the same layout;
an impedance run also has one sub-folder per target, as ``python -m dip impedance`` writes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dip.errors import DIPError
from dip.fit import Snapshot, fit
from dip.images import save_image
from dip.impedance import run_impedance
from dip.metrics import psnr
from dip.models import make_input_code
from dip.operators import Identity
from dip.presets import Preset
from dip.runio import preset_as_dict, write_history, write_json, write_run, write_snapshots
from dip.tasks import Problem, build_net, solve, summarize
from ui.config import SNAPSHOT_SIDE
from ui.imaging import preview, sr_baselines
from ui.jobs import Job


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


def slug(target: str) -> str:
    """Folder name of an impedance target, as the command line writes it."""
    return target.replace(" + ", "_plus_").replace(" ", "_")


def configure_torch() -> None:
    """Worker start: leave one core to the web server on a small CPU (DIP_THREADS overrides)."""
    threads = int(os.environ.get("DIP_THREADS") or max(1, (os.cpu_count() or 2) - 1))
    torch.set_num_threads(threads)


def release_memory() -> None:
    """After each job: hand cached GPU memory back so the next job starts clean."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_job(job: Job) -> dict:
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
    def on_snapshot(snap: Snapshot) -> None:
        write_snapshots([snap], folder / "snapshots")
        job.add_snapshot(snap.iteration, preview(snap.image, SNAPSHOT_SIDE), series)
    return on_snapshot


def _base_metrics(job: Job, spec: TaskSpec) -> dict:
    return {"job_id": job.id, "source": spec.source, "created": time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(job.created))}


def _run_task(job: Job, spec: TaskSpec, folder: Path) -> dict:
    preset, problem = spec.preset, spec.problem
    result = solve(preset, problem, device=spec.device, on_step=job.add_step,
                   on_snapshot=_snapshot_writer(job, folder), should_stop=job.should_stop)
    metrics = {**_base_metrics(job, spec), **summarize(preset, problem, result),
               "blind": problem.x_true is None, "status": "cancelled" if result.cancelled else "done"}
    images = {"observed": problem.degraded, "result": result.output, "result_ema": result.ema,
              "ground_truth": problem.x_true, "best": result.best, "blind": result.blind}
    baselines = sr_baselines(problem.y, preset.factor, problem.x_true) if problem.task == "sr" else {}
    for name, (up, value) in baselines.items():
        images[name], metrics[f"psnr_{name}"] = up, value
    write_run(folder, metrics=metrics, config=preset_as_dict(preset), result=result, degraded=problem.degraded,
              x_true=problem.x_true, mask=problem.mask)
    for name in baselines:
        save_image(images[name], folder / f"{name}.png")
    return {"metrics": metrics, "run_dir": str(folder), "cancelled": result.cancelled,
            "images": {k: preview(v) for k, v in images.items() if v is not None}}


def _run_impedance(job: Job, spec: TaskSpec, folder: Path) -> dict:
    preset, x = spec.preset, spec.image
    writers = {}

    def on_snapshot(name: str, snap: Snapshot) -> None:
        writers.setdefault(name, _snapshot_writer(job, folder / slug(name), name))(snap)

    res = run_impedance(preset, x, device=spec.device, on_step=lambda name, rec: job.add_step(rec, name),
                        on_snapshot=on_snapshot, should_stop=job.should_stop)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "history.csv").unlink(missing_ok=True)
    targets, images = {}, {}
    for name, r in res.results.items():
        write_history(r.history, folder / "history.csv", extra={"target": name})
        save_image(res.targets[name], folder / slug(name) / "target.png")
        save_image(r.output, folder / slug(name) / "result.png")
        losses = [h.loss for h in r.history] or [float("nan")]
        targets[name] = {"final_loss": losses[-1], "min_loss": min(losses), "iterations": r.iterations_done,
                         "seconds": round(r.seconds, 3), "psnr_fit": psnr(res.targets[name], r.output)}
        images[f"target:{name}"], images[f"result:{name}"] = preview(res.targets[name]), preview(r.output)
    cancelled = any(r.cancelled for r in res.results.values()) or len(res.results) < len(res.targets)
    natural = res.results.get("image")
    metrics = {**_base_metrics(job, spec), "task": "impedance", "preset": preset.name,
               "iterations": preset.fit.iterations, "parameters": natural.parameters if natural else None,
               "seconds": round(sum(r.seconds for r in res.results.values()), 3),
               "device": natural.device if natural else None, "seed": preset.fit.seed, "cancelled": cancelled,
               "status": "cancelled" if cancelled else "done", "shape": list(x.shape), "psnr_observed": None,
               "psnr_final": targets["image"]["psnr_fit"] if natural else None, "targets": targets}
    if natural is not None:
        save_image(natural.output, folder / "result.png")
        save_image(natural.ema, folder / "result_ema.png")
        images["result"], images["result_ema"] = preview(natural.output), preview(natural.ema)
    save_image(np.concatenate(list(res.targets.values()), axis=1), folder / "observed.png")
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "config.json", preset_as_dict(preset))
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
