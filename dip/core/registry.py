"""The task registry: each restoration task is one ``Task`` object, looked up by name.

A task says how it makes an observation from a clean image, which forward operator the loss sees, which classical
methods it is compared with, which of a preset's fields are its own parameters, how its command-line subcommand reads
them and how many networks one job fits. The command line, ``reproduce``, ``bench``, the job runner, the Runs page and
the pages read this table instead of branching on task names: adding a task is one module that calls ``register``
(see ``dip.core.jpeg``) and one page.

>>> get_task("sr").title
'Super-resolution'
>>> [t.name for t in TASKS.values()][:4]
['impedance', 'denoise', 'sr', 'inpaint']
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from torch import nn

from dip.core import baselines as classical
from dip.core import degrade
from dip.core.errors import ConfigError, ImageError
from dip.core.operators import Identity, Lanczos2Downsampler, PixelMask
from dip.core.presets import DEFAULT_PRESET, PRESETS, Preset

Observe = Callable[[Preset, np.ndarray, int, Optional[np.ndarray]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Task:
    """One restoration task.

    Parameters
    ----------
    name : str
        Key used everywhere (presets' ``task``, ``metrics.json``, URLs' pages, the CLI subcommand).
    title : str
        Human name ("Super-resolution").
    summary : str
        One line for the CLI's help and the app's home page.
    observe : callable
        ``observe(preset, clean, seed, mask) -> (y, degraded)``: the observation the network is fitted to, and that
        observation shown in the clean image's space (for SR the bicubic upsampling; otherwise ``y`` itself).
    operator : callable
        ``operator(preset, mask) -> nn.Module``: the forward operator of the data term ``||A(f(z)) - y||^2``.
    baselines : callable
        ``baselines(preset, problem) -> list[Baseline]``: the classical methods this task is compared with.
    parameters : tuple of str
        The preset fields (or ``Preset.params`` keys) that are this task's own settings, e.g. ``("sigma_255",)``.
    describe : callable
        ``describe(preset) -> str``: those settings in words, e.g. "noise σ 25".
    add_arguments : callable
        Adds the subcommand's task flags to an ``argparse`` parser.
    overrides : callable
        ``overrides(args) -> dict``: keyword arguments of ``Preset.with_overrides`` from those flags.
    fits : int
        Networks one job fits (noise impedance: one per target).
    output_scale : callable
        ``output_scale(preset) -> int``: how many times larger than the observation the network's output is (the SR
        factor; 1 otherwise).
    needs_mask : bool
        The task observes only the pixels of a mask (``make_problem`` makes or checks it).
    blind_note : str
        What a run of an already degraded input uses instead of ``describe``'s degradation ("" when ``describe``
        still holds, as SR's factor does).
    observed_label, blind_label : str
        How the pages caption the observation of a clean image ("Noisy observation") and an already degraded
        upload ("Your noisy image").
    icon : str
        Material icon name of its page.
    page : str
        File name of its page under ``pages/`` (without ``.py``).
    observed_input : str
        What an already degraded input is, for ``--observed`` and the pages' blind upload ("" when the task
        has no blind mode).
    """

    name: str
    title: str
    summary: str
    observe: Observe
    operator: Callable[[Preset, Optional[np.ndarray]], nn.Module]
    baselines: Callable[[Preset, Any], list]
    parameters: tuple[str, ...]
    describe: Callable[[Preset], str]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    overrides: Callable[[argparse.Namespace], dict]
    icon: str
    page: str
    fits: int = 1
    observed_input: str = ""
    output_scale: Callable[[Preset], int] = lambda preset: 1
    needs_mask: bool = False
    blind_note: str = ""
    observed_label: str = "Observation"
    blind_label: str = "Your image"

    @property
    def default_preset(self) -> str:
        """Name of the task's lab preset (the pages' and the CLI's default)."""
        return DEFAULT_PRESET[self.name]

    def presets(self) -> list[Preset]:
        """List all presets of this task, the lab preset first.

        Returns
        -------
        list of Preset
            The lab preset, then the others in ``PRESETS`` order.
        """
        return sorted((p for p in PRESETS.values() if p.task == self.name), key=lambda p: p.name != self.default_preset)


TASKS: dict[str, Task] = {}


def register(task: Task, presets: tuple[Preset, ...] = (), default_preset: Optional[str] = None) -> Task:
    """Add a task (and its presets) to the registry.

    Parameters
    ----------
    task : Task
        The task; its name must be new.
    presets : tuple of Preset
        Presets of the task, added to ``dip.core.presets.PRESETS``.
    default_preset : str, optional
        The task's lab preset (required when the task is not yet in ``DEFAULT_PRESET``).

    Returns
    -------
    Task
        ``task`` itself.

    Raises
    ------
    ConfigError
        When the name is taken or a preset names another task.
    """
    if task.name in TASKS:
        raise ConfigError(f"task {task.name!r} is registered twice.")
    for p in presets:
        if p.task != task.name:
            raise ConfigError(f"preset {p.name!r} is for {p.task!r}, not {task.name!r}.")
        PRESETS[p.name] = p
    if default_preset is not None:
        DEFAULT_PRESET[task.name] = default_preset
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """Look up the task called ``name``.

    Parameters
    ----------
    name : str
        A key of ``TASKS``.

    Returns
    -------
    Task
        The registered task.

    Raises
    ------
    ConfigError
        For an unknown name, listing the known ones.
    """
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}.") from None


def task_title(name: Optional[str]) -> str:
    """Return the title of a task name as stored in a run folder.

    Parameters
    ----------
    name : str or None
        The task name, as read from a metrics.json (may be missing or of the wrong type).

    Returns
    -------
    str
        The task's title; the name itself (or "?") when it is not registered.
    """
    task = TASKS.get(name) if isinstance(name, str) else None
    return task.title if task else str(name or "?")


