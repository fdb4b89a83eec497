"""Noise impedance (paper Fig. 2): the same network fits a natural image much faster than noise.

Four targets are fitted with the identity operator: the image, the image plus Gaussian noise, the image with
its pixels shuffled, and U(0, 1) noise. The loss of every iteration is recorded for each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from dip.core import degrade
from dip.core.checkpoint import Checkpoint, Stateful
from dip.core.fit import FitResult, Snapshot, StepRecord
from dip.core.images import save_image
from dip.core.metrics import psnr
from dip.core.operators import Identity
from dip.core.presets import Preset
from dip.core.runio import preset_as_dict, write_history, write_json, write_snapshots
from dip.core.tasks import Problem, solve

TARGETS = ("image", "image + noise", "shuffled pixels", "noise")


def make_targets(x: np.ndarray, *, sigma_255: float = 25.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Make the four fitting targets of Fig. 2 from an image, in ``TARGETS`` order.

    Parameters
    ----------
    x : ndarray
        Natural image, float (H, W, C) in [0, 1].
    sigma_255 : float, optional
        Noise level of "image + noise" in 0-255 units. Default 25.
    seed : int, optional
        Seed of the noise, the pixel permutation and the U(0, 1) noise. Default 0.

    Returns
    -------
    dict of str to ndarray
        "image", "image + noise", "shuffled pixels" (one permutation for all channels) and "noise" (U(0, 1)),
        each float32 (H, W, C) in [0, 1].
    """
    rng = np.random.default_rng(seed)
    h, w, c = x.shape
    shuffled = x.reshape(h * w, c)[rng.permutation(h * w)].reshape(h, w, c)  # same permutation for all channels
    return {
        "image": x.astype(np.float32),
        "image + noise": degrade.add_gaussian_noise(x, sigma_255, seed=seed),
        "shuffled pixels": shuffled.astype(np.float32),
        "noise": rng.random(x.shape).astype(np.float32),
    }


@dataclass
class ImpedanceResult:
    """Per-target fit results; ``losses[name]`` is the loss at every iteration.

    Attributes
    ----------
    targets : dict of str to ndarray
        The targets fitted, float32 (H, W, C) in [0, 1], by name.
    results : dict of str to FitResult
        The fits done, by target name (fewer than ``targets`` when the run was cancelled).
    """

    targets: dict[str, np.ndarray]
    results: dict[str, FitResult] = field(default_factory=dict)

    @property
    def losses(self) -> dict[str, list[float]]:
        """The loss (MSE) of every iteration, by target name."""
        return {name: [r.loss for r in res.history] for name, res in self.results.items()}

    def loss_at(self, iteration: int) -> dict[str, float]:
        """Return each target's loss at ``iteration`` (1-based), or its last loss if it stopped earlier."""
        return {name: ls[min(iteration, len(ls)) - 1] for name, ls in self.losses.items() if ls}

    def relative_loss_at(self, iteration: int) -> dict[str, float]:
        """Return each target's loss at ``iteration`` divided by its variance: the fraction still unexplained.

        1 means nothing fitted yet.
        """
        return {name: v / float(self.targets[name].var()) for name, v in self.loss_at(iteration).items()}

    def ordering(self, checkpoints) -> dict:
        """Return ``fig2_ordering`` of this run's losses at the given iterations (``checkpoints``, 1-based)."""
        return fig2_ordering(self.losses, {n: float(t.var()) for n, t in self.targets.items()}, checkpoints)


