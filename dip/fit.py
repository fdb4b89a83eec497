"""The one Deep Image Prior loop: fit f_theta(z + noise) so that op(f_theta(z)) matches the observation y.

Every task is this loop with a different forward operator (identity, Lanczos downsampler, mask). Per-step
metrics stay on the device and are read back every ``sync_every`` iterations, so a GPU is not stalled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dip.device import autocast_dtype, pick_device, tune_allocator
from dip.errors import ConfigError
from dip.metrics import psnr_from_mse
from dip.models import count_parameters
from dip.stopping import make_detector


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings. Defaults are the lab's denoising preset.

    precision: "fp32", "bf16", "fp16" or "auto" (bf16 on CPUs with native bf16 and on CUDA, else fp32).
    final_input: the input of the extra forward pass that gives the final image, "perturbed" (the last
    z + noise, as the official denoising/SR notebooks) or "clean" (z, as the inpainting notebook).
    early_stop: ground-truth-free detector of the best iterate, "wmv", "emv" or "none";
    stop_at_blind ends the run when it has not improved for ``es_patience`` iterations.
    """

    iterations: int = 1800
    lr: float = 0.01
    reg_noise_std: float = 1.0 / 30.0
    exp_weight: float = 0.99
    backtrack: bool = False
    backtrack_threshold_db: float = 5.0
    seed: int = 0
    snapshot_every: int = 100
    final_input: str = "perturbed"
    precision: str = "fp32"
    channels_last: bool = False
    sync_every: int = 0  # 0: every iteration on CPU, every 25 on GPU
    early_stop: str = "wmv"
    es_window: int = 100
    es_patience: int = 1000
    stop_at_blind: bool = False

    def __post_init__(self):
        if self.iterations < 1:
            raise ConfigError(f"iterations={self.iterations}; need at least 1.")
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr}; the learning rate must be positive, e.g. 0.01.")
        if self.reg_noise_std < 0:
            raise ConfigError(f"reg_noise_std={self.reg_noise_std}; must be >= 0 (the lab uses 1/30).")
        if not 0.0 <= self.exp_weight < 1.0:
            raise ConfigError(f"exp_weight={self.exp_weight}; expected a value in [0, 1), e.g. 0.99.")
        if self.snapshot_every < 1:
            raise ConfigError(f"snapshot_every={self.snapshot_every}; need at least 1.")
        if self.final_input not in ("perturbed", "clean"):
            raise ConfigError(f"final_input={self.final_input!r}; choose 'perturbed' or 'clean'.")
        if self.precision not in ("fp32", "bf16", "fp16", "auto"):
            raise ConfigError(f"precision={self.precision!r}; choose fp32, bf16, fp16 or auto.")
        if self.early_stop not in ("wmv", "emv", "none"):
            raise ConfigError(f"early_stop={self.early_stop!r}; choose wmv, emv or none.")


@dataclass(frozen=True)
class StepRecord:
    """Metrics of one iteration. PSNRs in dB; ``*_true`` are None without ground truth."""

    iteration: int
    loss: float
    psnr_observed: float  # of op(x) against the observation y
    psnr_true: Optional[float] = None  # of x against the ground truth
    psnr_ema_true: Optional[float] = None  # of the moving average of outputs against the ground truth
    backtracked: bool = False


@dataclass(frozen=True)
class Snapshot:
    """The current output and its moving average as float32 (H, W, C) arrays in [0, 1]."""

    iteration: int
    image: np.ndarray
    ema: np.ndarray


@dataclass
class FitResult:
    """Everything a run produced. Images are float32 (H, W, C) in [0, 1]."""

    output: np.ndarray
    ema: np.ndarray
    history: list = field(default_factory=list)
    best: Optional[np.ndarray] = None
    best_iteration: Optional[int] = None
    blind: Optional[np.ndarray] = None
    blind_iteration: Optional[int] = None
    iterations_done: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    device: str = "cpu"
    parameters: int = 0


def to_tensor(x: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, C) float array -> (1, C, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))[None].to(device)


