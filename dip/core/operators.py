"""Forward operators A of the data term ||A(x) - y||^2: one small module per task, same call ``op(x) -> y``.

Operators are deterministic and stateless during a call; kernels and masks are buffers, so ``op.to(device)``
moves them with the network. Inputs are (N, C, H, W) tensors.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dip.core.errors import ConfigError


class Identity(nn.Module):
    """Denoising: the observation is the image itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` unchanged.

        Parameters
        ----------
        x : Tensor
            Image batch (N, C, H, W).

        Returns
        -------
        Tensor
            ``x`` itself.
        """
        return x

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Return the observation's size for an image of ``height`` x ``width`` px: the same size."""
        return height, width


def lanczos2_taps(factor: int) -> np.ndarray:
    """Compute the 4*factor 1-D taps of the official Lanczos-2 downsampler (phase 0.5), normalised to sum 1.

    Tap i (1-based) is L2(|i + 0.5 - c| / factor) with c = 2*factor + 1 and
    L2(x) = sin(pi x) sin(pi x / 2) / (pi x / 2)^2 / 2 (L2(0) = 1); constants cancel in the normalisation.

    Parameters
    ----------
    factor : int
        Downsampling factor, e.g. 4.

    Returns
    -------
    ndarray
        float64 (4 * factor,), symmetric, summing to 1.

    Examples
    --------
    >>> lanczos2_taps(4).round(6)[:8].tolist()
    [-0.001065, -0.009752, -0.020384, -0.014878, 0.024594, 0.098658, 0.183115, 0.239711]
    """
    centre = 2 * factor + 1
    d = np.abs(np.arange(1, 4 * factor + 1) + 0.5 - centre) / factor
    taps = np.sinc(d) * np.sinc(d / 2)  # numpy's sinc is sin(pi x)/(pi x): the Lanczos-2 window
    return taps / taps.sum()


class Lanczos2Downsampler(nn.Module):
    """Super-resolution: the fixed Lanczos-2 downsampler of the official code.

    Replicate padding of 1.5*factor pixels keeps the output at (H // factor, W // factor); a separable
    (4*factor)^2 kernel is applied with stride ``factor`` to each channel independently.

    Parameters
    ----------
    factor : int, optional
        Downsampling factor, even and >= 2 (2, 4, 8, ...). Default 4.

    Raises
    ------
    ConfigError
        If ``factor`` is odd or < 2.
    """

    def __init__(self, factor: int = 4):
        super().__init__()
        if factor < 2 or factor % 2:
            raise ConfigError(f"factor={factor} is not supported; use an even factor such as 2, 4 or 8.")
        self.factor = factor
        taps = torch.from_numpy(lanczos2_taps(factor)).float()
        self.register_buffer("kernel", torch.outer(taps, taps)[None, None])
        self.pad = (len(taps) - factor) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Downsample each channel.

        Parameters
        ----------
        x : Tensor
            Image batch (N, C, H, W).

        Returns
        -------
        Tensor
            (N, C, H // factor, W // factor), in ``x``'s dtype.
        """
        n, c, h, w = x.shape
        x = F.pad(x.reshape(n * c, 1, h, w), (self.pad,) * 4, mode="replicate")
        y = F.conv2d(x, self.kernel.to(x.dtype), stride=self.factor)
        return y.reshape(n, c, *y.shape[-2:])

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Return the observation's size for an image of ``height`` x ``width`` px: each divided by ``factor``."""
        return height // self.factor, width // self.factor


class PixelMask(nn.Module):
    """Inpainting / pixel restoration: keeps the known pixels (mask 1) and zeroes the holes (mask 0).

    Parameters
    ----------
    mask : ndarray or Tensor
        (H, W) or (C, H, W) array of {0, 1}; it broadcasts over channels.
    """

    def __init__(self, mask: np.ndarray | torch.Tensor):
        super().__init__()
        m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
        if m.ndim == 2:
            m = m[None]
        self.register_buffer("mask", m[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zero the holes.

        Parameters
        ----------
        x : Tensor
            Image batch (N, C, H, W), H and W those of the mask.

        Returns
        -------
        Tensor
            ``x * mask``, same shape and dtype as ``x``.
        """
        return x * self.mask.to(x.dtype)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Return the observation's size for an image of ``height`` x ``width`` px: the same size."""
        return height, width
