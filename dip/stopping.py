"""Ground-truth-free choice of the best iterate (Wang et al., "Early Stopping for Deep Image Prior").

DIP first fits the image, then the noise. The running variance of the outputs is lowest around the turn,
so the iterate of minimum variance is a good estimate when no ground truth is known. State stays on the
device; only ``should_stop`` reads a value back to the host.
"""

from __future__ import annotations

from collections import deque
from typing import Optional

import torch


class _Detector:
    def __init__(self, patience: int):
        self.patience = patience
        self.best_image: Optional[torch.Tensor] = None
        self.best_var: Optional[torch.Tensor] = None
        self._best_iter: Optional[torch.Tensor] = None
        self.last_iteration = 0

    def _consider(self, i: int, x: torch.Tensor, var: torch.Tensor) -> None:
        self.last_iteration = i
        it = torch.tensor(i, device=x.device)
        if self.best_var is None:
            self.best_image, self.best_var, self._best_iter = x.clone(), var, it
            return
        better = var < self.best_var
        self.best_image = torch.where(better, x, self.best_image)
        self.best_var = torch.minimum(var, self.best_var)
        self._best_iter = torch.where(better, it, self._best_iter)

    @property
    def best_iteration(self) -> Optional[int]:
        return None if self._best_iter is None else int(self._best_iter)

    def should_stop(self) -> bool:
        """True once the variance has not reached a new minimum for ``patience`` iterations."""
        best = self.best_iteration
        return best is not None and self.last_iteration - best >= self.patience


class WindowedVariance(_Detector):
    """ES-WMV: mean squared deviation of the last ``window`` outputs from their mean (O(window) memory)."""

    def __init__(self, window: int = 100, patience: int = 1000):
        super().__init__(patience)
        self.window = window
        self._frames: deque = deque()
        self._sum = self._sum_sq = None

    def update(self, i: int, x: torch.Tensor) -> None:
        x = x.detach().float()
        if self._sum is None:
            self._sum, self._sum_sq = torch.zeros_like(x), torch.zeros_like(x)
        self._frames.append(x.clone())
        self._sum += x
        self._sum_sq += x * x
        if len(self._frames) > self.window:
            old = self._frames.popleft()
            self._sum -= old
            self._sum_sq -= old * old
        if len(self._frames) == self.window:
            n = float(self.window)
            var = (self._sum_sq / n - (self._sum / n) ** 2).clamp_min(0).mean()
            self._consider(i, x, var)


class ExponentialVariance(_Detector):
    """ES-EMV: exponential moving mean and variance of the outputs (O(1) memory), weight ``alpha``."""

    def __init__(self, alpha: float = 0.1, patience: int = 1000, warmup: int = 100):
        super().__init__(patience)
        self.alpha, self.warmup = alpha, warmup
        self._mean = self._var = None
        self._count = 0

    def update(self, i: int, x: torch.Tensor) -> None:
        x = x.detach().float()
        self._count += 1
        if self._mean is None:
            self._mean, self._var = x.clone(), torch.zeros_like(x)
            return
        delta = x - self._mean
        self._mean += self.alpha * delta
        self._var.mul_(1 - self.alpha).add_((1 - self.alpha) * self.alpha * delta * delta)
        if self._count >= self.warmup:  # skip the transient while the variance estimate fills up
            self._consider(i, x, self._var.mean())


def make_detector(kind: str, *, window: int = 100, patience: int = 1000):
    """"wmv", "emv" or "none" (returns None)."""
    if kind == "wmv":
        return WindowedVariance(window, patience)
    if kind == "emv":
        return ExponentialVariance(patience=patience, warmup=window)
    return None