def fig2_ordering(losses: dict[str, list[float]], variances: dict[str, float], checkpoints) -> dict:
    """Check Fig. 2's claim (natural image fits fastest, noise slowest) two ways.

    ``mse``: the loss itself, which is what the paper plots ("the energy as a function of the iterations").
    ``relative``: the loss divided by the target's variance, the fraction still unexplained (1 = nothing
    fitted yet); stricter, because U(0, 1) noise starts ~3x higher than a natural image's variance and so
    stays "slowest" by MSE for longer.

    Parameters
    ----------
    losses : dict of str to list of float
        The loss of every iteration, by target name.
    variances : dict of str to float
        Each target's variance.
    checkpoints : iterable of int
        Iterations (1-based) to compare at; a target that stopped earlier counts with its last loss.

    Returns
    -------
    dict
        For "mse" and "relative": ``loss_at`` and ``order_at`` (the order, lowest first, at every checkpoint),
        ``mean_loss`` and ``speed_order`` (the order by mean loss over the run, the area under the curve: the
        speed of fitting), and ``holds``: whether the claim holds both at the last checkpoint and by the mean.
    """
    out = {}
    for measure, scale in (("mse", {n: 1.0 for n in losses}), ("relative", variances)):
        at = {c: {n: ls[min(c, len(ls)) - 1] / scale[n] for n, ls in losses.items() if ls} for c in checkpoints}
        order_at = {c: sorted(v, key=v.get) for c, v in at.items()}
        mean = {n: float(np.mean(ls)) / scale[n] for n, ls in losses.items() if ls}
        speed_order = sorted(mean, key=mean.get)
        holds = all(o[0] == "image" and o[-1] == "noise" for o in (speed_order, order_at[max(checkpoints)]))
        out[measure] = {
            "loss_at": at,
            "order_at": order_at,
            "mean_loss": mean,
            "speed_order": speed_order,
            "holds": holds,
        }
    return out


