"""The one Deep Image Prior loop: fit f_theta(z + noise) so that op(f_theta(z)) matches the observation y.

Every task is this loop with a different forward operator (identity, Lanczos downsampler, mask). Per-step
metrics, the EMA, the best iterate and backtracking all stay on the device; values are read back every
``sync_every`` iterations, so a GPU is not stalled. ``FitStep`` is one iteration; the benchmark
(``dip.lab.bench``) times exactly that object.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dip.core import checkpoint as ckpt
from dip.core.checkpoint import Checkpoint
from dip.core.device import (
    PRECISION_NAMES,
    autocast_dtype,
    pick_device,
    prefers_channels_last,
    release_memory,
    slow_precision_note,
    tune_allocator,
    tune_threads,
)
from dip.core.errors import ConfigError
from dip.core.metrics import psnr_from_mse
from dip.core.models import count_parameters
from dip.core.stopping import make_detector


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings. Defaults are the lab's denoising preset.

    Parameters
    ----------
    iterations : int
        Number of Adam steps, >= 1. Default 1800.
    lr : float
        Adam learning rate, > 0. Default 0.01.
    reg_noise_std : float
        sigma_p, the standard deviation of the fresh noise added to z at every iteration, >= 0. Default 1/30.
    exp_weight : float
        Weight in [0, 1) of the moving average (EMA) of the outputs. Default 0.99.
    backtrack : bool
        Use the official notebooks' backtracking: roll back an iteration whose PSNR against the observation
        collapses. Default False.
    backtrack_threshold_db : float
        The collapse that triggers it, in dB. Default 5.
    seed : int
        Seed of torch (weights, z) and, plus 1, of the input-noise generator. Default 0.
    snapshot_every : int
        Iterations between snapshots, >= 1. Default 100.
    final_input : {"perturbed", "clean"}
        The input of the extra forward pass that gives the final image, "perturbed" (the last z + noise, as the
        official denoising/SR notebooks) or "clean" (z, as the inpainting notebook).
    precision : {"auto", "fp32", "bf16", "fp16"}
        "auto" is bf16 autocast on CPUs with native bf16 and on CUDA, fp16 on CUDA without bf16, else fp32.
        On a 2-core AVX512-BF16 CPU it halves the time of the lab iterations at 256 and 512 px without costing
        PSNR (docs/benchmark.md).
    channels_last : bool or None
        NHWC activations, or None (default) for NHWC only where it pays: with bf16/fp16 autocast (oneDNN's and
        the tensor cores' fast kernels are NHWC) and on CUDA. Plain float32 on a CPU stays NCHW: on a 2-core
        AVX2 CPU, NHWC float32 convolutions ran at 39 GFLOP/s against 64 for NCHW (docs/benchmark.md).
    sync_every : int
        Iterations between reads of the metrics back to the host; 0 (default): every iteration on CPU, every
        25 on GPU.
    early_stop : {"wmv", "emv", "none"}
        Ground-truth-free detector of the best iterate (``dip.core.stopping``). Default "wmv".
    es_window : int
        The detector's window (ES-WMV) or warm-up (ES-EMV) in iterations. Default 100.
    es_patience : int
        Iterations without a new variance minimum after which the pick is confirmed. Default 1000.
    stop_at_blind : bool
        End the run once the detector has not improved for ``es_patience`` iterations. Default False.

    Raises
    ------
    ConfigError
        If a setting is out of range or not one of its choices.
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
    precision: str = "auto"
    channels_last: Optional[bool] = None
    sync_every: int = 0  # 0: every iteration on CPU, every 25 on GPU
    early_stop: str = "wmv"
    es_window: int = 100
    es_patience: int = 1000
    stop_at_blind: bool = False

    def __post_init__(self):
        """Validate the settings (raises ``ConfigError``)."""
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
        if self.sync_every < 0:
            raise ConfigError(f"sync_every={self.sync_every}; use 0 (automatic) or a positive number of iterations.")
        if self.early_stop not in ("wmv", "emv", "none"):
            raise ConfigError(f"early_stop={self.early_stop!r}; choose wmv, emv or none.")


@dataclass(frozen=True)
class StepRecord:
    """Metrics of one iteration. PSNRs in dB; ``*_true`` are None without ground truth.

    Attributes
    ----------
    iteration : int
        1-based iteration.
    loss : float
        Mean squared error of op(x) against the observation y.
    psnr_observed : float
        PSNR of op(x) against y.
    psnr_true, psnr_ema_true : float or None
        PSNR of x, and of the moving average of outputs, against the ground truth.
    backtracked : bool
        Whether backtracking rolled this iteration back.
    """

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

    def to_state(self) -> list:
        """Return the snapshot as checkpoint data (tensors and numbers only): [iteration, image, ema]."""
        return [self.iteration, torch.from_numpy(self.image), torch.from_numpy(self.ema)]

    @classmethod
    def from_state(cls, state: list) -> Snapshot:
        """Rebuild a snapshot from ``to_state``'s list (tensors on any device)."""
        iteration, image, ema = state
        return cls(iteration, image.cpu().numpy(), ema.cpu().numpy())


