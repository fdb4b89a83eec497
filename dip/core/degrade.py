"""Make observations from a clean image: noise, low-resolution images, masks. numpy/PIL only, seeded.

Images are float32 (H, W, C) in [0, 1]; masks are float32 (H, W) with 1 = known pixel, 0 = hole.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dip.core.errors import ImageError
from dip.core.images import ImageSource, read_image, resize


def add_gaussian_noise(x: np.ndarray, sigma_255: float, *, seed: int | None = 0) -> np.ndarray:
    """Add white Gaussian noise: x + N(0, (sigma_255/255)^2), clipped to [0, 1], not quantised (as the official code).

    Parameters
    ----------
    x : ndarray
        Clean image, float (H, W, C) in [0, 1].
    sigma_255 : float
        Noise standard deviation in 0-255 units (e.g. 25), >= 0.
    seed : int or None, optional
        Seed of the noise (numpy ``default_rng``); None draws fresh noise. Default 0.

    Returns
    -------
    ndarray
        Noisy image, float32, same shape as ``x``, in [0, 1].

    Raises
    ------
    ValueError
        If ``sigma_255`` < 0.
    """
    if sigma_255 < 0:
        raise ValueError(f"sigma_255={sigma_255}; the noise level must be >= 0 (in 0-255 units, e.g. 25).")
    rng = np.random.default_rng(seed)
    noisy = x + rng.normal(0.0, sigma_255 / 255.0, size=x.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def downscale(x: np.ndarray, factor: int) -> np.ndarray:
    """Make the low-resolution image of size (H // factor, W // factor) by PIL Lanczos, as the official SR notebook.

    Parameters
    ----------
    x : ndarray
        High-resolution image, float32 (H, W, C) in [0, 1].
    factor : int
        Downscaling factor, e.g. 4.

    Returns
    -------
    ndarray
        Image of shape (H // factor, W // factor, C), clipped to [0, 1].

    Raises
    ------
    ImageError
        If the image is too small to downscale by ``factor``.
    """
    h, w = x.shape[:2]
    if h // factor < 1 or w // factor < 1:
        raise ImageError(f"image is {w}x{h} px, too small to downscale by {factor}.")
    return np.clip(resize(x, h // factor, w // factor), 0.0, 1.0)


def upscale(x: np.ndarray, factor: int, method: str = "bicubic") -> np.ndarray:
    """Upsample by PIL, the classical super-resolution baseline.

    Parameters
    ----------
    x : ndarray
        Low-resolution image, float32 (H, W, C) in [0, 1].
    factor : int
        Upscaling factor, e.g. 4.
    method : {"bicubic", "lanczos", "nearest"}, optional
        PIL resampling filter. Default "bicubic".

    Returns
    -------
    ndarray
        Image of shape (H * factor, W * factor, C), clipped to [0, 1].

    Raises
    ------
    ValueError
        If ``method`` is not one of the three.
    """
    modes = {
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
        "nearest": Image.Resampling.NEAREST,
    }
    if method not in modes:
        raise ValueError(f"method={method!r}; choose one of {', '.join(modes)}.")
    h, w = x.shape[:2]
    return np.clip(resize(x, h * factor, w * factor, resample=modes[method]), 0.0, 1.0)


def bernoulli_mask(height: int, width: int, keep_fraction: float = 0.5, *, seed: int | None = 0) -> np.ndarray:
    """Make a random mask keeping each pixel with probability ``keep_fraction`` (the official drops 1 - keep).

    Parameters
    ----------
    height, width : int
        Mask size in pixels.
    keep_fraction : float, optional
        Probability in (0, 1] that a pixel is known. Default 0.5.
    seed : int or None, optional
        Seed of the draw (numpy ``default_rng``); None draws a fresh mask. Default 0.

    Returns
    -------
    ndarray
        Mask, float32 (height, width), 1 = known pixel, 0 = hole.

    Raises
    ------
    ValueError
        If ``keep_fraction`` is not in (0, 1].
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction={keep_fraction}; expected a value in (0, 1], e.g. 0.5.")
    rng = np.random.default_rng(seed)
    return (rng.random((height, width)) < keep_fraction).astype(np.float32)


def box_mask(height: int, width: int, *, fraction: float = 0.25) -> np.ndarray:
    """Make a mask with a centred rectangular hole covering about ``fraction`` of the image area.

    Parameters
    ----------
    height, width : int
        Mask size in pixels.
    fraction : float, optional
        Area of the hole as a fraction of the image, in [0, 1]; the hole is at least 1 x 1 px. Default 0.25.

    Returns
    -------
    ndarray
        Mask, float32 (height, width), 1 = known pixel, 0 = hole.
    """
    side = np.sqrt(fraction)
    bh, bw = max(1, round(height * side)), max(1, round(width * side))
    m = np.ones((height, width), np.float32)
    top, left = (height - bh) // 2, (width - bw) // 2
    m[top : top + bh, left : left + bw] = 0.0
    return m


def text_mask(height: int, width: int, *, text: str = "Deep Image Prior", seed: int | None = 0) -> np.ndarray:
    """Make a mask of lines of text drawn over the image as holes, like the paper's text-inpainting example.

    Parameters
    ----------
    height, width : int
        Mask size in pixels; the font size is ``max(8, height // 16)``.
    text : str, optional
        Text repeated along each line. Default "Deep Image Prior".
    seed : int or None, optional
        Seed of the lines' horizontal offsets. Default 0.

    Returns
    -------
    ndarray
        Mask, float32 (height, width), 1 = known pixel, 0 = hole (the text).
    """
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    size = max(8, height // 16)
    font = ImageFont.load_default(size=size)
    rng = np.random.default_rng(seed)
    for row, top in enumerate(range(size // 2, height - size // 2, int(size * 1.8))):
        left = int(rng.integers(0, max(1, width // 8))) - (row % 2) * size
        draw.text((left, top), (text + "  ") * 8, fill=0, font=font)
    return (np.asarray(canvas) > 127).astype(np.float32)


def load_mask(source: ImageSource, *, height: int, width: int, max_side: int | None = None) -> np.ndarray:
    """Read a mask file: white (or opaque) = known, black (or transparent) = hole; must match the image size.

    Parameters
    ----------
    source : ImageSource
        The mask file (path, bytes or file-like object).
    height, width : int
        The full image's size in pixels.
    max_side : int or None, optional
        If given, the mask is decoded at reduced size, the size ``read_image(..., max_side=max_side)`` gives that
        image (so a mask fits an image decoded that way). Default None.

    Returns
    -------
    ndarray
        Mask, float32 (H, W), 1 = known pixel, 0 = hole (grey level > 0.5 is known).

    Raises
    ------
    ImageError
        If the file is not a readable image, its size differs from the image's, or it has no holes or no known
        pixels.
    """
    d = read_image(source, mode="grey", max_side=max_side)
    if (d.height, d.width) != (height, width):
        raise ImageError(
            f"mask is {d.width}x{d.height} px but the image is {width}x{height} px; "
            "use a mask of the same size as the image."
        )
    m = (d.pixels[..., 0] > 0.5).astype(np.float32)
    if m.min() == 1.0:
        raise ImageError("mask has no holes (it is all white); paint the missing region black.")
    if m.max() == 0.0:
        raise ImageError("mask has no known pixels (it is all black); known pixels must be white.")
    return m


def apply_mask(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Make the observed image of an inpainting problem: holes set to 0.

    Parameters
    ----------
    x : ndarray
        Clean image, float (H, W, C) in [0, 1].
    mask : ndarray
        Mask, float (H, W), 1 = known pixel, 0 = hole.

    Returns
    -------
    ndarray
        ``x * mask``, float32 (H, W, C).
    """
    return (x * mask[..., None]).astype(np.float32)


def keep_known(restored: np.ndarray, observed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Put the observed pixels back into the restored image where the mask is 1: only the holes are filled in.

    The network re-draws every pixel, the known ones only approximately; an inpainting result that keeps what
    was observed is what classical methods (e.g. biharmonic) return, so this is the fair image to compare them with.

    Parameters
    ----------
    restored : ndarray
        Network output, float (H, W, C) in [0, 1].
    observed : ndarray
        Observed image, same shape as ``restored``.
    mask : ndarray
        Mask, (H, W) or (H, W, C); values > 0.5 are known pixels.

    Returns
    -------
    ndarray
        float32 (H, W, C): ``observed`` on known pixels, ``restored`` in the holes.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    if restored.shape != observed.shape or restored.shape[:2] != mask.shape[:2]:
        raise ValueError(f"shapes differ: restored {restored.shape}, observed {observed.shape}, mask {mask.shape}")
    known = (mask > 0.5)[..., None] if mask.ndim == 2 else mask > 0.5
    return np.where(known, observed, restored).astype(np.float32)


def make_mask(kind: str, height: int, width: int, *, keep_fraction: float = 0.5, seed: int | None = 0) -> np.ndarray:
    """Make a mask by name.

    Parameters
    ----------
    kind : {"text", "bernoulli", "box"}
        ``text_mask``, ``bernoulli_mask`` (keeps ``keep_fraction``) or ``box_mask`` (default fraction).
    height, width : int
        Mask size in pixels.
    keep_fraction : float, optional
        For "bernoulli": probability in (0, 1] that a pixel is known. Default 0.5.
    seed : int or None, optional
        Seed for "text" and "bernoulli". Default 0.

    Returns
    -------
    ndarray
        Mask, float32 (height, width), 1 = known pixel, 0 = hole.

    Raises
    ------
    ValueError
        If ``kind`` is unknown or ``keep_fraction`` is out of range.
    """
    if kind == "text":
        return text_mask(height, width, seed=seed)
    if kind == "bernoulli":
        return bernoulli_mask(height, width, keep_fraction, seed=seed)
    if kind == "box":
        return box_mask(height, width)
    raise ValueError(f"mask kind {kind!r}; choose text, bernoulli or box.")
