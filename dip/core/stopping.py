"""Ground-truth-free choice of the best iterate (Wang et al., "Early Stopping for Deep Image Prior").

DIP first fits the image, then the noise. The running variance of the outputs is lowest around the turn,
so the iterate of minimum variance is a good estimate when no ground truth is known.

* ES-WMV: after every iteration t >= W, VAR(t) = (1/W) sum_w ||x_w - mean||^2 / N over the last W outputs
  x_{t-W+1} .. x_t (N = number of pixel values; the paper uses the Frobenius norm, i.e. N times this, which
  has the same minimiser). The candidate is the iterate t that closes the window of least variance, as the
  authors' code does; the run may stop once no new minimum has appeared for ``patience`` iterations.
* ES-EMV: exponential moving mean m and variance v with weight alpha (the paper's 0.1),
  ``v_t = (1 - alpha) * (v_{t-1} + alpha * ||x_t - m_{t-1}||^2 / N)``, ``m_t = m_{t-1} + alpha * (x_t - m_{t-1})``.
  Memory is O(1) in the number of iterations and in the window.

All state stays on the device of the outputs; only ``best_iteration`` and ``should_stop`` read a value back
to the host.
"""

from __future__ import annotations

from typing import Optional

import torch

from dip.core.errors import ConfigError


def pick_confirmed(pick: int, last_iteration: int, patience: int) -> bool:
    """Tell whether a blind pick is confirmed: the detector saw the fit turn.

    Parameters
    ----------
    pick : int
        Iteration of the least variance so far.
    last_iteration : int
        Last iteration scored.
    patience : int
        Iterations without a lower variance that confirm the pick.

    Returns
    -------
    bool
        True once ``patience`` iterations have passed since the pick with no lower variance. Before that the
        pick is provisional (the fit may still be improving).
    """
    return last_iteration - pick >= patience


class _Detector:
    """Shared bookkeeping: the minimum of a per-iteration score, its iterate and its image."""

    def __init__(self, patience: int):
        if patience < 1:
            raise ConfigError(f"es_patience={patience}; need at least 1 iteration (the paper uses 1000).")
        self.patience = patience
        self.best_image: Optional[torch.Tensor] = None
        self.best_var: Optional[torch.Tensor] = None
        self._best_iter: Optional[torch.Tensor] = None
        self.last_iteration = 0
        self.last_var: Optional[torch.Tensor] = None

    def _consider(self, i: int, x: torch.Tensor, var: torch.Tensor) -> None:
        self.last_iteration, self.last_var = i, var
        if self.best_var is None:
            self.best_image, self.best_var = x.clone(), var
            self._best_iter = torch.tensor(i, device=x.device)
            return
        better = var < self.best_var
        self.best_image = torch.where(better, x, self.best_image)
        self.best_var = torch.minimum(var, self.best_var)
        self._best_iter = torch.where(better, i, self._best_iter)  # a Python scalar: no host-to-device copy

    @property
    def best_iteration(self) -> Optional[int]:
        """The 1-based iteration of the least variance so far (None before the first score)."""
        return None if self._best_iter is None else int(self._best_iter)

    def should_stop(self) -> bool:
        """Return True once the variance has not reached a new minimum for ``patience`` iterations."""
        best = self.best_iteration
        return best is not None and pick_confirmed(best, self.last_iteration, self.patience)

    def state_dict(self) -> dict:
        """Return every attribute (tensors and plain numbers), for resuming a run (``dip.core.checkpoint``)."""
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        """Restore the attributes ``state_dict`` returned."""
        vars(self).update(state)

    def state_bytes(self) -> int:
        """Count the bytes held in tensors by the detector (for memory checks)."""
        return sum(t.numel() * t.element_size() for t in vars(self).values() if isinstance(t, torch.Tensor))


