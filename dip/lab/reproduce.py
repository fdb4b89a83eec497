"""``python -m dip reproduce``: the lab's experiments (and the paper's presets) on the paper's images.

Writes, under ``--out``: ``results.json`` and ``results.md`` (rewritten after every case, so a long run
that stops keeps what it finished), ``figures/`` (per case a progress strip and the loss/PSNR curves as PNG)
and ``runs/<case>/`` (each case's full run folder: images, history.csv with every iteration, snapshots,
metrics.json, config.json, baselines.json). While a case runs, its folder holds ``checkpoint.pt`` (the fit's
state, saved every ``--checkpoint-every`` iterations; the impedance case one ``checkpoint-TARGET.pt`` per target):
running the same command again continues an interrupted case from there instead of from the start, and the files
are removed once the case is written.

Every fit also feeds an ES-EMV detector from its per-iteration snapshots, so both ground-truth-free
detectors are measured on the same trajectory (ES-WMV runs inside the fit loop).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dip.cli.progress import FitProgress, add_checkpoint_flag, continue_bar, progress_bar
from dip.core.checkpoint import Checkpoint
from dip.core.errors import ConfigError, ImageError
from dip.core.fit import Snapshot
from dip.core.images import load_image, save_image
from dip.core.metrics import psnr
from dip.core.presets import Preset, get_preset
from dip.core.run import run_problem, run_targets
from dip.core.runio import write_json
from dip.core.stopping import ExponentialVariance
from dip.core.tasks import load_for, make_problem, prepare_image
from dip.lab.figures import history_curves, pick_evenly, progress_strip
from dip.lab.reproduce_md import machine_info, render_markdown

GROUPS = ("denoise", "sr", "inpaint", "impedance", "stopping")
DEFAULT_GROUPS = ("denoise", "sr", "inpaint", "impedance")
SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
IMPEDANCE_CHECKPOINTS = (100, 300, 1000, 2400)  # of the lab's 2400 iterations; scaled with the run


@dataclass(frozen=True)
class Case:
    """One experiment: a preset on an image (from --images, or --samples for the "samples" set).

    Attributes
    ----------
    group : str
        One of ``GROUPS`` (what ``--only`` selects).
    preset : str
        The preset's name.
    image : str
        The image's file name.
    set : {"lab", "paper", "samples"}
        Which cases it belongs to (results.json's ``preset``).
    mask : str or None
        The mask's file name, next to the image (inpainting with the image's own mask).
    border : int
        Also report PSNR with this many border pixels excluded (F16's corrupted frame).
    """

    group: str
    preset: str
    image: str
    set: str = "lab"  # "lab", "paper" or "samples"
    mask: Optional[str] = None
    border: int = 0  # also report PSNR with this many border pixels excluded (F16's corrupted frame)

    @property
    def slug(self) -> str:
        """The case's run-folder name, ``PRESET-IMAGESTEM`` (e.g. "lab-denoise-F16_GT")."""
        return f"{self.preset}-{Path(self.image).stem}"


LAB_CASES = (
    Case("denoise", "lab-denoise", "F16_GT.png", border=1),
    Case("sr", "lab-sr", "zebra_GT.png"),
    Case("inpaint", "lab-inpaint", "kate.png", mask="kate_mask.png"),
    Case("impedance", "lab-impedance", "F16_GT.png"),
)
PAPER_CASES = (
    Case("denoise", "f16", "F16_GT.png", "paper", border=1),
    Case("sr", "zebra-x4", "zebra_GT.png", "paper"),
    Case("sr", "zebra-x8", "zebra_GT.png", "paper"),
    Case("inpaint", "barbara", "barbara.png", "paper"),
)
PRESET_NAMES = {c.preset for c in LAB_CASES + PAPER_CASES}  # --only may name one instead of a group


def sample_cases(samples: Path) -> tuple[Case, ...]:
    """List the stopping study's cases: lab-denoise on every PNG of the sample folder.

    Parameters
    ----------
    samples : Path
        The sample folder.

    Returns
    -------
    tuple of Case
        One "stopping" case per PNG, in file-name order.
    """
    return tuple(Case("stopping", "lab-denoise", p.name, "samples") for p in sorted(Path(samples).glob("*.png")))


def select_cases(only: tuple[str, ...], paper: bool, samples: Path) -> list[Case]:
    """Select the cases of the chosen groups, lab first, then the paper presets (with ``paper``), then samples.

    An item of ``only`` may also name a preset (e.g. "barbara") or one case by its run folder (e.g.
    "lab-denoise-chelsea"): that case runs on its own, paper preset or not. Naming cases lets a multi-hour
    study go on with the cases it has not finished, without running the finished ones again.

    Parameters
    ----------
    only : tuple of str
        Groups (``GROUPS``), preset names or case names.
    paper : bool
        Also run the paper presets of the chosen groups.
    samples : Path
        The sample folder of the "stopping" group.

    Returns
    -------
    list of Case
        The selected cases, in the order they run.
    """
    named = lambda c: c.preset in only or c.slug in only
    chosen = [c for c in LAB_CASES if c.group in only or named(c)]
    chosen += [c for c in PAPER_CASES if (paper and c.group in only) or named(c)]
    return chosen + [c for c in sample_cases(samples) if "stopping" in only or named(c)]


def case_names(samples: Path) -> set[str]:
    """List the run-folder names ``--only`` accepts besides groups and presets.

    Parameters
    ----------
    samples : Path
        The sample folder (its PNGs are cases of the stopping study).

    Returns
    -------
    set of str
        The slugs of the lab, paper and sample cases.
    """
    return {c.slug for c in LAB_CASES + PAPER_CASES + sample_cases(samples)}


def adjust_preset(preset: Preset) -> Preset:
    """Adjust every preset after scaling: a hook (identity; tests swap in a tiny network).

    Parameters
    ----------
    preset : Preset
        The scaled preset.

    Returns
    -------
    Preset
        ``preset`` itself.
    """
    return preset


def scale_preset(preset: Preset, scale: float, seed: int, precision: str = "auto") -> Preset:
    """Scale a preset's iterations by ``scale`` and set its seed.

    For a reduced run (``scale`` != 1) the snapshot spacing and the ES patience are multiplied too. A reduced run
    keeps the ES-WMV window at the preset's (100) unless that is more than a quarter of the
    run: a window scaled down with the run (10 at scale 0.1) is dominated by the step-to-step jitter that
    the input noise causes and finds spurious minima in the first few dozen iterations (seen on F16 at
    128 px: window 10 picked iteration 39, 18.5 dB; windows 50 and 100 picked the oracle's end, 24.6 dB).

    Parameters
    ----------
    preset : Preset
        The preset as registered.
    scale : float
        Factor of the iterations, > 0 (1 = the preset's); at least one iteration is kept.
    seed : int
        The fit's seed.
    precision : {"auto", "fp32", "bf16", "fp16"}, optional
        Set unless "auto" (then the preset's stays).

    Returns
    -------
    Preset
        The scaled preset, passed through ``adjust_preset``.
    """
    iterations = max(1, round(preset.fit.iterations * scale))
    fit = {"iterations": iterations, "seed": seed}
    if precision != "auto":
        fit["precision"] = precision
    if scale != 1.0:
        window = min(preset.fit.es_window, max(2, iterations // 4))
        fit.update(
            snapshot_every=max(1, round(preset.fit.snapshot_every * scale)),
            es_window=window,
            es_patience=max(window, round(preset.fit.es_patience * scale)),
        )
    return adjust_preset(preset.with_overrides(fit=fit))


class _Watcher:
    """Per-iteration snapshots: feeds an ES-EMV detector and keeps every ``keep_every``-th for the strip."""

    def __init__(self, preset: Preset, label: str):
        f = preset.fit
        self.keep_every = f.snapshot_every
        self.emv = ExponentialVariance(alpha=0.1, patience=f.es_patience, warmup=f.es_window)
        self.kept: list[Snapshot] = []
        self.fed = 0
        self.total, self.label = f.iterations, label
        self._bar = None  # a tqdm bar once drawn

    @property
    def bar(self):
        """The case's tqdm bar, drawn at the fit's first step (a continued fit draws its own from the checkpoint)."""
        if self._bar is None:
            self._bar = progress_bar(self.total, self.label)
        return self._bar

    def snapshot(self, s: Snapshot) -> None:
        if s.iteration > self.fed:  # the fit may repeat the last iteration's snapshot at the end
            self.fed = s.iteration
            self.emv.update(s.iteration, torch.from_numpy(s.image))
        if s.iteration % self.keep_every == 0 or s.iteration == self.total:
            self.kept.append(s)

    def step(self, _rec) -> None:
        self.bar.update(1)

    def state_dict(self) -> dict:
        return {"emv": self.emv.state_dict(), "fed": self.fed, "kept": [s.to_state() for s in self.kept]}

    def load_state_dict(self, state: dict) -> None:
        # the checkpoint is mapped to the fit's device; this side detector works on host arrays
        on_host = lambda t: t.cpu() if isinstance(t, torch.Tensor) else t
        self.emv.load_state_dict({k: on_host(v) for k, v in state["emv"].items()})
        self.kept = [Snapshot.from_state(k) for k in state["kept"]]
        self.fed = state["fed"]
        self._bar = continue_bar(self._bar, self.total, self.label, self.fed)


def _load_mask(path: Path, preset: Preset, image: np.ndarray, max_side: Optional[int]) -> np.ndarray:
    """Bring a mask file to the prepared image's size by the same resizing and cropping."""
    m = prepare_image(load_image(path, mode="grey"), preset.with_overrides(grey=False), max_side=max_side)
    m = (m[..., 0] > 0.5).astype(np.float32)
    if m.shape != image.shape[:2]:
        raise ImageError(
            f"{path.name} is {m.shape[1]}x{m.shape[0]} px after preparation but the image is "
            f"{image.shape[1]}x{image.shape[0]} px; the mask must match its image."
        )
    return m


def _figures(out: Path, slug: str, frames: list, rows: list[dict], markers: dict) -> dict:
    (out / "figures").mkdir(parents=True, exist_ok=True)
    paths = {"progress": f"figures/{slug}_progress.png", "curves": f"figures/{slug}_curves.png"}
    progress_strip(frames, max_frames=len(frames)).save(out / paths["progress"])
    history_curves(rows, markers=markers, title=f"{slug}: loss").save(out / paths["curves"])
    return paths


def run_restoration(case: Case, path: Path, out: Path, opts: argparse.Namespace) -> dict:
    """Run a denoise / SR / inpaint case: fit, baselines, run folder, figures.

    Parameters
    ----------
    case : Case
        The case.
    path : Path
        Its image file (its mask, if any, lies next to it).
    out : Path
        The output folder; the run goes to ``out/runs/<slug>``, the figures to ``out/figures``.
    opts : argparse.Namespace
        ``iters_scale``, ``max_side``, ``device``, ``seed``, ``precision`` and ``checkpoint_every``.

    Returns
    -------
    dict
        The case's results.json record (PSNRs in dB, the ES-EMV pick, the baselines, folder and figures).
    """
    preset = scale_preset(get_preset(case.preset), opts.iters_scale, opts.seed, opts.precision)
    image = load_for(preset, path, max_side=opts.max_side)
    mask = _load_mask(path.parent / case.mask, preset, image, opts.max_side) if case.mask else None
    problem = make_problem(preset, image, mask=mask, seed=opts.seed)
    watch = _Watcher(preset, case.slug)
    run_preset = preset.with_overrides(fit={"snapshot_every": 1})  # every output goes to the EMV detector
    run_dir = out / "runs" / case.slug
    checkpoint = (
        Checkpoint(run_dir / "checkpoint.pt", opts.checkpoint_every, extra=watch) if opts.checkpoint_every else None
    )
    gt = problem.x_true

    def emv_pick():
        return watch.emv.best_image.numpy().copy() if watch.emv.best_image is not None else None

    def side_detector(result) -> dict:
        """Return what only this study measures: the ES-EMV pick on the same trajectory, and border-excluded PSNRs."""
        emv = emv_pick()
        extra = {
            "psnr_blind_emv": psnr(gt, emv) if emv is not None else None,
            "blind_iteration_emv": watch.emv.best_iteration,
            "es_window": preset.fit.es_window,
            "image": case.image,
            "emv_side_detector": True,
        }
        if case.border:
            extra["psnr_observed_border_excluded"] = psnr(gt, problem.degraded, border=case.border)
            for key, x in (("best", result.best), ("blind", result.blind), ("blind_emv", emv)):
                extra[f"psnr_{key}_border_excluded"] = psnr(gt, x, border=case.border) if x is not None else None
        return extra

    try:
        run = run_problem(
            run_preset,
            problem,
            run_dir,
            device=opts.device,
            on_step=watch.step,
            on_snapshot=watch.snapshot,
            checkpoint=checkpoint,
            extra_metrics=side_detector,
            snapshots=watch.kept,
            on_baselines=watch.bar.close,
            border=case.border,
        )
    finally:
        watch.bar.close()
    result, metrics, baselines = run.result, run.metrics.to_dict(), run.baselines
    emv_image, border_psnr = emv_pick(), run.baselines_border_excluded
    if emv_image is not None:
        save_image(emv_image, run_dir / "blind_emv.png")
    frames = (
        [("input", problem.degraded)]
        + [(f"it {s.iteration}", s.image) for s in pick_evenly(watch.kept, 6)]
        + [("ground truth", gt)]
    )
    markers = {
        "best": metrics["best_iteration"],
        "WMV": metrics["blind_iteration"],
        "EMV": metrics["blind_iteration_emv"],
    }
    figures = _figures(out, case.slug, frames, [r.__dict__ for r in result.history], markers)
    record = {
        "group": case.group,
        "task": problem.task,
        "image": case.image,
        "preset": case.set,
        "preset_name": preset.name,
        "precision": result.precision,
        "factor": preset.factor if problem.task == "sr" else None,
        "sigma_255": preset.sigma_255 if problem.task == "denoise" else None,
    }
    record.update({k: v for k, v in metrics.items() if k not in ("task", "preset", "cancelled", "image")})
    record.update(
        baselines={b.name: b.psnr for b in baselines},
        baseline_seconds={b.name: round(b.seconds, 3) for b in baselines},
        baseline_labels={b.name: b.label for b in baselines},
        folder=f"runs/{case.slug}",
        figures=figures,
    )
    if border_psnr:
        record["baselines_border_excluded"] = border_psnr
    return record


def run_impedance_case(case: Case, path: Path, out: Path, opts: argparse.Namespace) -> dict:
    """Run the noise impedance case (Fig. 2): loss of the four targets at a few iterations and their ordering.

    Parameters
    ----------
    case, path, out, opts
        As for ``run_restoration``.

    Returns
    -------
    dict
        The case's results.json record: losses at the ``IMPEDANCE_CHECKPOINTS`` (scaled with the run), the Fig. 2
        ordering by MSE and by MSE / variance, folder and figures; the PSNR keys are None (no ground truth).
    """
    from dip.core.impedance import TARGETS, target_checkpoints

    preset = scale_preset(get_preset(case.preset), opts.iters_scale, opts.seed, opts.precision)
    image = load_for(preset, path, max_side=opts.max_side)
    n = preset.fit.iterations
    run_dir = out / "runs" / case.slug
    bars = {name: FitProgress(n, f"{case.slug}: {name}") for name in TARGETS}
    checkpoints = target_checkpoints(run_dir, opts.checkpoint_every, extras=bars) if opts.checkpoint_every else {}
    try:
        record, res = run_targets(
            preset,
            image,
            run_dir,
            device=opts.device,
            on_step=lambda name, r: bars[name].step(r),
            on_snapshot=lambda name, s: bars[name].snapshots.append(s),
            checkpoints=checkpoints,
            snapshots={k: b.snapshots for k, b in bars.items()},  # filled in place as the fits go
        )
    finally:
        for b in bars.values():
            b.close()
    metrics = record.to_dict()
    at = sorted({max(1, min(n, round(c / 2400 * n))) for c in IMPEDANCE_CHECKPOINTS})
    fig2 = res.ordering(at)
    rows = [
        {"iteration": h.iteration, "loss": h.loss, "target": name} for name, r in res.results.items() for h in r.history
    ]
    (out / "figures").mkdir(parents=True, exist_ok=True)
    figures = {"curves": f"figures/{case.slug}_curves.png"}
    history_curves(rows, title="noise impedance: loss per target").save(out / figures["curves"])
    frames = [(name, t) for name, t in res.targets.items()] + [(f"fit: {k}", r.output) for k, r in res.results.items()]
    figures["progress"] = f"figures/{case.slug}_progress.png"
    progress_strip(frames, max_frames=len(frames)).save(out / figures["progress"])
    return {
        "group": case.group,
        "task": "impedance",
        "image": case.image,
        "preset": case.set,
        "preset_name": preset.name,
        "precision": next(iter(res.results.values())).precision,
        "factor": None,
        "iterations": n,
        "shape": metrics["shape"],
        "psnr_observed": None,
        "psnr_final": None,
        "psnr_ema": None,
        "psnr_best": None,
        "best_iteration": None,
        "psnr_blind": None,
        "blind_iteration": None,
        "baselines": {},
        "loss_at": {str(c): res.loss_at(c) for c in at},
        "relative_loss_at": {str(c): v for c, v in fig2["relative"]["loss_at"].items()},
        "fig2": {
            m: {
                "order_at": {str(c): o for c, o in f["order_at"].items()},
                "mean_loss": f["mean_loss"],
                "speed_order": f["speed_order"],
                "holds": f["holds"],
            }
            for m, f in fig2.items()
        },
        "fig2_order_holds": fig2["mse"]["holds"],
        "fig2_order_holds_relative": fig2["relative"]["holds"],
        "targets": metrics["targets"],
        "seconds": metrics["seconds"],
        "device": metrics["device"],
        "seed": preset.fit.seed,
        "folder": f"runs/{case.slug}",
        "figures": figures,
    }


def reproduce(
    images: Path,
    out: Path,
    *,
    only: tuple[str, ...] = DEFAULT_GROUPS,
    paper_presets: bool = False,
    iters_scale: float = 1.0,
    max_side: Optional[int] = None,
    device: Optional[str] = None,
    seed: int = 0,
    precision: str = "auto",
    samples: Path = SAMPLES,
    command: str = "",
    checkpoint_every: int = 100,
    log: Callable[[str], None] = print,
    ray: Optional[str] = None,
    ray_cpus: float = 1.0,
) -> dict:
    """Run the selected cases and write results.json / results.md / figures / runs under ``out``.

    Every fit (each impedance target too) saves its state every ``checkpoint_every`` iterations (0: never) in its run
    folder, and continue from it when the same command runs again after an interruption.

    Parameters
    ----------
    images : Path
        Folder of the paper's images (shared/paper_images).
    out : Path
        Output folder (created); an earlier results.json there with the same scale, size, seed and precision keeps
        the cases this call does not run again.
    only : tuple of str, optional
        Groups, preset names or case names (``select_cases``). Default ``DEFAULT_GROUPS``.
    paper_presets : bool, optional
        Also run the official notebooks' presets of the chosen groups. Default False.
    iters_scale : float, optional
        Factor of every preset's iterations, > 0 (``scale_preset``). Default 1.
    max_side : int, optional
        Downscale images first so the longer side is at most this many px.
    device : str, optional
        "auto"/None, "cpu", "cuda", "mps".
    seed : int, optional
        Seed of weights, input code and degradation. Default 0.
    precision : {"auto", "fp32", "bf16", "fp16"}, optional
        Arithmetic of the fits. Default "auto".
    samples : Path, optional
        Folder of the stopping study's images. Default ``SAMPLES``.
    command : str, optional
        The command line, recorded in results.json and results.md.
    checkpoint_every : int, optional
        Iterations between checkpoints, >= 0 (0: never). Default 100.
    log : callable, optional
        ``log(text)`` for progress lines. Default ``print``.
    ray : str, optional
        Run every case as a Ray task on this cluster (HOST:PORT or ``auto``; "" the one on this machine, else a new
        local one), all at once, and gather the records in order (``dip.lab.distributed``). Default None: one after
        another in this process.
    ray_cpus : float, optional
        CPUs (torch threads) per case on a Ray cluster without GPUs. Default 1.

    Returns
    -------
    dict
        The results.json object as written: ``date``, ``command``, ``machine``, ``settings``, ``cases`` (earlier
        ones first) and ``invocations``.

    Raises
    ------
    ConfigError
        For unknown groups, a non-positive scale, a negative ``checkpoint_every`` or no case selected.
    ImageError
        When an image file is missing, or an image or mask cannot be prepared (checked before the first fit).
    """
    cases_known = case_names(Path(samples))
    unknown = [g for g in only if g not in GROUPS and g not in PRESET_NAMES and g not in cases_known]
    if unknown:
        raise ConfigError(
            f"--only {','.join(unknown)}: unknown group; choose from {', '.join(GROUPS)}, or a "
            f"preset: {', '.join(sorted(PRESET_NAMES))}, or a case: {', '.join(sorted(cases_known))}."
        )
    if checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every {checkpoint_every}; use 0 (no checkpoints) or a number of iterations.")
    if not iters_scale > 0:
        raise ConfigError(f"--iters-scale {iters_scale}; must be positive (1 = the presets' iterations).")
    cases = select_cases(tuple(only), paper_presets, Path(samples))
    paths = {c: (Path(samples) if c.set == "samples" else Path(images)) / c.image for c in cases}
    needed = sorted({str(p) for p in paths.values()} | {str(paths[c].parent / c.mask) for c in cases if c.mask})
    missing = [p for p in needed if not Path(p).is_file()]
    if missing:
        raise ImageError(
            f"missing image files: {', '.join(missing)}. --images must be the folder of the paper's "
            "images (shared/paper_images: F16_GT.png, zebra_GT.png, kate.png, kate_mask.png, "
            "barbara.png)."
        )
    if not cases:
        raise ConfigError("no case selected; check --only (and --samples for the stopping group).")
    _preflight(cases, paths, iters_scale, max_side, seed, precision)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    opts = argparse.Namespace(
        iters_scale=iters_scale,
        max_side=max_side,
        device=device,
        seed=seed,
        precision=precision,
        checkpoint_every=checkpoint_every,
    )
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results = {
        "date": date,
        "command": command,
        "machine": machine_info(device),
        "settings": {
            "images": str(images),
            "only": list(only),
            "paper_presets": paper_presets,
            "iters_scale": iters_scale,
            "max_side": max_side,
            "seed": seed,
            "precision": precision,
            "reduced": iters_scale != 1.0 or max_side is not None,
        },
        "cases": [],
    }
    earlier = _earlier_results(out, results["settings"], log)
    results["invocations"] = earlier.get("invocations", []) + [
        {"date": date, "command": command, "device": results["machine"]["device"], "cpu": results["machine"]["cpu"]}
    ]
    on_ray = None
    if ray is not None:  # every case submitted now; below, each record is awaited in the cases' order
        from dip.lab.distributed import run_on_ray

        on_ray = run_on_ray(cases, paths, out, opts, address=ray or None, cpus=ray_cpus, log=log)
    for k, case in enumerate(cases, start=1):
        log(f"[{k}/{len(cases)}] {case.slug}")
        run = on_ray or (run_impedance_case if case.group == "impedance" else run_restoration)
        results["cases"].append({**run(case, paths[case], out, opts), "date": time.strftime("%Y-%m-%d %H:%M %Z")})
        _write(out, _merged(earlier.get("cases", []), results))
    return _merged(earlier.get("cases", []), results)


def _merged(earlier_cases: list[dict], results: dict) -> dict:
    """``results`` with the earlier cases it did not run again in front (in their order)."""
    key = lambda c: (c["group"], c["preset_name"], c["image"])
    done = {key(c) for c in results["cases"]}
    return {**results, "cases": [c for c in earlier_cases if key(c) not in done] + results["cases"]}


def _earlier_results(out: Path, settings: dict, log: Callable[[str], None]) -> dict:
    """results.json already in ``out`` from a run with the same scale, size, seed and precision, else {}.

    Full-size cases take hours on a CPU, so they are run a few at a time (``--only``) into one folder: each
    invocation keeps the other cases' records and replaces those it runs again.
    """
    path = out / "results.json"
    if not path.is_file():
        return {}
    try:
        earlier = json.loads(path.read_text())
        same = (
            all(earlier["settings"][k] == settings[k] for k in ("iters_scale", "max_side", "seed"))
            and earlier["settings"].get("precision", "auto") == settings["precision"]
        )
    except (ValueError, KeyError, TypeError):
        same = False
    if not same:
        log(f"{path} was written with other settings (or is unreadable); it will be replaced.")
        return {}
    invocations = earlier.get("invocations") or [
        {
            "date": earlier.get("date"),
            "command": earlier.get("command"),
            "device": earlier.get("machine", {}).get("device"),
        }
    ]
    return {"cases": earlier.get("cases", []), "invocations": invocations}


def _preflight(
    cases: list[Case], paths: dict, iters_scale: float, max_side: Optional[int], seed: int, precision: str
) -> None:
    """Load and prepare every image (and mask) before the first fit, so a bad setting fails in seconds."""
    for case in cases:
        preset = scale_preset(get_preset(case.preset), iters_scale, seed, precision)
        try:
            image = load_for(preset, paths[case], max_side=max_side)
            if case.mask:
                _load_mask(paths[case].parent / case.mask, preset, image, max_side)
        except ImageError as err:
            hint = f" (at --max-side {max_side}; use a larger value)" if max_side else ""
            raise ImageError(f"case {case.slug}: {err}{hint}") from None


def _write(out: Path, results: dict) -> None:
    write_json(out / "results.json", results)
    (out / "results.md").write_text(render_markdown(results))


def register(subparsers) -> None:
    """Add the ``reproduce`` subcommand to the ``python -m dip`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands (``add_subparsers``); the new one's ``handler`` is ``handle``.
    """
    p = subparsers.add_parser(
        "reproduce",
        help="run the lab experiments (and paper presets) on the paper's images",
        description="Run the lab experiments (and, with --paper-presets, the official "
        "notebooks' presets) on the paper's images; write results.md, "
        "results.json, figures and run folders.",
    )
    p.add_argument("--images", required=True, type=Path, help="folder with the paper's images (shared/paper_images)")
    p.add_argument("--out", required=True, type=Path, help="output folder for results.md/json, figures and runs")
    p.add_argument(
        "--only",
        default=",".join(DEFAULT_GROUPS),
        help=f"comma-separated groups among {','.join(GROUPS)}, preset names (e.g. barbara) or case "
        "names (run folders, e.g. lab-denoise-chelsea) to run just those cases "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--iters-scale",
        type=float,
        default=1.0,
        help="multiply every preset's iterations (and ES window/patience, snapshot spacing) by F",
    )
    p.add_argument(
        "--paper-presets",
        action="store_true",
        help="also run the official notebooks' presets (f16, zebra-x4, zebra-x8, barbara)",
    )
    p.add_argument("--max-side", type=int, help="downscale images first so the longer side is at most PX (quick runs)")
    p.add_argument("--samples", type=Path, default=SAMPLES, help="folder of the stopping study's images")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, input code and degradation (default 0)")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="arithmetic of the fits (default auto: bf16 autocast where the hardware has it); "
        "fp32 gives the float32 counterpart of a run",
    )
    add_checkpoint_flag(p, "OUT/runs/CASE/checkpoint.pt (removed once the case is written)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run the cases at once as Ray tasks (pip install -r requirements-cluster.txt): on the cluster at "
        "ADDRESS (HOST:PORT or auto), or without it the one on this machine, else a new local one; --out must be "
        "the same path on every node",
    )
    p.add_argument(
        "--ray-cpus", type=float, default=1.0, metavar="N", help="CPUs per case on a cluster without GPUs (default 1)"
    )
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``python -m dip reproduce`` (its handler) and print where the results went.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of the subcommand.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    DIPError
        As ``reproduce`` (``dip.cli.commands.main`` prints the message and returns 2).
    """
    only = tuple(g.strip() for g in args.only.split(",") if g.strip())
    argv = sys.argv[1:]
    command = "python -m dip " + " ".join(shlex.quote(a) for a in argv) if argv[:1] == ["reproduce"] else ""
    results = reproduce(
        args.images,
        args.out,
        only=only,
        paper_presets=args.paper_presets,
        iters_scale=args.iters_scale,
        max_side=args.max_side,
        device=args.device,
        seed=args.seed,
        precision=args.precision,
        checkpoint_every=args.checkpoint_every,
        samples=args.samples,
        command=command or _command_from_args(args),
        ray=args.ray,
        ray_cpus=args.ray_cpus,
    )
    print(f"wrote {args.out / 'results.md'} and results.json ({len(results['cases'])} cases)")
    return 0


def _command_from_args(args: argparse.Namespace) -> str:
    parts = ["python -m dip reproduce", f"--images {args.images}", f"--out {args.out}", f"--only {args.only}"]
    if args.iters_scale != 1.0:
        parts.append(f"--iters-scale {args.iters_scale}")
    if args.paper_presets:
        parts.append("--paper-presets")
    if args.max_side:
        parts.append(f"--max-side {args.max_side}")
    parts += [f"--device {args.device}", f"--seed {args.seed}", f"--precision {args.precision}"]
    return " ".join(parts)


def load_results(path: str | Path) -> dict:
    """Read a results.json.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    dict
        Its JSON object (as ``reproduce`` returns it).
    """
    return json.loads(Path(path).read_text())
