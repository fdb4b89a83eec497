"""Classical baselines a reviewer compares Deep Image Prior with, timed and scored like DIP.

Settings follow REFERENCE.md §8, which reports (F16, sigma 25, mean of 3 seeds) non-local means 31.04, total
variation 29.61, wavelet 28.20, CBM3D 32.82 dB; zebra x4 nearest / bicubic / Lanczos 20.82 / 23.10 / 23.56 dB;
Barbara 50 % biharmonic 26.80 dB. With these functions: 31.05, 29.61, 28.20 (F16), 20.82 / 23.12 / 23.58 (zebra;
the reference rounded through 8-bit PIL images) and 26.85 (Barbara, seed 0).

Optional packages: the wavelet baseline needs PyWavelets (scikit-image imports it lazily) and BM3D needs the
``bm3d`` package, which is licensed for non-commercial use only and is never required. A missing package
drops its baseline from the list; ``unavailable_baselines`` says which and why.

Images are float32 (H, W, C) in [0, 1] (C = 1 or 3); masks are (H, W) with 1 = known pixel, 0 = hole.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from dip.core.errors import ConfigError, ImageError
from dip.core.images import resize
from dip.core.metrics import psnr

OPTIONAL = {
    "wavelet": ("pywt", "needs PyWavelets (pip install PyWavelets)"),
    "bm3d": ("bm3d", "needs the optional bm3d package (non-commercial licence): pip install bm3d"),
}


@dataclass(frozen=True)
class Baseline:
    """One classical method's result.

    Attributes
    ----------
    name : str
        Short key ("nlm", "tv", "wavelet", "bm3d", "nearest", "bicubic", "lanczos", "biharmonic").
    label : str
        Display name.
    image : ndarray
        float32 (H, W, C) in [0, 1].
    psnr : float or None
        PSNR in dB against the ground truth (None without one).
    seconds : float
        Wall time of the method alone, in seconds.
    settings : str
        Its parameters in words.
    """

    name: str
    label: str
    image: np.ndarray
    psnr: Optional[float]
    seconds: float
    settings: str

    def as_record(self) -> dict:
        """Return the JSON-ready fields (everything but the image).

        Returns
        -------
        dict
            ``name``, ``label``, ``psnr``, ``seconds`` (rounded to 4 decimals) and ``settings``.
        """
        return {
            "name": self.name,
            "label": self.label,
            "psnr": self.psnr,
            "seconds": round(self.seconds, 4),
            "settings": self.settings,
        }


def _has_module(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # ImportError, or a broken install failing while it loads its compiled parts
        return False
    return True


def unavailable_baselines(task: str) -> dict[str, str]:
    """List the baselines of ``task`` that cannot run here, with the reason.

    Parameters
    ----------
    task : str
        A task name; only "denoise" has optional baselines (wavelet, bm3d).

    Returns
    -------
    dict of str to str
        Baseline name to the reason, e.g. ``{"bm3d": "needs ..."}``; empty when all can run.
    """
    names = {"denoise": ("wavelet", "bm3d")}.get(task, ())
    return {n: OPTIONAL[n][1] for n in names if not _has_module(OPTIONAL[n][0])}


def check_image(x: np.ndarray, what: str) -> None:
    """Raise ImageError naming ``what`` unless ``x`` is a float (H, W, 1 or 3) array in [0, 1].

    Parameters
    ----------
    x : ndarray
        The image to check.
    what : str
        Its name in the error message.

    Raises
    ------
    ImageError
        If ``x`` is not an (H, W, C) array with C = 1 or 3, or has values outside [0, 1].
    """
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[2] not in (1, 3):
        got = getattr(x, "shape", type(x).__name__)
        raise ImageError(f"{what} must be a float (H, W, C) array with C = 1 or 3; got {got}.")
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1):
        raise ImageError(
            f"{what} has values outside [0, 1] ({float(x.min()):.3g} .. {float(x.max()):.3g}); "
            "convert it with dip.core.images first."
        )


def run_baseline(
    name: str, label: str, settings: str, fn: Callable[[], np.ndarray], x_true: Optional[np.ndarray], shape: tuple
) -> Baseline:
    """Time ``fn()`` (a classical method on one image) and wrap its clipped output as a Baseline.

    Parameters
    ----------
    name, label, settings : str
        As the Baseline's fields.
    fn : callable
        The method, called once with no argument; returns the restored image (any float array of ``shape``'s size).
    x_true : ndarray or None
        The ground truth, float32 (H, W, C) in [0, 1]; gives the PSNR when given.
    shape : tuple
        (H, W, C) the output is reshaped to.

    Returns
    -------
    Baseline
        The output as float32 clipped to [0, 1], its PSNR against ``x_true`` (None without it) and ``fn``'s wall
        time.
    """
    start = time.perf_counter()
    out = np.asarray(fn(), dtype=np.float32)
    seconds = time.perf_counter() - start
    out = np.clip(out.reshape(shape), 0.0, 1.0)
    return Baseline(name, label, out, psnr(x_true, out) if x_true is not None else None, seconds, settings)


ESTIMATE_MIN_SIDE = 8
"""Smallest side ``estimate_sigma`` accepts: fewer pixels give no usable median, and scikit-image takes an image
at most 4 px wide for one with a channel axis (it warns, then estimates from the wrong axis)."""


def estimate_sigma(noisy: np.ndarray) -> float:
    """Estimate the noise standard deviation (data range 1) of an image, averaged over its channels.

    scikit-image's ``estimate_sigma``: Donoho's robust median(|HH|) / 0.6745 on the finest diagonal
    db2 wavelet detail band of each channel (needs PyWavelets).

    Parameters
    ----------
    noisy : ndarray
        float (H, W, C) image in [0, 1], C = 1 or 3, at least ``ESTIMATE_MIN_SIDE`` px on each side.

    Returns
    -------
    float
        The estimated sigma on the [0, 1] scale (multiply by 255 for the 0-255 scale).

    Raises
    ------
    ImageError
        If the image is not (H, W, C) or is smaller than ``ESTIMATE_MIN_SIDE`` px on a side.
    """
    from skimage.restoration import estimate_sigma as skimage_estimate_sigma

    if not isinstance(noisy, np.ndarray) or noisy.ndim != 3:
        got = getattr(noisy, "shape", type(noisy).__name__)
        raise ImageError(f"estimate_sigma needs an (H, W, C) image; got {got}.")
    h, w = noisy.shape[:2]
    if min(h, w) < ESTIMATE_MIN_SIDE:
        raise ImageError(
            f"image is {w}x{h} px; need at least {ESTIMATE_MIN_SIDE}x{ESTIMATE_MIN_SIDE} px to estimate its noise."
        )
    return float(skimage_estimate_sigma(noisy, channel_axis=-1, average_sigmas=True))


def denoise_baselines(
    noisy: np.ndarray, sigma_255: Optional[float], *, x_true: Optional[np.ndarray] = None
) -> list[Baseline]:
    """Non-local means, total variation, wavelet (if PyWavelets) and BM3D (if installed) on a noisy image.

    Parameters
    ----------
    noisy : ndarray
        float32 (H, W, C) in [0, 1], C = 1 or 3.
    sigma_255 : float or None
        Noise standard deviation in 0-255 units (25 for the paper's F16), or None to estimate it from the image
        (``estimate_sigma``), as for an uploaded photo.
    x_true : ndarray, optional
        Ground truth of the same shape; gives each baseline's PSNR.

    Returns
    -------
    list of Baseline
        In the order nlm, tv, wavelet, bm3d (unavailable ones left out).

    Raises
    ------
    ImageError
        For a malformed image.
    ConfigError
        For a non-positive ``sigma_255``.
    """
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet

    check_image(noisy, "noisy")
    if sigma_255 is not None and not sigma_255 > 0:
        raise ConfigError(f"sigma_255={sigma_255}; give the noise level in 0-255 units (e.g. 25) or None.")
    s = sigma_255 / 255.0 if sigma_255 is not None else estimate_sigma(noisy)
    known = f"sigma {s * 255:.1f}/255" + ("" if sigma_255 is not None else " (estimated)")
    rgb = noisy.shape[2] == 3
    y = noisy.astype(np.float64)
    out = [
        run_baseline(
            "nlm",
            "Non-local means",
            f"h = 0.6 sigma, patch 5, distance 6, fast mode, {known}",
            lambda: denoise_nl_means(
                y, h=0.6 * s, sigma=s, patch_size=5, patch_distance=6, fast_mode=True, channel_axis=-1
            ),
            x_true,
            noisy.shape,
        ),
        run_baseline(
            "tv",
            "Total variation",
            "Chambolle, weight 0.1",
            lambda: denoise_tv_chambolle(y, weight=0.1, channel_axis=-1),
            x_true,
            noisy.shape,
        ),
    ]
    if _has_module("pywt"):
        out.append(
            run_baseline(
                "wavelet",
                "Wavelet (BayesShrink)",
                f"db1, soft, {'YCbCr, ' if rgb else ''}{known}",
                lambda: denoise_wavelet(
                    y,
                    sigma=s,
                    wavelet="db1",
                    mode="soft",
                    method="BayesShrink",
                    convert2ycbcr=rgb,
                    rescale_sigma=True,
                    channel_axis=-1,
                ),
                x_true,
                noisy.shape,
            )
        )
    if _has_module("bm3d"):
        out.append(_bm3d(noisy, s, known, x_true))
    return out


def _bm3d(noisy: np.ndarray, s: float, known: str, x_true: Optional[np.ndarray]) -> Baseline:
    import bm3d

    if noisy.shape[2] == 3:
        return run_baseline(
            "bm3d",
            "CBM3D",
            f"bm3d_rgb, sigma_psd {known}",
            lambda: bm3d.bm3d_rgb(noisy, sigma_psd=s),
            x_true,
            noisy.shape,
        )
    return run_baseline(
        "bm3d", "BM3D", f"bm3d, sigma_psd {known}", lambda: bm3d.bm3d(noisy[..., 0], sigma_psd=s), x_true, noisy.shape
    )


_UPSAMPLERS = {
    "nearest": ("Nearest neighbour", Image.Resampling.NEAREST),
    "bicubic": ("Bicubic", Image.Resampling.BICUBIC),
    "lanczos": ("Lanczos", Image.Resampling.LANCZOS),
}


def sr_baselines(lr: np.ndarray, factor: int, shape: tuple, *, x_true: Optional[np.ndarray] = None) -> list[Baseline]:
    """Nearest, bicubic and Lanczos upsampling (PIL, in float precision) of a low-resolution image.

    Parameters
    ----------
    lr : ndarray
        float32 (h, w, C) in [0, 1], the low-resolution observation.
    factor : int
        The scale factor (used for the description; the output size is ``shape``).
    shape : tuple
        (H, W, C) of the high-resolution estimate, normally (h * factor, w * factor, C).
    x_true : ndarray, optional
        (H, W, C) ground truth.

    Returns
    -------
    list of Baseline
        ``nearest``, ``bicubic`` then ``lanczos``, each float32 (H, W, C) in [0, 1].

    Raises
    ------
    ImageError
        For a malformed image, or a target size smaller than the low-resolution image.
    """
    check_image(lr, "lr")
    h, w = int(shape[0]), int(shape[1])
    if h < lr.shape[0] or w < lr.shape[1]:
        raise ImageError(
            f"target size {w}x{h} px is smaller than the low-resolution image {lr.shape[1]}x{lr.shape[0]} px."
        )
    out_shape = (h, w, lr.shape[2])
    return [
        run_baseline(
            name,
            label,
            f"PIL {name} resize x{factor} to {w}x{h}",
            lambda r=resample: resize(lr, h, w, resample=r),
            x_true,
            out_shape,
        )
        for name, (label, resample) in _UPSAMPLERS.items()
    ]


def inpaint_baselines(y: np.ndarray, mask: np.ndarray, *, x_true: Optional[np.ndarray] = None) -> list[Baseline]:
    """Biharmonic inpainting (scikit-image) of the holes of ``y``.

    Parameters
    ----------
    y : ndarray
        float32 (H, W, C) in [0, 1], the observation (values in holes are ignored).
    mask : ndarray
        (H, W) with 1 = known pixel, 0 = hole (the convention of ``dip.core.degrade``); below 0.5 is a hole.
    x_true : ndarray, optional
        Ground truth of the same shape.

    Returns
    -------
    list of Baseline
        The one ``biharmonic`` result (``y`` itself, "nothing to fill", when the mask has no hole).

    Raises
    ------
    ImageError
        For a malformed image, or a mask of another size.
    """
    from skimage.restoration import inpaint_biharmonic

    check_image(y, "y")
    mask = np.asarray(mask)
    if mask.shape != y.shape[:2]:
        raise ImageError(
            f"mask is {mask.shape[1]}x{mask.shape[0]} px but the image is "
            f"{y.shape[1]}x{y.shape[0]} px; use a mask of the same size."
        )
    holes = mask < 0.5
    if not holes.any():
        return [run_baseline("biharmonic", "Biharmonic", "nothing to fill", lambda: y, x_true, y.shape)]
    return [
        run_baseline(
            "biharmonic",
            "Biharmonic",
            f"scikit-image inpaint_biharmonic, {holes.mean():.1%} holes",
            lambda: inpaint_biharmonic(y.astype(np.float64), holes, channel_axis=-1),
            x_true,
            y.shape,
        )
    ]