def to_image(t: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) tensor -> (H, W, C) float32 array."""
    return t.detach()[0].float().cpu().numpy().transpose(1, 2, 0).copy()


class _Tracker:
    """On-device bookkeeping: EMA of outputs, oracle best iterate, blind detector; no host sync per step."""

    def __init__(self, cfg: FitConfig, x_true: Optional[torch.Tensor]):
        self.cfg, self.x_true = cfg, x_true
        self.ema = None
        self.best = self.best_mse = self.best_iter = None
        self.detector = make_detector(cfg.early_stop, window=cfg.es_window, patience=cfg.es_patience)

    def update(self, i: int, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.detach().float()
        w = self.cfg.exp_weight
        self.ema = x.clone() if self.ema is None else self.ema.mul_(w).add_(x, alpha=1 - w)
        if self.detector is not None:
            self.detector.update(i, x)
        if self.x_true is None:
            return []
        mse, mse_ema = F.mse_loss(x, self.x_true), F.mse_loss(self.ema, self.x_true)
        if self.best is None:
            self.best, self.best_mse = x.clone(), mse
            self.best_iter = torch.tensor(i, device=x.device)
        else:
            better = mse < self.best_mse
            self.best = torch.where(better, x, self.best)
            self.best_mse = torch.minimum(mse, self.best_mse)
            self.best_iter = torch.where(better, torch.tensor(i, device=x.device), self.best_iter)
        return [mse, mse_ema]


def _perturb(z: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    if std <= 0:
        return z
    return z + std * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)


def fit(net: nn.Module, z: torch.Tensor, y: torch.Tensor, op: nn.Module, config: FitConfig = FitConfig(), *,
        x_true: Optional[torch.Tensor] = None,
        on_step: Optional[Callable[[StepRecord], None]] = None,
        on_snapshot: Optional[Callable[[Snapshot], None]] = None,
        should_stop: Optional[Callable[[], bool]] = None,
        device: torch.device | str | None = None) -> FitResult:
    """Minimise mean((op(net(z + sigma_p * n_t)) - y)^2) over the weights of ``net`` with Adam.

    Parameters
    ----------
    net : the generator; its weights are optimised in place.
    z : (1, C_z, H, W) fixed input code.
    y : observation, shaped like ``op(net(z))``; values in [0, 1].
    op : forward operator (``dip.operators``).
    x_true : optional (1, C, H, W) ground truth; enables PSNR against it and the oracle best iterate.
    on_step : called with every iteration's StepRecord (in batches of ``sync_every``).
    on_snapshot : called every ``snapshot_every`` iterations and at the last one.
    should_stop : polled every iteration; returning True cancels the run (the result so far is returned).
    device : "cuda", "mps", "cpu" or None for the best available.
    """
    dev = pick_device(device)
    if dev.type == "cpu":
        tune_allocator()
    cfg = config
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed + 1)
    mem = torch.channels_last if cfg.channels_last else torch.contiguous_format
    net = net.to(dev, memory_format=mem)
    op, z, y = op.to(dev), z.to(dev, memory_format=mem), y.to(dev)
    x_true = x_true.to(dev) if x_true is not None else None
    amp = autocast_dtype(cfg.precision, dev)
    # Backtracking decides per iteration, so it needs every step's metrics at once.
    sync_every = 1 if cfg.backtrack else cfg.sync_every or (1 if dev.type == "cpu" else 25)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    tracker = _Tracker(cfg, x_true)
    result = FitResult(output=np.zeros(0), ema=np.zeros(0), device=str(dev), parameters=count_parameters(net))
    pending: list[tuple[int, list[torch.Tensor]]] = []
    checkpoint = candidate = _copy_weights(net) if cfg.backtrack else None
    last_psnr = None
    start = time.perf_counter()
    z_in = z
    for i in range(1, cfg.iterations + 1):
        if should_stop is not None and should_stop():
            result.cancelled = True
            break
        z_in = _perturb(z, cfg.reg_noise_std, gen)
        if cfg.backtrack:
            candidate = _copy_weights(net)  # the weights that produce this iteration's output
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            x = net(z_in)
        x = x.float()
        loss = F.mse_loss(op(x), y)
        loss.backward()
        optimizer.step()
        pending.append((i, [loss.detach(), *tracker.update(i, x)]))
        result.iterations_done = i
        if i % cfg.snapshot_every == 0 and on_snapshot is not None:
            on_snapshot(Snapshot(i, to_image(x).clip(0, 1), to_image(tracker.ema).clip(0, 1)))
        if len(pending) >= sync_every or i == cfg.iterations:
            last_psnr, rolled_back = _flush(pending, result, on_step, net, checkpoint, last_psnr, cfg)
            pending = []
            if cfg.backtrack and not rolled_back:
                checkpoint = candidate
            if cfg.stop_at_blind and tracker.detector is not None and tracker.detector.should_stop():
                break
    if pending:
        _flush(pending, result, on_step, net, checkpoint, last_psnr, cfg)
    _finish(result, net, z, z_in, tracker, cfg, amp, dev, on_snapshot)
    result.seconds = time.perf_counter() - start
    return result


def _copy_weights(net: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _flush(pending, result, on_step, net, checkpoint, last_psnr, cfg):
    """Read buffered metrics in one transfer, emit records, and backtrack on a sudden PSNR drop."""
    values = torch.stack([torch.stack(v) for _, v in pending]).cpu().numpy().astype(np.float64)
    rolled_back = False
    for (i, _), row in zip(pending, values):
        psnr_obs = psnr_from_mse(row[0])
        drop = cfg.backtrack and last_psnr is not None and psnr_obs - last_psnr < -cfg.backtrack_threshold_db
        if drop and not rolled_back:
            # The official notebooks restore the last good weights when the fit to y collapses.
            net.load_state_dict(checkpoint)
            rolled_back = True
        else:
            last_psnr = psnr_obs
        rec = StepRecord(i, float(row[0]), psnr_obs,
                         psnr_from_mse(row[1]) if len(row) > 1 else None,
                         psnr_from_mse(row[2]) if len(row) > 2 else None, bool(drop))
        result.history.append(rec)
        if on_step is not None:
            on_step(rec)
    return last_psnr, rolled_back


@torch.no_grad()
def _finish(result, net, z, z_last, tracker, cfg, amp, dev, on_snapshot):
    final_in = z_last if cfg.final_input == "perturbed" else z
    with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
        x = net(final_in).float()
    result.output = to_image(x).clip(0, 1)
    result.ema = to_image(tracker.ema).clip(0, 1) if tracker.ema is not None else result.output
    if tracker.best is not None:
        result.best = to_image(tracker.best).clip(0, 1)
        result.best_iteration = int(tracker.best_iter)
    det = tracker.detector
    if det is not None and det.best_image is not None:
        result.blind = to_image(det.best_image).clip(0, 1)
        result.blind_iteration = int(det.best_iteration)
    n = result.iterations_done
    if on_snapshot is not None and n and n % cfg.snapshot_every:
        on_snapshot(Snapshot(n, result.output, result.ema))