@dataclass
class FitResult:
    """Everything a run produced. Images are float32 (H, W, C) in [0, 1].

    Attributes
    ----------
    output : ndarray
        The final image (see ``FitConfig.final_input``).
    ema : ndarray
        The moving average of the outputs.
    history : list of StepRecord
        One record per iteration, earlier runs' included after a resume.
    best : ndarray or None
        Oracle best iterate against the ground truth (None without ground truth).
    best_iteration : int or None
        Its 1-based iteration.
    blind : ndarray or None
        The early-stopping detector's pick (None with ``early_stop="none"``).
    blind_iteration : int or None
        Its 1-based iteration.
    blind_confirmed : bool or None
        True once no lower variance came for ``es_patience`` iterations: the detector saw the fit turn. False
        leaves the pick provisional (the fit may still have been improving).
    iterations_done : int
        Iterations run, earlier runs' included.
    cancelled : bool
        Whether ``should_stop`` ended the run.
    seconds : float
        Wall-clock time of the fit in s, earlier runs' included.
    device : str
        The device it ran on, e.g. "cpu" or "cuda:0".
    precision : str
        The arithmetic the fit ran in: "fp32", or "bf16" / "fp16" autocast.
    parameters : int
        Trainable parameters of the network.
    resumed_from : int
        The checkpoint's iteration when the run continued an earlier one, else 0.
    """

    output: np.ndarray
    ema: np.ndarray
    history: list = field(default_factory=list)
    best: Optional[np.ndarray] = None
    best_iteration: Optional[int] = None
    blind: Optional[np.ndarray] = None
    blind_iteration: Optional[int] = None
    # True once no lower variance came for es_patience iterations: the detector saw the fit turn. A run that ends
    # sooner leaves the pick provisional (the fit may still have been improving).
    blind_confirmed: Optional[bool] = None
    iterations_done: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    device: str = "cpu"
    precision: str = "fp32"  # the arithmetic the fit ran in: "fp32", or "bf16" / "fp16" autocast
    parameters: int = 0
    resumed_from: int = 0  # the checkpoint's iteration when the run continued an earlier one


