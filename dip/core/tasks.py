"""Tasks as data: a Problem is an observation y, its forward operator, and (maybe) the ground truth.

``make_problem`` turns a preset and an image into a Problem; ``solve`` builds the preset's network and input
code and runs the one fit loop. The command line and the app both go through these two functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import torch
from torch import nn

from dip.core import degrade
from dip.core.checkpoint import Checkpoint
from dip.core.errors import ImageError
from dip.core.fit import FitResult, Snapshot, StepRecord, fit, to_tensor
from dip.core.images import (
    ImageSource,
    center_crop_to_multiple,
    check_min_size,
    limit_side,
    load_image,
    pad_to_multiple,
    reduced_size,
)
from dip.core.metrics import psnr
from dip.core.models import SkipNet, make_input_code
from dip.core.presets import Preset
from dip.core.records import RunMetrics
from dip.core.registry import get_task


@dataclass
class Problem:
    """One restoration problem. Images are float32 (H, W, C) in [0, 1].

    Attributes
    ----------
    task : str
        The registered task's name.
    y : ndarray
        The observation (for SR the low-resolution image).
    op : nn.Module
        The forward operator: maps an estimate to y's space.
    shape : tuple
        (H, W, C) of the estimate.
    x_true : ndarray or None
        Ground truth, or None ("blind").
    degraded : ndarray or None
        y shown in the estimate's space (SR: bicubic).
    mask : ndarray or None
        Inpainting: (H, W) with 1 = known pixel, 0 = hole; None for other tasks.
    """

    task: str
    y: np.ndarray
    op: nn.Module
    shape: tuple
    x_true: Optional[np.ndarray] = None
    degraded: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None

    @property
    def psnr_degraded(self) -> Optional[float]:
        """PSNR in dB of the degraded input against the ground truth (None when blind)."""
        if self.x_true is None:
            return None
        return psnr(self.x_true, self.degraded)

    def holes_filled(self, x: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """Put the observed pixels back into ``x`` (inpainting).

        Parameters
        ----------
        x : ndarray or None
            An estimate, float32 (H, W, C) in [0, 1].

        Returns
        -------
        ndarray or None
            ``x`` with the known pixels of ``y``; None for other tasks (no mask), or without ``x``.
        """
        if self.mask is None or x is None:
            return None
        return degrade.keep_known(x, self.y, self.mask)


def prepare_image(
    x: np.ndarray, preset: Preset, *, max_side: Optional[int] = None, min_side: Optional[int] = None
) -> np.ndarray:
    """Downscale (optional), pad or centre-crop to the preset's multiple, and check the network can take it.

    Parameters
    ----------
    x : ndarray
        float32 (H, W, C) in [0, 1].
    preset : Preset
        Gives ``grey``, ``border_pad``, ``pad_multiple`` or ``crop_multiple`` and the network's minimum side.
    max_side : int, optional
        Downscale first so that the longer side is at most this many px.
    min_side : int, optional
        Smallest side in px the result may have; default ``preset.min_image_side``.

    Returns
    -------
    ndarray
        float32 (H', W', C') in [0, 1], contiguous; C' = 1 for a grey preset.

    Raises
    ------
    ImageError
        When the result is too small for the network; when only ``max_side`` made it so, the message names the
        smallest ``max_side`` that works.
    """
    try:
        return _prepare(x, preset, max_side, min_side)
    except ImageError as err:
        h, w = x.shape[:2]
        enough = smallest_max_side(h, w, preset, above=max_side) if max_side and max(h, w) > max_side else None
        if enough is None or min_side:
            raise
        ph, pw = prepared_shape(h, w, preset, max_side=max_side)
        raise ImageError(
            f"image is {w}x{h} px; downscaled to a longer side of {max_side} px it becomes {pw}x{ph} "
            f"px, below the {preset.min_image_side}x{preset.min_image_side} px this network needs. Use a "
            f"longer side (max_side) of at least {enough} px."
        ) from err


def _prepare(x: np.ndarray, preset: Preset, max_side: Optional[int], min_side: Optional[int]) -> np.ndarray:
    x = limit_side(x, working_long_side(*x.shape[:2], preset, max_side))
    if preset.grey and x.shape[2] == 3:
        x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    if preset.border_pad:
        b = preset.border_pad
        x = np.pad(x, ((b, b), (b, b), (0, 0)), mode="reflect")
    if preset.pad_multiple:
        x = pad_to_multiple(x, preset.pad_multiple)
    elif preset.crop_multiple:
        check_min_size(x, min_side or preset.min_image_side)  # one minimum, the one the crop must leave
        x = center_crop_to_multiple(x, preset.crop_multiple)
    check_min_size(x, min_side or preset.min_image_side)
    return np.ascontiguousarray(x, dtype=np.float32)


def prepare_low_resolution(x: np.ndarray, preset: Preset, *, max_side: Optional[int] = None) -> np.ndarray:
    """Prepare a low-resolution input for blind super-resolution.

    It is downscaled to ``max_side`` (optional) and centre-cropped only as far as its ``preset.factor``-times
    larger output needs: to a multiple of 8 at x4 when the network takes multiples of 32 (cropping the input itself
    to 32 would throw away up to 31 of its rows).

    Parameters
    ----------
    x : ndarray
        float32 (h, w, C) in [0, 1], the low-resolution image.
    preset : Preset
        An SR preset (its ``factor`` and ``crop_multiple``).
    max_side : int, optional
        Downscale first so that the longer side is at most this many px.

    Returns
    -------
    ndarray
        float32 (h', w', C) in [0, 1].

    Raises
    ------
    ImageError
        When even the output would be too small for the network.
    """
    f = preset.factor
    multiple = preset.crop_multiple // math.gcd(preset.crop_multiple, f) if preset.crop_multiple else 0
    lr = prepare_image(x, preset.with_overrides(crop_multiple=multiple), max_side=max_side, min_side=1)
    h, w = lr.shape[:2]
    need = preset.min_image_side
    if min(h, w) * f < need:
        raise ImageError(
            f"low-resolution image is {w}x{h} px after cropping, so its x{f} output would be "
            f"{w * f}x{h * f} px, below the {need}x{need} px this network needs. Use a larger image."
        )
    return lr


def prepared_shape(height: int, width: int, preset: Preset, *, max_side: Optional[int] = None) -> tuple[int, int]:
    """Compute the (height, width) ``prepare_image`` makes of an image of this size, without touching any pixels.

    Lets a caller offer only the working sizes the network can take.

    Parameters
    ----------
    height, width : int
        The image's size in px.
    preset : Preset
        Gives ``border_pad`` and ``pad_multiple`` or ``crop_multiple``.
    max_side : int, optional
        Longer side in px the image is downscaled to first.

    Returns
    -------
    tuple of int
        (height, width) in px; 0 where cropping would leave nothing.
    """
    if max_side and max(height, width) > max_side:
        width, height = reduced_size(width, height, working_long_side(height, width, preset, max_side))
    height, width = height + 2 * preset.border_pad, width + 2 * preset.border_pad
    if preset.pad_multiple:
        m = preset.pad_multiple
        return height + (-height) % m, width + (-width) % m
    if preset.crop_multiple:
        m = preset.crop_multiple
        return height - height % m, width - width % m
    return height, width


def fits_network(height: int, width: int, preset: Preset, *, max_side: Optional[int] = None) -> bool:
    """Tell whether an image of this size, prepared at ``max_side``, is still big enough for the preset's network.

    Parameters
    ----------
    height, width : int
        The image's size in px.
    preset : Preset
        The preset it is prepared for.
    max_side : int, optional
        Longer side in px the image is downscaled to first.

    Returns
    -------
    bool
        True when both prepared sides are at least the network's ``min_side``.
    """
    return min(prepared_shape(height, width, preset, max_side=max_side)) >= preset.net.min_side


def working_long_side(height: int, width: int, preset: Preset, max_side: Optional[int]) -> Optional[int]:
    """Choose the longer side an image is downscaled to: ``max_side``, or less where the crop keeps more of it.

    The crop to the network's multiple (32) after downscaling cuts a quarter of a 3:2 photo at 128 px (128x85
    becomes 128x64), none at 96 px (96x64). A smaller side, at most a quarter smaller, is chosen only when it keeps
    at least 5 % more of the picture, at least three quarters of the pixels and the network's minimum size; ties
    go to the larger side.

    Parameters
    ----------
    height, width : int
        The image's size in px.
    preset : Preset
        Gives ``crop_multiple`` (a padding preset, ``pad_multiple``, keeps ``max_side``), ``border_pad`` and
        the network's minimum side.
    max_side : int or None
        The working size asked for; None keeps the image's size.

    Returns
    -------
    int or None
        ``max_side`` or a smaller longer side in px.
    """
    m = 0 if preset.pad_multiple else preset.crop_multiple
    if not m or not max_side or max(height, width) <= max_side:
        return max_side
    b = 2 * preset.border_pad

    def crop(side: int) -> tuple[int, float]:  # pixels left after the crop, and the share of the picture kept
        w, h = (n + b for n in reduced_size(width, height, side))
        ch, cw = h - h % m, w - w % m
        return (ch * cw if min(ch, cw) >= preset.min_image_side else 0), ch * cw / (h * w)

    pixels, kept = crop(max_side)
    if not pixels:
        return max_side  # too small already: a smaller side cannot help
    best, best_kept = max_side, kept + 0.05
    for side in range(max_side - 1, math.ceil(0.75 * max_side) - 1, -1):
        n, k = crop(side)
        if n >= 0.75 * pixels and k > best_kept:
            best, best_kept = side, k
    return best


def smallest_max_side(height: int, width: int, preset: Preset, *, above: int = 0) -> Optional[int]:
    """Find the smallest longer side above ``above`` at which an image of this size still fits the network.

    Parameters
    ----------
    height, width : int
        The image's size in px.
    preset : Preset
        The preset it is prepared for.
    above : int, optional
        Only longer sides greater than this are tried. Default 0.

    Returns
    -------
    int or None
        The smallest ``max_side`` in px at which the image is still big enough for the preset's network after
        preparation, or None when not even its full size is.
    """
    for side in range(above + 1, max(height, width) + 1):
        if fits_network(height, width, preset, max_side=side):
            return side
    return None


def load_for(preset: Preset, source: ImageSource, *, max_side: Optional[int] = None) -> np.ndarray:
    """Load an image file and prepare it for ``preset``.

    Parameters
    ----------
    preset : Preset
        The preset (grey or RGB, crop or pad).
    source : path, bytes or binary file object
        The image file.
    max_side : int, optional
        Downscale so that the longer side is at most this many px.

    Returns
    -------
    ndarray
        float32 (H, W, C) in [0, 1], ready for ``make_problem``.

    Raises
    ------
    ImageError
        For a file that cannot be read as an image, or an image too small for the network.
    """
    return prepare_image(load_image(source, mode="grey" if preset.grey else "rgb"), preset, max_side=max_side)


def make_problem(
    preset: Preset, image: np.ndarray, *, observed: bool = False, mask: Optional[np.ndarray] = None, seed: int = 0
) -> Problem:
    """Build the Problem of ``preset.task`` from a prepared image, as its registered task says.

    Parameters
    ----------
    preset : Preset
        The run's preset; its task (``dip.core.registry``) makes the observation and the operator.
    image : ndarray
        float32 (H, W, C) in [0, 1], prepared (``prepare_image``).
    observed : bool, optional
        The image is already degraded (a noisy photo, a JPEG, a low-resolution image for SR): it is the
        observation itself and there is no ground truth. Default False.
    mask : ndarray, optional
        (H, W) of {0, 1} for a task that needs one (inpainting); made from ``preset.mask_kind`` when None.
    seed : int, optional
        Seed of the degradation (noise, random mask). Default 0.

    Returns
    -------
    Problem
        The observation, its operator and (unless ``observed``) the ground truth.

    Raises
    ------
    ImageError
        For a mask of the wrong size, or a preset that needs its image's own mask and got none.
    ConfigError
        For an unknown task.
    """
    task = get_task(preset.task)
    h, w, c = image.shape
    if task.needs_mask:
        mask = _mask_for(preset, mask, h, w, seed)
    op = task.operator(preset, mask)
    if observed:
        scale = task.output_scale(preset)
        y = degrade.apply_mask(image, mask) if mask is not None else image
        view = degrade.upscale(y, scale) if scale > 1 else y
        return Problem(task.name, y, op, (h * scale, w * scale, c), None, view, mask)
    y, view = task.observe(preset, image, seed, mask)
    return Problem(task.name, y, op, image.shape, image, view, mask)


def _mask_for(preset: Preset, mask: Optional[np.ndarray], h: int, w: int, seed: int) -> np.ndarray:
    if mask is None:
        if preset.mask_kind == "file":
            raise ImageError(f"preset {preset.name!r} uses the mask that comes with its image; provide a mask.")
        mask = degrade.make_mask(preset.mask_kind, h, w, keep_fraction=preset.keep_fraction, seed=seed)
    if mask.shape != (h, w):
        raise ImageError(
            f"mask is {mask.shape[1]}x{mask.shape[0]} px but the image is {w}x{h} px; "
            "use a mask of the same size as the image."
        )
    return mask


PROBLEM_ARRAYS = ("y", "x_true", "degraded", "mask")


def save_problem(problem: Problem, path) -> None:
    """Write a Problem's arrays to an ``.npz`` file (no pickled objects).

    A queued job thus survives a restart of the process that accepted it, or travels to another machine.
    ``load_problem`` rebuilds the operator.

    Parameters
    ----------
    problem : Problem
        The problem; its task, shape and arrays are written, not its operator.
    path : str, Path or file object
        The ``.npz`` file (``numpy.savez`` appends ``.npz`` to a name without it).
    """
    arrays = {name: getattr(problem, name) for name in PROBLEM_ARRAYS if getattr(problem, name) is not None}
    np.savez(path, task=np.array(problem.task), shape=np.array(problem.shape), **arrays)


def load_problem(path, preset: Preset) -> Problem:
    """Read the Problem ``save_problem`` wrote, with its forward operator made from ``preset`` and the mask.

    Parameters
    ----------
    path : str, Path or file object
        The ``.npz`` file.
    preset : Preset
        The job's preset (e.g. its SR factor makes the operator).

    Returns
    -------
    Problem
        The problem as saved.

    Raises
    ------
    ConfigError
        For a task that is not registered.
    """
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in PROBLEM_ARRAYS if name in data.files}
        task, shape = str(data["task"]), tuple(int(v) for v in data["shape"])
    mask = arrays.get("mask")
    op = get_task(task).operator(preset, mask)
    return Problem(task, arrays["y"], op, shape, arrays.get("x_true"), arrays.get("degraded"), mask)


def build_net(preset: Preset, channels: int) -> SkipNet:
    """Build the preset's network with ``channels`` outputs, initialised from the preset's seed.

    Parameters
    ----------
    preset : Preset
        Gives the network, the input code's channels and the seed (``torch.manual_seed`` is set from it).
    channels : int
        Output channels (the image's C).

    Returns
    -------
    SkipNet
        The untrained network.
    """
    torch.manual_seed(preset.fit.seed)
    return SkipNet(replace(preset.net, input_channels=preset.input.channels, output_channels=channels))


def solve(
    preset: Preset,
    problem: Problem,
    *,
    device: Optional[str] = None,
    on_step: Optional[Callable[[StepRecord], None]] = None,
    on_snapshot: Optional[Callable[[Snapshot], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    checkpoint: Optional[Checkpoint] = None,
) -> FitResult:
    """Fit the preset's network to ``problem`` and return the FitResult (resumable with ``checkpoint``).

    Parameters
    ----------
    preset : Preset
        The network, input code and fit settings; its seed makes the weights and z.
    problem : Problem
        The observation, operator and (maybe) ground truth.
    device : str, optional
        "auto"/None, "cpu", "cuda", "mps".
    on_step, on_snapshot, should_stop : callable, optional
        Passed to ``dip.core.fit.fit``: each iteration's record, each snapshot, a cancel check.
    checkpoint : Checkpoint, optional
        Resume from it and save into it.

    Returns
    -------
    FitResult
        The fit's images (float32 (H, W, C) in [0, 1]), history and timings.

    Raises
    ------
    ImageError
        When the problem's shape is smaller than the network's minimum side.
    ConfigError
        When the checkpoint belongs to another run or cannot be read.
    """
    h, w, c = problem.shape
    check_min_size(np.empty((h, w, 0)), preset.net.min_side)
    net = build_net(preset, c)
    z = make_input_code(preset.input, h, w, generator=torch.Generator().manual_seed(preset.fit.seed))
    x_true = to_tensor(problem.x_true) if problem.x_true is not None else None
    return fit(
        net,
        z,
        to_tensor(problem.y),
        problem.op,
        preset.fit,
        x_true=x_true,
        on_step=on_step,
        on_snapshot=on_snapshot,
        should_stop=should_stop,
        device=device,
        checkpoint=checkpoint,
    )


def summarize(preset: Preset, problem: Problem, result: FitResult, *, border: int = 0) -> RunMetrics:
    """Make the metrics.json record of a finished run (PSNR keys are None without ground truth).

    Parameters
    ----------
    preset : Preset
        The run's preset.
    problem : Problem
        The problem it solved.
    result : FitResult
        The fit.
    border : int, optional
        Also score the final output and its EMA with this many border pixels excluded. Default 0.

    Returns
    -------
    RunMetrics
        The ``SUMMARY_KEYS`` (PSNRs in dB), plus the ``*_known_kept`` PSNRs for inpainting with ground truth and the
        ``*_border_excluded`` ones with ``border``.
    """
    gt = problem.x_true
    score = lambda x: psnr(gt, x) if gt is not None and x is not None else None
    best_psnr = score(result.best)
    out = {
        "task": problem.task,
        "preset": preset.name,
        "iterations": result.iterations_done,
        "parameters": result.parameters,
        "seconds": round(result.seconds, 3),
        "device": result.device,
        "precision": result.precision,
        "seed": preset.fit.seed,
        "cancelled": result.cancelled,
        "shape": list(problem.shape),
        "psnr_observed": problem.psnr_degraded,
        "psnr_final": score(result.output),
        "psnr_ema": score(result.ema),
        "psnr_best": best_psnr,
        "best_iteration": result.best_iteration if best_psnr is not None else None,
        "psnr_blind": score(result.blind),
        "blind_iteration": result.blind_iteration,
        "blind_confirmed": result.blind_confirmed,
        "early_stop": preset.fit.early_stop,
        "es_window": preset.fit.es_window,
        "es_patience": preset.fit.es_patience,
        "final_input": preset.fit.final_input,
    }
    if problem.mask is not None and gt is not None:  # inpainting: also the result that keeps the observed pixels
        out["psnr_final_known_kept"] = score(problem.holes_filled(result.output))
        out["psnr_ema_known_kept"] = score(problem.holes_filled(result.ema))
    if border and gt is not None:
        out["psnr_final_border_excluded"] = psnr(gt, result.output, border=border)
        out["psnr_ema_border_excluded"] = psnr(gt, result.ema, border=border)
    return RunMetrics.from_dict(out)
