"""Blind JPEG-artefact removal (the official denoising notebook's snail).

The network is fitted to a JPEG-compressed image through the identity; its structure reproduces the image before
the 8x8 blocks and ringing.

The whole task lives here and registers itself with ``dip.core.registry``: the observation (PIL's JPEG encoder at a
chosen quality), the operator (identity), the classical baselines (total variation and a bilateral filter, both
edge-preserving smoothers used as deblocking filters), its presets and its command-line flag ``--quality``.
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image

from dip.core import baselines as classical
from dip.core.errors import ConfigError, ImageError
from dip.core.fit import FitConfig
from dip.core.images import to_pil
from dip.core.models import InputConfig
from dip.core.presets import IMPEDANCE_NET, QUICK_SIDE, Preset
from dip.core.registry import Task, identity_operator, register

DEFAULT_QUALITY = 10  # strong, visible artefacts on a natural image (the snail photo is about this bad)


def quality_of(preset: Preset) -> int:
    """Return the JPEG quality of ``preset`` (``preset.params["quality"]``, default ``DEFAULT_QUALITY``).

    Parameters
    ----------
    preset : Preset
        A jpeg preset.

    Returns
    -------
    int
        The libjpeg quality, 1 (worst) to 95 (best).

    Raises
    ------
    ConfigError
        When it is not an integer from 1 to 95.
    """
    q = preset.params.get("quality", DEFAULT_QUALITY)
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or not 1 <= q <= 95:
        raise ConfigError(f"JPEG quality {q!r}; use an integer from 1 (worst) to 95 (best).")
    return int(q)


def compress(x: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``x`` as a JPEG at ``quality`` and decode it again.

    Parameters
    ----------
    x : ndarray
        float32 (H, W, C) in [0, 1], C = 1 or 3.
    quality : int
        libjpeg quality, 1 (worst) to 95; chroma is subsampled 4:2:0 as by most cameras and PIL's default.

    Returns
    -------
    ndarray
        float32 (H, W, C) in [0, 1], same shape: the image with JPEG's block and ringing artefacts.

    Raises
    ------
    ImageError
        For an array that is not an (H, W, 1 or 3) image.
    """
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise ImageError(f"expected an (H, W, 1 or 3) image; got shape {x.shape}.")
    buffer = io.BytesIO()
    to_pil(x).save(buffer, format="JPEG", quality=int(quality))
    with Image.open(buffer) as im:
        out = np.asarray(im.convert("L" if x.shape[2] == 1 else "RGB"), dtype=np.float32) / 255.0
    return out.reshape(x.shape)


def jpeg_baselines(y: np.ndarray, *, x_true: np.ndarray | None = None) -> list[classical.Baseline]:
    """Run total variation and a bilateral filter on a JPEG-compressed image.

    Their strength is set from its estimated artefact level (``classical.estimate_sigma``), as a deblocking filter
    is tuned.

    Parameters
    ----------
    y : ndarray
        float32 (H, W, C) in [0, 1], the compressed image.
    x_true : ndarray, optional
        The uncompressed image; gives each baseline's PSNR.

    Returns
    -------
    list of Baseline
        ``tv`` then ``bilateral``.

    Raises
    ------
    ImageError
        For an array that is not a float (H, W, 1 or 3) image in [0, 1], or smaller than
        ``classical.ESTIMATE_MIN_SIDE`` (8) px on a side.
    """
    from skimage.restoration import denoise_bilateral, denoise_tv_chambolle

    classical.check_image(y, "JPEG image")
    s = max(classical.estimate_sigma(y), 1.0 / 255)
    channel = -1 if y.shape[2] == 3 else None
    flat = y if channel is not None else y[..., 0]
    return [
        classical.run_baseline(
            "tv",
            "Total variation",
            f"Chambolle, weight {2 * s:.3g}",
            lambda: denoise_tv_chambolle(flat, weight=2 * s, channel_axis=channel),
            x_true,
            y.shape,
        ),
        classical.run_baseline(
            "bilateral",
            "Bilateral filter",
            f"σ colour {2 * s:.3g}, σ space 1.5",
            lambda: denoise_bilateral(flat, sigma_color=2 * s, sigma_spatial=1.5, channel_axis=channel),
            x_true,
            y.shape,
        ),
    ]


def _observe(preset: Preset, clean: np.ndarray, seed: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    y = compress(clean, quality_of(preset))
    return y, y


def _quality_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quality", type=int, help=f"JPEG quality 1-95 of the compression (default {DEFAULT_QUALITY})")


def _quality_overrides(args: argparse.Namespace) -> dict:
    return {"params": {"quality": args.quality}} if args.quality is not None else {}


# The official notebook's settings: the noise-impedance network (3-channel input, 8..128 channels, skips 4 at the
# two deepest levels), 2400 iterations, sigma_p 1/30, EMA 0.99 and backtracking; the snail photo has no ground truth.
SNAIL = Preset(
    "snail",
    "jpeg",
    IMPEDANCE_NET,
    InputConfig(channels=3),
    FitConfig(iterations=2400, backtrack=True),
    "Official blind JPEG-artefact removal (snail): 2400 iterations, the noise-impedance network",
    "denoising.ipynb (HEAD)",
    sample="snail.jpg",
    params={"quality": DEFAULT_QUALITY},
)
QUICK = Preset(
    "quick-jpeg",
    "jpeg",
    IMPEDANCE_NET,
    InputConfig(channels=3),
    # The snail settings at the quick look's size: fewer iterations do not restore. On astronaut at 128 px, q 10
    # (2-core AMD EPYC, 2026-12-01, 125 s): the output passes the JPEG (22.44 dB) only after about 2000 iterations;
    # at 2400 the moving average is 22.83 dB (+0.4; TV 22.70, bilateral 22.52), at 1200 still 21.3.
    FitConfig(iterations=2400, backtrack=True),
    f"Quick look: the snail settings at {QUICK_SIDE} px (about two minutes on a 2-core CPU)",
    "the fewest iterations that beat the JPEG at 128 px (README: Quick look)",
    params={"quality": DEFAULT_QUALITY},
)

JPEG = register(
    Task(
        "jpeg",
        "JPEG artefacts",
        "remove JPEG block and ringing artefacts (blind, as the official snail notebook)",
        observe=_observe,
        operator=identity_operator,
        baselines=lambda preset, problem: jpeg_baselines(problem.y, x_true=problem.x_true),
        parameters=("quality",),
        describe=lambda p: f"JPEG quality {quality_of(p)}",
        add_arguments=_quality_flag,
        overrides=_quality_overrides,
        icon="photo_filter",
        page="jpeg_artefacts",
        observed_input="a JPEG with artefacts (no ground truth)",
        blind_note="your JPEG as it is (not compressed again)",
        observed_label="JPEG-compressed observation",
        blind_label="Your JPEG",
    ),
    presets=(SNAIL, QUICK),
    default_preset="snail",
)