def run_impedance(
    preset: Preset,
    x: np.ndarray,
    *,
    targets: tuple = TARGETS,
    device: Optional[str] = None,
    on_step: Optional[Callable[[str, StepRecord], None]] = None,
    on_snapshot: Optional[Callable[[str, Snapshot], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    checkpoints: Optional[dict[str, Checkpoint]] = None,
) -> ImpedanceResult:
    """Fit each target in turn with the preset's network and fit settings (lab: 2400 iterations each).

    Parameters
    ----------
    preset : Preset
        Network, input and fit settings; ``sigma_255`` is the noise of "image + noise".
    x : ndarray
        Natural image, float32 (H, W, C) in [0, 1].
    targets : tuple of str, optional
        Names from ``TARGETS`` to fit, in order. Default all four.
    device : str or None, optional
        As ``dip.core.fit.fit``; None for the best available.
    on_step : callable or None, optional
        Called with (target name, StepRecord) for every iteration.
    on_snapshot : callable or None, optional
        Called with (target name, Snapshot).
    should_stop : callable or None, optional
        Polled every iteration; True cancels the current fit and skips the remaining targets.
    checkpoints : dict of str to Checkpoint or None, optional
        Per target name, where its fit saves its state and continues from (``target_checkpoints``).
        Keep them until the whole run is written: a target that had finished is rebuilt from its last
        checkpoint (repeating at most ``every`` iterations) rather than fitted again from the start.

    Returns
    -------
    ImpedanceResult
        The targets and the fits done.
    """
    all_targets = make_targets(x, sigma_255=preset.sigma_255, seed=preset.fit.seed)
    out = ImpedanceResult({k: all_targets[k] for k in targets})
    checkpoints = checkpoints or {}
    for name, target in out.targets.items():
        problem = Problem("impedance", target, Identity(), target.shape, x_true=target, degraded=target)
        out.results[name] = solve(
            preset,
            problem,
            device=device,
            should_stop=should_stop,
            checkpoint=checkpoints.get(name),
            on_step=(lambda r, n=name: on_step(n, r)) if on_step else None,
            on_snapshot=(lambda s, n=name: on_snapshot(n, s)) if on_snapshot else None,
        )
        if out.results[name].cancelled:
            break
    return out


def target_slug(name: str) -> str:
    """Make the folder name of a target: "image + noise" -> "image_plus_noise"."""
    return name.replace(" + ", "_plus_").replace(" ", "_")


def target_checkpoints(
    folder, every: int, extras: Optional[dict[str, Stateful]] = None, targets: tuple = TARGETS
) -> dict[str, Checkpoint]:
    """Make one checkpoint file per target in ``folder`` (``checkpoint-image_plus_noise.pt``...).

    Parameters
    ----------
    folder : str or Path
        The run folder.
    every : int
        Iterations between saves, >= 1.
    extras : dict of str to Stateful or None, optional
        The caller's state saved with each target's fit, ``extras[name]`` (e.g. its progress bar and snapshots).
    targets : tuple of str, optional
        Target names. Default ``TARGETS``.

    Returns
    -------
    dict of str to Checkpoint
        By target name.
    """
    extras = extras or {}
    return {
        name: Checkpoint(Path(folder) / f"checkpoint-{target_slug(name)}.pt", every, extra=extras.get(name))
        for name in targets
    }


def remove_checkpoints(checkpoints: dict[str, Checkpoint]) -> None:
    """Delete the per-target checkpoint files once the run is written (a rerun then starts afresh)."""
    for c in checkpoints.values():
        c.path.unlink(missing_ok=True)


def write_impedance_run(
    folder,
    preset: Preset,
    res: ImpedanceResult,
    *,
    snapshots: Optional[dict[str, list[Snapshot]]] = None,
    extra: Optional[dict] = None,
) -> dict:
    """Write an impedance run.

    The folder gets per-target folders (target, result, snapshots), a combined history.csv with a ``target``
    column, result.png / result_ema.png of the natural image, observed.png (the four targets side by side),
    metrics.json and config.json.

    Parameters
    ----------
    folder : str or Path
        The run folder, created if needed; an existing history.csv is replaced.
    preset : Preset
        Written as config.json.
    res : ImpedanceResult
        The targets and fits.
    snapshots : dict of str to list of Snapshot or None, optional
        Snapshots by target name.
    extra : dict or None, optional
        Metrics put first in metrics.json (the run's own keys win).

    Returns
    -------
    dict
        The metrics written; ``targets`` holds each target's final and minimum loss, iterations, seconds and
        PSNR of the fit in dB.
    """
    folder, snapshots = Path(folder), snapshots or {}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "history.csv").unlink(missing_ok=True)
    targets = {}
    for name, r in res.results.items():
        sub = folder / target_slug(name)
        write_history(r.history, folder / "history.csv", extra={"target": name})
        save_image(res.targets[name], sub / "target.png")
        save_image(r.output, sub / "result.png")
        write_snapshots(snapshots.get(name, []), sub / "snapshots")
        losses = [h.loss for h in r.history] or [float("nan")]
        targets[name] = {
            "final_loss": losses[-1],
            "min_loss": min(losses),
            "iterations": r.iterations_done,
            "seconds": round(r.seconds, 3),
            "psnr_fit": psnr(res.targets[name], r.output),
        }
        if r.resumed_from:
            targets[name]["resumed_from"] = r.resumed_from
    natural = res.results.get("image")
    cancelled = any(r.cancelled for r in res.results.values()) or len(res.results) < len(res.targets)
    metrics = {
        **(extra or {}),
        "task": "impedance",
        "preset": preset.name,
        "iterations": preset.fit.iterations,
        "parameters": natural.parameters if natural else None,
        "seconds": round(sum(r.seconds for r in res.results.values()), 3),
        "device": natural.device if natural else None,
        "seed": preset.fit.seed,
        "cancelled": cancelled,
        "shape": list(next(iter(res.targets.values())).shape),
        "psnr_observed": None,
        "psnr_final": targets["image"]["psnr_fit"] if natural else None,
        "psnr_ema": psnr(res.targets["image"], natural.ema) if natural else None,
        "psnr_best": None,
        "best_iteration": None,
        "targets": targets,
    }
    if natural is not None:
        save_image(natural.output, folder / "result.png")
        save_image(natural.ema, folder / "result_ema.png")
        write_snapshots(snapshots.get("image", []), folder / "snapshots")
    save_image(np.concatenate(list(res.targets.values()), axis=1), folder / "observed.png")
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "config.json", preset_as_dict(preset))
    return metrics
