"""What a job does in the worker thread: run the engine, report progress, write ``runs/<id>/``.

No Streamlit here. A job lives in ``runs/.incomplete/<id>/`` from the moment it is accepted: its spec
(``job.json`` + ``inputs.npz``), then its snapshots and checkpoints as it runs. A server that dies leaves that
folder behind and the next one queues the job again (``recover``), continuing from its last checkpoint. Only a
finished (done, cancelled or failed) run is renamed to ``runs/<id>/``, so a listed run folder is always complete.

Run folders use ``dip.core.runio`` so the app and the command line write the same layout; an impedance run is written
by ``dip.core.impedance.write_impedance_run`` (one sub-folder per target), and the classical baselines of a finished run
by ``dip.core.runio.write_baselines``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dip.core.checkpoint import Checkpoint, saved_progress
from dip.core.device import available_cpus
from dip.core.errors import DIPError
from dip.core.fit import Snapshot, StepRecord, fit
from dip.core.impedance import (
    target_checkpoints,
    target_slug,
)
from dip.core.limits import Limits, check_job
from dip.core.models import make_input_code
from dip.core.operators import Identity
from dip.core.presets import Preset, preset_from_dict
from dip.core.records import JobOutcome
from dip.core.registry import get_task
from dip.core.run import run_problem, run_targets
from dip.core.runio import preset_as_dict, write_json, write_snapshots
from dip.core.tasks import Problem, build_net, load_problem, make_problem, save_problem
from ui.service.access import Access, write_access
from ui.service.config import SNAPSHOT_SIDE
from ui.service.imaging import preview
from ui.service.jobs import Job, JobRegistry
from ui.service.runs import snapshot_previews

log = logging.getLogger(__name__)


INCOMPLETE = ".incomplete"  # runs/.incomplete/<id>/: accepted jobs that have not finished
SPEC_FILE, INPUTS_FILE, CHECKPOINT_FILE = "job.json", "inputs.npz", "checkpoint.pt"
STALE_SECONDS = 86400  # an unreadable pending folder this old is removed at start-up
JOB_INFO_KEYS = ("source", "preset", "blind", "psnr_degraded", "summary", "public", "mask")  # kept for a restart


@dataclass
class TaskSpec:
    """Everything a job needs. ``problem`` for denoise/sr/inpaint; ``image`` (prepared) for impedance.

    ``public``: the image is a bundled sample, nobody's private photo, so its run may be shown to everyone.
    ``checkpoint_every``: iterations between the checkpoints a job resumes from after a restart.
    """

    task: str
    preset: Preset
    runs_dir: Path
    source: str
    problem: Optional[Problem] = None
    image: Optional[np.ndarray] = None
    device: Optional[str] = None
    public: bool = False
    checkpoint_every: int = 25

    @property
    def fits(self) -> int:
        return fits_per_job(self.task)

    @property
    def total(self) -> int:
        return self.preset.fit.iterations * self.fits

    @property
    def shape(self) -> tuple:
        return self.problem.shape if self.problem is not None else self.image.shape


def fits_per_job(task: str) -> int:
    """Fits one job of ``task`` runs: noise impedance fits each of its targets, every other task one image."""
    return get_task(task).fits


def admit(limits: Callable[[], Limits]):
    """The registry's admission check: a job within ``limits()`` (read at each submission, so an operator's change
    applies at once), else ``dip.core.limits.LimitExceeded`` naming the limit."""

    def check(spec: TaskSpec) -> None:
        check_job(spec.preset, spec.shape, limits(), fits=spec.fits)

    return check


def pending_folder(runs_dir: Path, job_id: str) -> Path:
    return Path(runs_dir) / INCOMPLETE / job_id


def persist(job: Job) -> None:
    """Write an accepted job's spec to its pending folder, so that a restarted server can queue it again."""
    spec: TaskSpec = job.spec
    folder = pending_folder(spec.runs_dir, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    if spec.problem is not None:
        save_problem(spec.problem, folder / INPUTS_FILE)
    else:
        np.savez(folder / INPUTS_FILE, image=spec.image)
    record = {
        "version": 1,
        "id": job.id,
        "task": spec.task,
        "owner": job.owner,
        "source": spec.source,
        "public": spec.public,
        "created": job.created,
        "device": spec.device,
        "checkpoint_every": spec.checkpoint_every,
        "preset": preset_as_dict(spec.preset),
        "info": {k: job.info[k] for k in JOB_INFO_KEYS if k in job.info},
    }
    write_json(folder / SPEC_FILE, record)


def discard(job: Job) -> None:
    """A job cancelled before it started leaves nothing behind (no run, nothing to resume)."""
    shutil.rmtree(pending_folder(job.spec.runs_dir, job.id), ignore_errors=True)


def recover(registry: JobRegistry, runs_dir: Path) -> list[str]:
    """Queue again every job an earlier server process accepted but did not finish, oldest first, with its owner.

    A pending folder that cannot be read is logged and left alone, and removed once it is a day old.
    Returns the ids queued.
    """
    root = Path(runs_dir) / INCOMPLETE
    records = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            record = json.loads((folder / SPEC_FILE).read_text())
            preset = preset_from_dict(record["preset"])
            if record["task"] == "impedance":
                with np.load(folder / INPUTS_FILE, allow_pickle=False) as data:
                    spec = TaskSpec("impedance", preset, Path(runs_dir), record["source"], image=data["image"])
            else:
                spec = TaskSpec(
                    record["task"],
                    preset,
                    Path(runs_dir),
                    record["source"],
                    problem=load_problem(folder / INPUTS_FILE, preset),
                )
            spec.device, spec.public = record.get("device"), record.get("public") is True
            spec.checkpoint_every = int(record.get("checkpoint_every") or spec.checkpoint_every)
            records.append((float(record.get("created") or 0), folder.name, record, spec))
        except Exception as err:  # a half-written or foreign folder must not stop the server from starting
            log.warning("not resuming %s: %s: %s", folder.name, type(err).__name__, err)
            if time.time() - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
    records.sort(key=lambda r: r[0])
    for created, job_id, record, spec in records:
        registry.restore(
            spec,
            job_id=job_id,
            task=spec.task,
            owner=str(record.get("owner") or ""),
            total=spec.total,
            info=record.get("info") or {},
            created=created,
        )
        log.info("resuming job %s from its checkpoint", job_id)
    return [job_id for _, job_id, _, _ in records]


def configure_torch() -> None:
    """Worker start: one thread per CPU this process may use (DIP_THREADS overrides).

    The web server shares these CPUs, but its reruns are short: on 2 cores, with the page open and polling, a
    256 px lab denoising job took 1.50 s per iteration with 2 threads and 2.61 s with 1 (scripts/app_threads.py).
    """
    threads = int(os.environ.get("DIP_THREADS") or available_cpus())
    torch.set_num_threads(threads)


def release_memory() -> None:
    """After each job: hand cached GPU memory back so the next job starts clean."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_job(job: Job) -> JobOutcome:
    """The registry's runner: fit, compare with classical baselines, write ``runs/<id>/``; returns the outcome.

    The run is written in the job's pending folder and renamed into place only when complete.
    """
    spec: TaskSpec = job.spec
    folder = pending_folder(spec.runs_dir, job.id)
    try:
        try:
            outcome = _run_impedance(job, spec, folder) if spec.task == "impedance" else _run_task(job, spec, folder)
        except torch.cuda.OutOfMemoryError:
            raise DIPError("the GPU ran out of memory; choose a smaller working size or fewer channels.") from None
    except Exception as err:
        _write_error(folder, spec, job, err)
        _publish(folder, spec, job)
        raise
    return replace(outcome, run_dir=str(_publish(folder, spec, job)))


def _publish(folder: Path, spec: TaskSpec, job: Job) -> Path:
    """Move a finished run from its pending folder to ``runs/<id>/`` (one rename: never half there), then drop what
    only a restart needed (a death in between leaves harmless extra files in a complete run, never a lost run)."""
    write_access(folder, Access(owner=job.owner, public=spec.public))
    final = Path(spec.runs_dir) / job.id
    if final.exists():  # left by a process that died between writing and renaming: this one is newer
        shutil.rmtree(final)
    os.replace(folder, final)
    for name in (SPEC_FILE, INPUTS_FILE, CHECKPOINT_FILE):
        (final / name).unlink(missing_ok=True)
    return final


def _resume_progress(job: Job, folder: Path, checkpoint: Path, series: str = "") -> None:
    """A job queued again after a restart shows what it had done: the checkpoint's history and the snapshots
    on disk up to it (its fit then continues from there, one history row per iteration)."""
    saved = saved_progress(checkpoint)
    if saved is None:
        return
    iteration, rows = saved
    for row in rows:
        job.restore_step(StepRecord(*row), series)
    for it, image in snapshot_previews(folder)[0]:
        if it <= iteration:
            job.add_snapshot(it, image, series)


def _snapshot_writer(job: Job, folder: Path, series: str = ""):
    """Write each snapshot at full size to ``folder/snapshots`` and keep a small preview in the job."""

    def on_snapshot(snap: Snapshot) -> None:
        write_snapshots([snap], folder / "snapshots")
        job.add_snapshot(snap.iteration, preview(snap.image, SNAPSHOT_SIDE), series)

    return on_snapshot


def _base_metrics(job: Job, spec: TaskSpec) -> dict:
    metrics = {
        "job_id": job.id,
        "source": spec.source,
        "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created)),
    }
    if job.stop_reason:
        metrics["stop_reason"] = job.stop_reason
    if job.resumed:
        metrics["resumed_after_restart"] = True
    if spec.problem is not None and spec.problem.mask is not None:  # inpainting: the mask actually used
        if isinstance(job.info.get("mask"), str):  # its kind, as the page chose it (dip.lab.report.MASK_KINDS)
            metrics["mask"] = job.info["mask"]
        metrics["kept_fraction"] = round(float(np.mean(spec.problem.mask)), 4)
    return metrics


def classical_baselines(preset: Preset, problem: Problem) -> list:
    """The task's classical methods for this problem (``dip.core.registry``: NLM/TV/wavelet, upsamplers, ...)."""
    return get_task(problem.task).baselines(preset, problem)


def _run_task(job: Job, spec: TaskSpec, folder: Path) -> JobOutcome:
    preset, problem = spec.preset, spec.problem
    checkpoint = Checkpoint(folder / CHECKPOINT_FILE, spec.checkpoint_every)
    _resume_progress(job, folder, checkpoint.path)
    run = run_problem(
        preset,
        problem,
        folder,
        device=spec.device,
        on_step=job.add_step,
        on_snapshot=_snapshot_writer(job, folder),  # written as they come: the page shows them live
        should_stop=job.should_stop,
        checkpoint=checkpoint,
        extra_metrics=lambda result: {
            **_base_metrics(job, spec),
            "blind": problem.x_true is None,
            "status": "cancelled" if result.cancelled else "done",
        },
        on_baselines=lambda: job.set_note("comparing with classical methods"),
    )
    result, metrics, baselines = run.result, run.metrics, run.baselines
    images = {
        "observed": problem.degraded,
        "result": result.output,
        "result_ema": result.ema,
        "ground_truth": problem.x_true,
        "best": result.best,
        "blind": result.blind,
        "result_known_kept": problem.holes_filled(result.output),
    }
    images.update({b.name: b.image for b in baselines})
    return JobOutcome(
        metrics=metrics,
        cancelled=result.cancelled,
        baselines=tuple(b.as_record() for b in baselines),
        images={k: preview(v) for k, v in images.items() if v is not None},
    )


def _run_impedance(job: Job, spec: TaskSpec, folder: Path) -> JobOutcome:
    preset, x = spec.preset, spec.image
    writers = {}
    checkpoints = target_checkpoints(folder, spec.checkpoint_every)
    for name, c in checkpoints.items():
        _resume_progress(job, folder / target_slug(name), c.path, name)

    def on_snapshot(name: str, snap: Snapshot) -> None:
        writers.setdefault(name, _snapshot_writer(job, folder / target_slug(name), name))(snap)

    def cancelled(res) -> bool:
        return any(r.cancelled for r in res.results.values()) or len(res.results) < len(res.targets)

    # Snapshots are already on disk (written as they came), so none are passed for writing.
    metrics, res = run_targets(
        preset,
        x,
        folder,
        device=spec.device,
        on_step=lambda name, rec: job.add_step(rec, name),
        on_snapshot=on_snapshot,
        should_stop=job.should_stop,
        checkpoints=checkpoints,
        extra_metrics=lambda res: {**_base_metrics(job, spec), "status": "cancelled" if cancelled(res) else "done"},
    )
    images = {}
    for name, r in res.results.items():
        images[f"target:{name}"], images[f"result:{name}"] = preview(res.targets[name]), preview(r.output)
    if "image" in res.results:
        images["result"], images["result_ema"] = preview(res.results["image"].output), preview(res.results["image"].ema)
    return JobOutcome(metrics=metrics, cancelled=cancelled(res), images=images)


def _write_error(folder: Path, spec: TaskSpec, job: Job, err: Exception) -> None:
    """A failed job still leaves a record on the Runs page (the engine's message, or only the error's type)."""
    message = str(err) if isinstance(err, DIPError) else f"internal error ({type(err).__name__})"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(
            folder / "metrics.json",
            {
                **_base_metrics(job, spec),
                "task": spec.task,
                "preset": spec.preset.name,
                "status": "error",
                "error": message,
            },
        )
        write_json(folder / "config.json", preset_as_dict(spec.preset))
    except OSError:
        pass


def reference_size(preset: Preset, height: int, width: int, *, side: int = 128) -> tuple[int, int]:
    """The size a speed measurement runs at: at most ``side`` px, same aspect, at least the network's minimum."""
    scale = min(1.0, side / max(height, width))
    return max(preset.net.min_side, int(height * scale)), max(preset.net.min_side, int(width * scale))


@dataclass(frozen=True)
class Timing:
    """A short measurement at a reference size: seconds per iteration once warm, the extra seconds of the start
    (building the network, the first iteration's warm-up), and the classical baselines' seconds there."""

    per_iteration: float
    startup: float
    baselines: float


TIMED_SECONDS = 0.5  # a quick network's iterations are timed for about this long (at most MAX_TIMED_ITERATIONS)
MAX_TIMED_ITERATIONS = 25


def measure_iteration(
    preset: Preset, height: int, width: int, channels: int, *, device: Optional[str] = None
) -> Timing:
    """Time three iterations of the preset's network at this size (the last two give the steady rate, the first the
    start-up) and the task's classical baselines on an image of this size. A quick net is timed over more
    iterations, and their median taken: two of its ~30 ms iterations are at the mercy of one busy moment of the
    machine (a browser drawing a page on the same cores made one such estimate 10x too long)."""
    start = time.perf_counter()
    net = build_net(preset, channels)
    z = make_input_code(preset.input, height, width, generator=torch.Generator().manual_seed(0))
    y = torch.rand(1, channels, height, width, generator=torch.Generator().manual_seed(1))
    config = replace(preset.fit, early_stop="none", backtrack=False, snapshot_every=10**6)

    def step_times(iterations: int) -> list[float]:  # when each of this many iterations ended
        stamps = []
        config_n = replace(config, iterations=iterations)
        fit(net, z, y, Identity(), config_n, on_step=lambda rec: stamps.append(time.perf_counter()), device=device)
        return stamps

    stamps = step_times(3)
    first, per_iteration = stamps[0], (stamps[-1] - stamps[0]) / 2
    quickest = float(np.min(np.diff(stamps)))  # not the mean: a stalled iteration would hide a quick net
    more = min(MAX_TIMED_ITERATIONS, int(TIMED_SECONDS / max(quickest, 1e-6)))
    if more > 3:
        per_iteration = float(np.median(np.diff(step_times(more))))
    baselines = 0.0
    if preset.task != "impedance":
        image = np.random.default_rng(0).random((height, width, channels), dtype=np.float32)
        t0 = time.perf_counter()
        try:
            classical_baselines(preset, make_problem(preset, image, seed=0))
        except DIPError:  # a size a baseline cannot take: the fit's estimate stands alone
            pass
        baselines = time.perf_counter() - t0
    return Timing(per_iteration, max(0.0, first - start - per_iteration), baselines)


PIXEL_EXPONENT = 1.1  # time ~ pixels ** 1.1 for the wide nets (see scale_time)


def scale_time(seconds: float, measured: tuple[int, int], target: tuple[int, int]) -> float:
    """Per-iteration time at ``target`` size from a measurement at ``measured`` size.

    Time grows slightly faster than the pixel count (measured on a 2-core CPU with the standard net:
    x4.4 from 64 to 128 px, x4.9 from 128 to 256 px), hence ``PIXEL_EXPONENT``.
    """
    return seconds * ((target[0] * target[1]) / (measured[0] * measured[1])) ** PIXEL_EXPONENT
