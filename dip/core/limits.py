"""Hard limits on one job, checked before it is queued: what a shared server agrees to compute.

A public server must bound every request. A job's cost is its compute (iterations x the network's FLOPs per
iteration at the working size: the issue's "iterations x pixels x width", counted exactly), its working size, its
widest layer and its stored snapshots. ``check_job`` raises ``LimitExceeded`` naming the limit and what would fit.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from dip.core.errors import DIPError
from dip.core.presets import Preset


class LimitExceeded(DIPError):
    """A job asks for more than the server allows; the message says which limit and what fits."""


@dataclass(frozen=True)
class Limits:
    """What one job may use.

    Parameters
    ----------
    max_tflop : float
        Compute budget of one job, in TFLOP (forward + backward of every iteration).
    max_side : int
        Longest side of the working image, px.
    max_channels : int
        Widest layer of the network.
    max_snapshots : int
        Snapshots stored per fitted image (the run folder keeps each one as a PNG).
    max_minutes : float
        Wall-clock limit of one job, in minutes; the worker stops it there and saves what it has.
    """

    max_tflop: float
    max_side: int
    max_channels: int
    max_snapshots: int
    max_minutes: float

    @classmethod
    def for_device(cls, device_type: str) -> Limits:
        """Return the default limits for a device type.

        The CPU defaults suit a 2-core CPU (the lab denoising and inpainting presets at 256 px fit; 512 px does
        not); the others one GPU (the paper's largest case, Barbara at 514 px x 11000 iterations, fits).

        Parameters
        ----------
        device_type : str
            "cpu", or any other type (e.g. "cuda") for the GPU defaults.

        Returns
        -------
        Limits
        """
        if device_type == "cpu":
            return cls(max_tflop=400.0, max_side=512, max_channels=256, max_snapshots=200, max_minutes=180.0)
        return cls(max_tflop=10_000.0, max_side=1024, max_channels=512, max_snapshots=400, max_minutes=60.0)


@functools.lru_cache(maxsize=64)
def _gflop_per_iteration(net_config, input_channels: int, output_channels: int, height: int, width: int) -> float:
    # Counted on the meta device: shapes only, no arithmetic, a fraction of a second.
    from dip.core.models import SkipNet

    with torch.device("meta"):
        net = SkipNet(replace(net_config, input_channels=input_channels, output_channels=output_channels))
        z = torch.empty(1, input_channels, height, width)
    with FlopCounterMode(display=False) as counter:
        net(z).square().mean().backward()
    return counter.get_total_flops() / 1e9


def gflop_per_iteration(preset: Preset, height: int, width: int, channels: int = 3) -> float:
    """Count the FLOPs (forward + backward) of one iteration of ``preset``'s network, in GFLOP.

    Counted on the meta device (shapes only, a fraction of a second) and cached. The lab denoising net: 115 GFLOP
    at 256², 460 at 512².

    Parameters
    ----------
    preset : Preset
        Its network and input code.
    height, width : int
        Working image size in px.
    channels : int, optional
        Output channels (1 or 3). Default 3.

    Returns
    -------
    float
        GFLOP per iteration.
    """
    return _gflop_per_iteration(preset.net, preset.input.channels, channels, height, width)


def job_tflop(preset: Preset, shape: tuple, *, fits: int = 1) -> float:
    """Compute the cost of a whole job in TFLOP: ``fits`` fits of all its iterations.

    Parameters
    ----------
    preset : Preset
        Network and iterations.
    shape : tuple
        Working image shape (H, W[, C]); C defaults to 3.
    fits : int, optional
        Fits in the job (noise impedance fits 4 targets). Default 1.

    Returns
    -------
    float
        TFLOP.
    """
    h, w = shape[:2]
    c = shape[2] if len(shape) > 2 else 3
    return fits * preset.fit.iterations * gflop_per_iteration(preset, h, w, c) / 1000


def stored_snapshots(preset: Preset) -> int:
    """Count the snapshots a fit stores: one every ``snapshot_every`` iterations, plus the final one."""
    return preset.fit.iterations // preset.fit.snapshot_every + 1


def check_job(preset: Preset, shape: tuple, limits: Limits, *, fits: int = 1) -> float:
    """Raise LimitExceeded when a job of ``preset`` on an image of ``shape`` (H, W[, C]) exceeds ``limits``.

    Parameters
    ----------
    preset : Preset
        Network, iterations and snapshot interval of the job.
    shape : tuple
        Working image shape (H, W[, C]).
    limits : Limits
        What the server allows.
    fits : int, optional
        Fits in the job (noise impedance fits 4 targets). Default 1.

    Returns
    -------
    float
        The job's compute in TFLOP.

    Raises
    ------
    LimitExceeded
        For the first limit exceeded (working size, channels, snapshots, then compute); each message names the
        limit, the request and a setting that fits.
    """
    h, w = shape[:2]
    if max(h, w) > limits.max_side:
        raise LimitExceeded(
            f"the working image is {w}x{h} px; this server allows at most {limits.max_side} px on "
            f"the longer side. Choose a working size of {limits.max_side} px or less."
        )
    widest = max(max(preset.net.down), max(preset.net.up))
    if widest > limits.max_channels:
        raise LimitExceeded(
            f"the network's widest layer has {widest} channels; this server allows at most "
            f"{limits.max_channels}. Choose {limits.max_channels} channels or fewer."
        )
    snaps = stored_snapshots(preset)
    if snaps > limits.max_snapshots:
        every = math.ceil(preset.fit.iterations / (limits.max_snapshots - 1))
        raise LimitExceeded(
            f"a snapshot every {preset.fit.snapshot_every} iterations stores {snaps} snapshots; "
            f"this server keeps at most {limits.max_snapshots} per fit. Take one every {every} "
            "iterations or more."
        )
    cost = job_tflop(preset, shape, fits=fits)
    if cost > limits.max_tflop:
        fitting = int(preset.fit.iterations * limits.max_tflop / cost)
        raise LimitExceeded(
            f"this job needs {_amount(cost)} of compute ({fits * preset.fit.iterations:,} iterations "
            f"at {w}x{h} px with {widest} channels); this server allows {_amount(limits.max_tflop)} "
            f"per job. At this size and width at most {fitting:,} iterations fit"
            f"{' per target' if fits > 1 else ''}; a smaller working size or fewer channels allow "
            "more."
        )
    return cost


def _amount(tflop: float) -> str:
    if tflop >= 1000:
        return f"{tflop / 1000:.1f} PFLOP"
    return f"{tflop:.0f} TFLOP" if tflop >= 1 else f"{tflop * 1000:.3g} GFLOP"
