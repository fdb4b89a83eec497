"""Image quality metrics on float images in [0, 1] (data range 1), as the official notebooks compute them."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(x_true: np.ndarray, x: np.ndarray, *, border: int = 0) -> float:
    """Compute the PSNR in dB over all pixels and channels, data range 1 (skimage).

    Parameters
    ----------
    x_true : ndarray
        Reference image, float (H, W, C) or (H, W) in [0, 1].
    x : ndarray
        Image to score, same shape as ``x_true``, float in [0, 1].
    border : int, optional
        If > 0, exclude that many pixels on every side (e.g. F16's corrupted 1-px frame). Default 0.

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the images are identical (skimage would divide by zero).

    Raises
    ------
    ValueError
        If the shapes differ.
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
    """Compute the structural similarity of (H, W, C) images, data range 1, per channel (skimage).

    Parameters
    ----------
    x_true : ndarray
        Reference image, float (H, W, C) in [0, 1].
    x : ndarray
        Image to score, same shape as ``x_true``, float in [0, 1].

    Returns
    -------
    float
        Mean SSIM over the image and channels, at most 1 (identical images).
    """
    return float(
        structural_similarity(np.asarray(x_true, np.float64), np.asarray(x, np.float64), data_range=1.0, channel_axis=2)
    )


def psnr_from_mse(mse: float) -> float:
    """Convert a mean squared error at data range 1 to PSNR in dB.

    Parameters
    ----------
    mse : float
        Mean squared error of images in [0, 1].

    Returns
    -------
    float
        ``-10 * log10(mse)`` in dB; ``inf`` when ``mse`` <= 0.
    """
    return float("inf") if mse <= 0 else float(-10.0 * np.log10(mse))
