"""Image quality metrics on float images in [0, 1] (data range 1), as the official notebooks compute them."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(x_true: np.ndarray, x: np.ndarray, *, border: int = 0) -> float:
    """PSNR in dB over all pixels and channels, data range 1 (skimage).

    ``border`` > 0 excludes that many pixels on every side (e.g. F16's corrupted 1-px frame).
    """
    if x_true.shape != x.shape:
        raise ValueError(f"shapes differ: {x_true.shape} vs {x.shape}")
    if border:
        x_true, x = x_true[border:-border, border:-border], x[border:-border, border:-border]
    x_true, x = np.asarray(x_true, np.float64), np.asarray(x, np.float64)
    if np.array_equal(x_true, x):
        return float("inf")  # skimage would divide by zero
    return float(peak_signal_noise_ratio(x_true, x, data_range=1.0))


def ssim(x_true: np.ndarray, x: np.ndarray) -> float:
    """Structural similarity of (H, W, C) images, data range 1, computed per channel (skimage)."""
    return float(
        structural_similarity(np.asarray(x_true, np.float64), np.asarray(x, np.float64), data_range=1.0, channel_axis=2)
    )


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error at data range 1 (inf for 0)."""
    return float("inf") if mse <= 0 else float(-10.0 * np.log10(mse))