# -- helpers shared by the tasks below --------------------------------------------------------------------------------
def _noisy(preset: Preset, clean: np.ndarray, seed: int, mask: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    y = degrade.add_gaussian_noise(clean, preset.sigma_255, seed=seed)
    return y, y


def identity_operator(preset: Preset, mask: Optional[np.ndarray]) -> nn.Module:
    """Return the identity, the forward operator of every task that observes the whole image (``Task.operator``)."""
    return Identity()


def _sigma_flag(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--sigma", type=float, default=25.0, help=help)


# -- noise impedance (paper Fig. 2) -----------------------------------------------------------------------------------
register(
    Task(
        "impedance",
        "Noise impedance",
        "fit image, image+noise, shuffled pixels and noise (paper Fig. 2)",
        observe=_noisy,  # the "image + noise" target; dip.core.impedance makes the other three
        operator=identity_operator,
        baselines=lambda preset, problem: [],
        parameters=("sigma_255",),
        describe=lambda p: f"noise σ {p.sigma_255:g} for the noisy target",
        add_arguments=lambda p: _sigma_flag(p, "noise of the 'image + noise' target, 0-255 units"),
        overrides=lambda args: {"sigma_255": args.sigma},
        icon="show_chart",
        page="noise_impedance",
        fits=4,  # image, image + noise, shuffled pixels, U(0, 1) noise (dip.core.impedance.TARGETS)
    )
)

# -- denoising --------------------------------------------------------------------------------------------------------
register(
    Task(
        "denoise",
        "Denoising",
        "remove Gaussian noise (or restore an already noisy image)",
        observe=_noisy,
        operator=identity_operator,
        baselines=lambda preset, problem: classical.denoise_baselines(
            problem.y, None if problem.x_true is None else preset.sigma_255, x_true=problem.x_true
        ),
        parameters=("sigma_255",),
        describe=lambda p: f"noise σ {p.sigma_255:g}",
        add_arguments=lambda p: _sigma_flag(p, "Gaussian noise sigma in 0-255 units (default 25)"),
        overrides=lambda args: {"sigma_255": args.sigma},
        icon="blur_off",
        page="denoising",
        observed_input="a noisy image (no ground truth)",
        blind_note="your noisy image as it is (no noise added)",
        observed_label="Noisy observation",
        blind_label="Your noisy image",
    )
)


# -- super-resolution -------------------------------------------------------------------------------------------------
# The observation and the loss's operator are deliberately NOT the same downsampler, as in the official code: the
# low-resolution image is made with PIL's Lanczos resize (``degrade.downscale``, what the notebook's data loader
# does), while the loss goes through the official fixed Lanczos-2 kernel (``operators.Lanczos2Downsampler``). Change
# "the SR kernel" in both places or the numbers stop matching the paper's.
def _low_resolution(
    preset: Preset, clean: np.ndarray, seed: int, mask: Optional[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    y = degrade.downscale(clean, preset.factor)
    up = degrade.upscale(y, preset.factor, "bicubic")  # shown in the output's space, padded to its size
    view = np.zeros(clean.shape, np.float32)
    view[: up.shape[0], : up.shape[1]] = up[: clean.shape[0], : clean.shape[1]]
    return y, view


def _factor_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--factor", type=int, choices=[4, 8], help="upscaling factor (default: the preset's, 4)")


register(
    Task(
        "sr",
        "Super-resolution",
        "super-resolution through the Lanczos-2 downsampler",
        observe=_low_resolution,
        operator=lambda preset, mask: Lanczos2Downsampler(preset.factor),
        baselines=lambda preset, problem: classical.sr_baselines(
            problem.y, preset.factor, problem.shape, x_true=problem.x_true
        ),
        parameters=("factor",),
        describe=lambda p: f"×{p.factor} through the Lanczos-2 downsampler",
        add_arguments=_factor_flag,
        overrides=lambda args: {"factor": args.factor} if args.factor else {},
        icon="zoom_in",
        page="super_resolution",
        observed_input="the low-resolution input (no ground truth)",
        output_scale=lambda preset: preset.factor,
    )
)


# -- inpainting -------------------------------------------------------------------------------------------------------
def _masked(preset: Preset, clean: np.ndarray, seed: int, mask: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if mask is None:
        raise ImageError("inpainting needs a mask; dip.core.tasks.make_problem makes or checks it.")
    y = degrade.apply_mask(clean, mask)
    return y, y


def _mask_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--mask", type=Path, help="mask image: white = known, black = hole; same size as the image")
    group.add_argument("--mask-kind", choices=["text", "bernoulli", "box"], help="generated mask")
    parser.add_argument("--keep", type=float, default=0.5, help="fraction of pixels kept by a bernoulli mask")


def _mask_overrides(args: argparse.Namespace) -> dict:
    out = {"keep_fraction": args.keep}
    if args.mask_kind:
        out["mask_kind"] = args.mask_kind
    return out


register(
    Task(
        "inpaint",
        "Inpainting",
        "fill holes or missing pixels",
        observe=_masked,
        operator=lambda preset, mask: PixelMask(mask),
        baselines=lambda preset, problem: classical.inpaint_baselines(problem.y, problem.mask, x_true=problem.x_true),
        parameters=("mask_kind", "keep_fraction"),
        describe=lambda p: "the mask chosen below",
        add_arguments=_mask_flags,
        overrides=_mask_overrides,
        icon="format_paint",
        page="inpainting",
        needs_mask=True,
    )
)

# Tasks defined in their own modules register themselves when imported (after the table above exists).
from dip.core import jpeg  # noqa: E402, F401