class WindowedVariance(_Detector):
    """ES-WMV: mean squared deviation of the last ``window`` outputs from their mean.

    The outputs are kept in a ring buffer (``window`` images). The variance is updated in O(1) image
    operations per iteration from sums of deviations from a reference image; the reference and the sums
    are recomputed exactly from the buffer every ``window`` iterations, so float32 round-off cannot build up
    over a long run (running sums of raw values lose the 1e-6-level variances late in a fit).

    Parameters
    ----------
    window : int, optional
        Outputs in the window W, >= 2. Default 100 (the paper's).
    patience : int, optional
        Iterations without a new minimum after which ``should_stop`` is True, >= 1. Default 1000 (the paper's).

    Raises
    ------
    ConfigError
        If ``window`` < 2 or ``patience`` < 1.
    """

    def __init__(self, window: int = 100, patience: int = 1000):
        super().__init__(patience)
        if window < 2:
            raise ConfigError(f"es_window={window}; the moving variance needs a window of at least 2 (paper: 100).")
        self.window = window
        self._frames: Optional[torch.Tensor] = None
        self._ref = self._s1 = self._s2 = None
        self._count = 0

    def update(self, i: int, x: torch.Tensor) -> None:
        """Add iteration ``i``'s output ``x`` (any shape) and score the window it closes."""
        x = x.detach().float()
        if self._frames is None:
            self._frames = torch.empty((self.window, *x.shape), device=x.device)
            self._ref, self._s1, self._s2 = x.clone(), torch.zeros_like(x), torch.zeros_like(x)
        slot = self._frames[self._count % self.window]
        if self._count >= self.window:  # the oldest output leaves the window
            d = slot - self._ref
            self._s1.sub_(d)
            self._s2.sub_(d * d)
        slot.copy_(x)
        d = x - self._ref
        self._s1.add_(d)
        self._s2.add_(d * d)
        self._count += 1
        if self._count % self.window == 0:
            self._recentre()
        if self._count >= self.window:
            n = float(self.window)
            var = (self._s2 / n - (self._s1 / n) ** 2).clamp_min(0).mean()
            self._consider(i, x, var)

    def _recentre(self) -> None:
        """Exact sums from the buffer around the current window mean."""
        self._ref.zero_()
        for f in self._frames:
            self._ref.add_(f)
        self._ref.div_(self.window)
        self._s1.zero_()
        self._s2.zero_()
        for f in self._frames:
            d = f - self._ref
            self._s1.add_(d)
            self._s2.addcmul_(d, d)


class ExponentialVariance(_Detector):
    """ES-EMV: exponential moving mean and variance of the outputs (O(1) memory), weight ``alpha``.

    The variance starts at 0, so the first ``warmup`` iterations are not scored (the estimate needs about
    1/alpha iterations to fill up, and the fit changes fastest at the start anyway).

    Parameters
    ----------
    alpha : float, optional
        Weight of the newest output, in (0, 1). Default 0.1 (the paper's).
    patience : int, optional
        Iterations without a new minimum after which ``should_stop`` is True, >= 1. Default 1000.
    warmup : int, optional
        Iterations not scored at the start. Default 100.

    Raises
    ------
    ConfigError
        If ``alpha`` is not in (0, 1) or ``patience`` < 1.
    """

    def __init__(self, alpha: float = 0.1, patience: int = 1000, warmup: int = 100):
        super().__init__(patience)
        if not 0.0 < alpha < 1.0:
            raise ConfigError(f"alpha={alpha}; the EMV weight must be in (0, 1) (paper: 0.1).")
        self.alpha, self.warmup = alpha, warmup
        self._mean = self._var = None
        self._count = 0

    def update(self, i: int, x: torch.Tensor) -> None:
        """Add iteration ``i``'s output ``x`` and score it once past the warm-up."""
        x = x.detach().float()
        self._count += 1
        if self._mean is None:
            self._mean, self._var = x.clone(), torch.zeros_like(x)
            return
        delta = x - self._mean
        self._mean.add_(delta, alpha=self.alpha)
        self._var.add_(delta * delta, alpha=self.alpha).mul_(1 - self.alpha)
        if self._count >= self.warmup:
            self._consider(i, x, self._var.mean())


def make_detector(kind: str, *, window: int = 100, patience: int = 1000, alpha: float = 0.1):
    """Make an early-stopping detector by name.

    Parameters
    ----------
    kind : {"wmv", "emv", "none"}
        ``WindowedVariance`` (window ``window``), ``ExponentialVariance`` (weight ``alpha``, warm-up ``window``)
        or no detector.
    window : int, optional
        Window (ES-WMV) or warm-up (ES-EMV) in iterations. Default 100.
    patience : int, optional
        Iterations without a new minimum after which ``should_stop`` is True. Default 1000.
    alpha : float, optional
        ES-EMV weight in (0, 1). Default 0.1.

    Returns
    -------
    WindowedVariance, ExponentialVariance or None
        None for "none".

    Raises
    ------
    ConfigError
        If ``kind`` is unknown or a setting is out of range.
    """
    if kind == "wmv":
        return WindowedVariance(window, patience)
    if kind == "emv":
        return ExponentialVariance(alpha, patience=patience, warmup=window)
    if kind == "none":
        return None
    raise ConfigError(f"early_stop={kind!r}; choose wmv, emv or none.")