def to_tensor(x: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Convert an (H, W, C) float array to a (1, C, H, W) float32 tensor.

    Parameters
    ----------
    x : ndarray
        Image (H, W, C).
    device : torch.device or str, optional
        Where the tensor goes. Default "cpu".

    Returns
    -------
    Tensor
        float32 (1, C, H, W) on ``device``.
    """
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))[None].to(device)


def to_image(t: torch.Tensor) -> np.ndarray:
    """Convert a (1, C, H, W) tensor to an (H, W, C) float32 array.

    Parameters
    ----------
    t : Tensor
        (1, C, H, W) on any device, any float dtype.

    Returns
    -------
    ndarray
        float32 (H, W, C), a copy on the host (not clipped).
    """
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
            self.best_iter = torch.where(better, i, self.best_iter)  # a Python scalar: no host-to-device copy
        return [mse, mse_ema]

    def state_dict(self) -> dict:
        return {
            "ema": self.ema,
            "best": self.best,
            "best_mse": self.best_mse,
            "best_iter": self.best_iter,
            "detector": self.detector.state_dict() if self.detector is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.ema, self.best = state["ema"], state["best"]
        self.best_mse, self.best_iter = state["best_mse"], state["best_iter"]
        if self.detector is not None:
            self.detector.load_state_dict(state["detector"])


def _perturb(z: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    if std <= 0:
        return z
    return z + std * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)


def uses_channels_last(config: FitConfig, dev: torch.device) -> bool:
    """Decide whether a fit runs NHWC: ``config.channels_last``, or where it is None, whether it pays off.

    Parameters
    ----------
    config : FitConfig
        Its ``channels_last`` and ``precision``.
    dev : torch.device
        The device the fit runs on.

    Returns
    -------
    bool
        True for NHWC (channels-last) activations.
    """
    if config.channels_last is not None:
        return config.channels_last
    return prefers_channels_last(autocast_dtype(config.precision, dev), dev)


_DTYPES = {name: dtype for dtype, name in PRECISION_NAMES.items()}


class FitStep:
    """One iteration on the device: z' = z + sigma_p * noise, x = net(z'), loss = mse(op(x), y), backward, Adam.

    Built once per run, it holds what the iterations share (optimizer, noise generator, autocast dtype,
    gradient scaler), so ``fit`` and the benchmark time the same work. ``net`` is moved to ``dev`` (NHWC where
    ``channels_last`` says so) and its weights are optimised in place.

    Parameters
    ----------
    net : nn.Module
        The generator.
    z : Tensor
        Fixed input code (1, C_z, H, W).
    y : Tensor
        Observation, shaped like ``op(net(z))``, values in [0, 1].
    op : nn.Module
        Forward operator (``dip.core.operators``).
    config : FitConfig
        Settings: learning rate, ``reg_noise_std``, seed, precision, channels_last.
    dev : torch.device
        Device to run on.
    continues : dict or None, optional
        The saved state of the step this one goes on with (a checkpoint's ``"step"``); its precision and
        memory format are kept even where "auto" would resolve otherwise.

    Warns
    -----
    RuntimeWarning
        When an explicitly chosen reduced precision has no hardware path on this CPU.
    """

    def __init__(
        self,
        net: nn.Module,
        z: torch.Tensor,
        y: torch.Tensor,
        op: nn.Module,
        config: FitConfig,
        dev: torch.device,
        continues: Optional[dict] = None,
    ):
        """Set up the step; see the class docstring for the parameters."""
        self.config, self.dev = config, dev
        note = slow_precision_note(config.precision, dev)
        if note is not None:
            warnings.warn(note, RuntimeWarning, stacklevel=2)
        amp = autocast_dtype(config.precision, dev)
        self.channels_last = uses_channels_last(config, dev)
        if continues is not None:
            # "auto" resolves per machine (bf16 and NHWC only on CPUs with native bf16): a run continued on
            # another machine keeps the arithmetic it began in, so its numbers are those of one precision.
            # Both are absent in the first checkpoints (2026-11-30), which ran in NHWC.
            amp = _DTYPES[continues.get("precision", PRECISION_NAMES[amp])]
            self.channels_last = continues.get("channels_last", True)
        mem = torch.channels_last if self.channels_last else torch.contiguous_format
        self.net = net.to(dev, memory_format=mem)
        self.op, self.y = op.to(dev), y.to(dev)
        self.z = self.z_in = z.to(dev, memory_format=mem)
        self.generator = torch.Generator(device=dev).manual_seed(config.seed + 1)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self._use(amp)

    def _use(self, amp: Optional[torch.dtype]) -> None:
        self.amp = amp
        # float16 gradients of a small MSE underflow without loss scaling; bfloat16 has float32's range.
        self.scaler = torch.amp.GradScaler(self.dev.type) if amp == torch.float16 else None

    @property
    def precision(self) -> str:
        """The arithmetic the step runs in: "fp32", or "bf16" / "fp16" autocast."""
        return PRECISION_NAMES[self.amp]

    def forward(self, z_in: torch.Tensor) -> torch.Tensor:
        """Compute net(z_in) under the configured autocast, returned as float32 (the loss and metrics stay float32).

        Parameters
        ----------
        z_in : Tensor
            Network input (1, C_z, H, W) on the step's device.

        Returns
        -------
        Tensor
            float32 (1, C, H, W) output, in (0, 1) with the sigmoid.
        """
        with torch.autocast(self.dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            return self.net(z_in).float()

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Run one iteration.

        Returns
        -------
        x : Tensor
            float32 output (1, C, H, W) of the perturbed input, detached and still on the device.
        loss : Tensor
            0-d mean squared error of op(x) against y, detached and still on the device.
        """
        self.z_in = _perturb(self.z, self.config.reg_noise_std, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        x = self.forward(self.z_in)
        loss = F.mse_loss(self.op(x), self.y)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return x.detach(), loss.detach()

    def state_dict(self) -> dict:
        """Return the step's state for a checkpoint: weights, Adam, noise generator, last input, precision."""
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "z_in": self.z_in,
            "precision": self.precision,
            "channels_last": self.channels_last,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the state ``state_dict`` returned (precision and memory format are set at construction)."""
        self.net.load_state_dict(state["net"])  # copies in place: aliases of the weights stay valid
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.z_in = state["z_in"]
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])


class _Backtracker:
    """The official notebooks' backtracking, decided on the device so that no iteration waits for a host read.

    When the PSNR of op(x) against y falls more than ``threshold_db`` below that of the last accepted
    iteration, the weights and batch-norm buffers go back to those that produced the accepted output.
    """

    def __init__(self, net: nn.Module, threshold_db: float):
        self.threshold_db = threshold_db
        self.state = list(net.state_dict().values())  # aliases of the live tensors, written in place
        self.accepted = [t.clone() for t in self.state]  # weights that produced the last accepted output
        self.candidate = [t.clone() for t in self.state]  # weights that produce the current output
        self.last_psnr = None

    @torch.no_grad()
    def before_step(self) -> None:
        for c, t in zip(self.candidate, self.state):
            c.copy_(t)

    @torch.no_grad()
    def after_step(self, loss: torch.Tensor) -> torch.Tensor:
        """Roll back if this iteration collapsed; returns that decision as a 0-d bool tensor on the device."""
        psnr = -10.0 * torch.log10(loss.float())
        if self.last_psnr is None:
            self.last_psnr = torch.full_like(psnr, -float("inf"))  # the first iteration is always accepted
        drop = psnr - self.last_psnr < -self.threshold_db
        for t, a, c in zip(self.state, self.accepted, self.candidate):
            t.copy_(torch.where(drop, a, t))
            a.copy_(torch.where(drop, a, c))
        self.last_psnr = torch.where(drop, self.last_psnr, psnr)
        return drop

    def state_dict(self) -> dict:
        return {"accepted": self.accepted, "candidate": self.candidate, "last_psnr": self.last_psnr}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for mine, saved in ((self.accepted, state["accepted"]), (self.candidate, state["candidate"])):
            for t, s in zip(mine, saved):
                t.copy_(s)
        self.last_psnr = state["last_psnr"]


def fit(
    net: nn.Module,
    z: torch.Tensor,
    y: torch.Tensor,
    op: nn.Module,
    config: FitConfig = FitConfig(),
    *,
    x_true: Optional[torch.Tensor] = None,
    on_step: Optional[Callable[[StepRecord], None]] = None,
    on_snapshot: Optional[Callable[[Snapshot], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    device: torch.device | str | None = None,
    checkpoint: Optional[Checkpoint] = None,
) -> FitResult:
    """Minimise mean((op(net(z + sigma_p * n_t)) - y)^2) over the weights of ``net`` with Adam.

    Parameters
    ----------
    net : nn.Module
        The generator; its weights are optimised in place.
    z : Tensor
        (1, C_z, H, W) fixed input code.
    y : Tensor
        Observation, shaped like ``op(net(z))``; values in [0, 1].
    op : nn.Module
        Forward operator (``dip.core.operators``).
    config : FitConfig, optional
        Optimisation settings. Default ``FitConfig()``.
    x_true : Tensor or None, optional
        (1, C, H, W) ground truth in [0, 1]; enables PSNR against it and the oracle best iterate.
    on_step : callable or None, optional
        Called with the StepRecord of every iteration this call runs (in batches of ``sync_every``);
        after a resume, ``result.history`` also holds the earlier ones.
    on_snapshot : callable or None, optional
        Called with a ``Snapshot`` every ``snapshot_every`` iterations and at the last one.
    should_stop : callable or None, optional
        Polled every iteration; returning True cancels the run (the result so far is returned).
    device : torch.device, str or None, optional
        "cuda", "mps", "cpu" or None for the best available.
    checkpoint : Checkpoint or None, optional
        Save the loop's state there every ``checkpoint.every`` iterations, and continue from it when it exists
        (``dip.core.checkpoint``). The caller removes it.

    Returns
    -------
    FitResult
        Final image, EMA, history, best and blind iterates, timing.

    Raises
    ------
    ConfigError
        When the checkpoint belongs to another run or cannot be read.
    """
    dev = pick_device(device)
    if dev.type == "cpu":
        tune_allocator()
        tune_threads()
    cfg = config
    torch.manual_seed(cfg.seed)
    identity = ckpt.fingerprint(cfg, count_parameters(net), z, y) if checkpoint is not None else None
    saved = ckpt.load(checkpoint.path, identity, dev) if checkpoint is not None else None
    step = FitStep(net, z, y, op, cfg, dev, continues=saved["step"] if saved is not None else None)
    x_true = x_true.to(dev) if x_true is not None else None
    sync_every = cfg.sync_every or (1 if dev.type == "cpu" else 25)
    tracker = _Tracker(cfg, x_true)
    backtracker = _Backtracker(step.net, cfg.backtrack_threshold_db) if cfg.backtrack else None
    result = FitResult(output=np.zeros(0), ema=np.zeros(0), device=str(dev), parameters=count_parameters(net))
    pending: list[tuple[int, list[torch.Tensor]]] = []
    parts = {
        "step": step,
        "tracker": tracker,
        "backtracker": backtracker,
        "extra": checkpoint.extra if checkpoint is not None else None,
    }
    if saved is not None:
        _resume(saved, parts, result)
    result.precision = step.precision  # after a resume: the arithmetic the run began in
    try:
        start = time.perf_counter() - result.seconds
        for i in range(result.iterations_done + 1, cfg.iterations + 1):
            if should_stop is not None and should_stop():
                result.cancelled = True
                break
            if backtracker is not None:
                backtracker.before_step()
            x, loss = step()
            rolled_back = backtracker.after_step(loss).to(loss.dtype) if backtracker is not None else loss.new_zeros(())
            pending.append((i, [loss, rolled_back, *tracker.update(i, x)]))
            result.iterations_done = i
            if i % cfg.snapshot_every == 0 and on_snapshot is not None:
                on_snapshot(Snapshot(i, to_image(x).clip(0, 1), to_image(tracker.ema).clip(0, 1)))
            save_now = checkpoint is not None and i % checkpoint.every == 0 and i < cfg.iterations
            if len(pending) >= sync_every or i == cfg.iterations or save_now:
                _flush(pending, result, on_step)
                pending = []
                if save_now:
                    result.seconds = time.perf_counter() - start
                    _save(checkpoint, identity, parts, result)
                if cfg.stop_at_blind and tracker.detector is not None and tracker.detector.should_stop():
                    break
        if pending:
            _flush(pending, result, on_step)
        _finish(result, step, tracker, cfg, on_snapshot)
    finally:
        release_memory()  # the pages kept across iterations (tune_allocator), handed back when the fit ends
    result.seconds = time.perf_counter() - start
    return result


def _save(checkpoint: Checkpoint, identity: dict, parts: dict, result: FitResult) -> None:
    state = {name: part.state_dict() for name, part in parts.items() if part is not None}
    ckpt.save(
        checkpoint.path,
        {
            "fingerprint": identity,
            "iteration": result.iterations_done,
            "seconds": result.seconds,
            **state,
            "history": [dataclasses.astuple(r) for r in result.history],
        },
    )


def _resume(state: dict, parts: dict, result: FitResult) -> None:
    for name, part in parts.items():
        if part is not None:
            part.load_state_dict(state[name])
    result.history = [StepRecord(*row) for row in state["history"]]
    result.iterations_done = result.resumed_from = state["iteration"]
    result.seconds = state["seconds"]


def _flush(pending, result, on_step):
    """Read the buffered metrics (loss, rolled back, mse, mse of the EMA) in one transfer and emit records."""
    values = torch.stack([torch.stack(v) for _, v in pending]).cpu().numpy().astype(np.float64)
    for (i, _), row in zip(pending, values):
        rec = StepRecord(
            i,
            float(row[0]),
            psnr_from_mse(row[0]),
            psnr_from_mse(row[2]) if len(row) > 2 else None,
            psnr_from_mse(row[3]) if len(row) > 3 else None,
            bool(row[1]),
        )
        result.history.append(rec)
        if on_step is not None:
            on_step(rec)


@torch.no_grad()
def _finish(result, step, tracker, cfg, on_snapshot):
    x = step.forward(step.z_in if cfg.final_input == "perturbed" else step.z)
    result.output = to_image(x).clip(0, 1)
    result.ema = to_image(tracker.ema).clip(0, 1) if tracker.ema is not None else result.output
    if tracker.best is not None:
        result.best = to_image(tracker.best).clip(0, 1)
        result.best_iteration = int(tracker.best_iter)
    det = tracker.detector
    if det is not None and det.best_image is not None:
        result.blind = to_image(det.best_image).clip(0, 1)
        result.blind_iteration = int(det.best_iteration)
        result.blind_confirmed = det.should_stop()
    n = result.iterations_done
    if on_snapshot is not None and n and n % cfg.snapshot_every:
        on_snapshot(Snapshot(n, result.output, result.ema))
