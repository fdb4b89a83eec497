"""Noise impedance (paper Fig. 2): the same network fits a natural image much faster than noise.

Four targets are fitted with the identity operator: the image, the image plus Gaussian noise, the image with
its pixels shuffled, and U(0, 1) noise. The loss of every iteration is recorded for each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from dip import degrade
from dip.fit import FitResult, Snapshot, StepRecord
from dip.presets import Preset
from dip.tasks import Problem, solve
from dip.operators import Identity

TARGETS = ("image", "image + noise", "shuffled pixels", "noise")


def make_targets(x: np.ndarray, *, sigma_255: float = 25.0, seed: int = 0) -> dict[str, np.ndarray]:
    """The four fitting targets of Fig. 2 from an (H, W, C) image in [0, 1], in ``TARGETS`` order."""
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
    """Per-target fit results; ``losses[name]`` is the loss at every iteration."""

    targets: dict[str, np.ndarray]
    results: dict[str, FitResult] = field(default_factory=dict)

    @property
    def losses(self) -> dict[str, list[float]]:
        return {name: [r.loss for r in res.history] for name, res in self.results.items()}

    def loss_at(self, iteration: int) -> dict[str, float]:
        """Each target's loss at ``iteration`` (1-based), or its last loss if it stopped earlier."""
        return {name: l[min(iteration, len(l)) - 1] for name, l in self.losses.items() if l}

    def relative_loss_at(self, iteration: int) -> dict[str, float]:
        """Loss divided by the target's variance: the fraction of it still unexplained (1 = nothing fitted)."""
        return {name: v / float(self.targets[name].var()) for name, v in self.loss_at(iteration).items()}

    def iterations_to_reach(self, loss: float) -> dict[str, Optional[int]]:
        """First iteration at which each target's loss is at or below ``loss`` (None if never)."""
        return {name: next((i + 1 for i, v in enumerate(l) if v <= loss), None) for name, l in self.losses.items()}


def run_impedance(preset: Preset, x: np.ndarray, *, targets: tuple = TARGETS, device: Optional[str] = None,
                  on_step: Optional[Callable[[str, StepRecord], None]] = None,
                  on_snapshot: Optional[Callable[[str, Snapshot], None]] = None,
                  should_stop: Optional[Callable[[], bool]] = None) -> ImpedanceResult:
    """Fit each target in turn with the preset's network and fit settings (lab: 2400 iterations each)."""
    all_targets = make_targets(x, sigma_255=preset.sigma_255, seed=preset.fit.seed)
    out = ImpedanceResult({k: all_targets[k] for k in targets})
    for name, target in out.targets.items():
        problem = Problem("impedance", target, Identity(), target.shape, x_true=target, degraded=target)
        out.results[name] = solve(
            preset, problem, device=device, should_stop=should_stop,
            on_step=(lambda r, n=name: on_step(n, r)) if on_step else None,
            on_snapshot=(lambda s, n=name: on_snapshot(n, s)) if on_snapshot else None)
        if out.results[name].cancelled:
            break
    return out
