"""Image input/output at the boundary: any file becomes float32 (H, W, C) in [0, 1], and back.

Everything inside the engine works on that one representation; this module is the only place that
guesses formats (EXIF orientation, alpha, greyscale, 16-bit, palette).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dip.errors import ImageError

ImageSource = Union[str, os.PathLike, bytes, BinaryIO]

MAX_PIXELS = 40_000_000
"""Largest image accepted (width * height); larger files are refused before decoding."""


def _open(source: ImageSource) -> tuple[Image.Image, str]:
    name = str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "upload")
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        return Image.open(source), name
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file.") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image PIL can read; upload a PNG, JPEG, BMP, TIFF or WebP file.") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name} has too many pixels; the limit is {MAX_PIXELS:,}. Downscale it first.") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name} could not be decoded (truncated or corrupt file: {err}).") from None


def _to_array(im: Image.Image, mode: str) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):  # 16/32-bit greyscale: scale, don't saturate
        a = np.asarray(im, dtype=np.float64)
        a = a / (65535.0 if a.max() > 255 or im.mode.startswith("I;16") else 255.0)
        a = np.clip(a, 0, 1).astype(np.float32)[..., None]
        return np.repeat(a, 3, axis=2) if mode == "rgb" else a
    if im.mode == "F":
        a = np.clip(np.asarray(im, dtype=np.float32), 0, 1)[..., None]
        return np.repeat(a, 3, axis=2) if mode == "rgb" else a
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "grey" or (mode == "keep" and im.mode in ("L", "1")):
        return (np.asarray(im.convert("L"), dtype=np.float32) / 255.0)[..., None]
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def load_image(source: ImageSource, *, mode: str = "rgb", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file (path, bytes or file object) as float32 (H, W, C) in [0, 1].

    Parameters
    ----------
    source : path, bytes or binary file object
    mode : {"rgb", "keep", "grey"}
        "rgb" always returns 3 channels; "keep" keeps greyscale images as 1 channel; "grey" converts to 1.
    max_pixels : int
        Images with more pixels are refused before they are decoded.

    Notes
    -----
    EXIF orientation is applied; transparent images are composited on white; 16-bit images are scaled by
    1/65535; animated images give their first frame.

    Raises
    ------
    ImageError
        For a missing file, a file that is not an image, a truncated file, or too many pixels.
    """
    if mode not in ("rgb", "keep", "grey"):
        raise ValueError(f"mode={mode!r}; expected 'rgb', 'keep' or 'grey'.")
    im, name = _open(source)
    w, h = im.size
    if w * h > max_pixels:
        raise ImageError(f"{name} is {w}x{h} px ({w * h / 1e6:.1f} MP); the limit is {max_pixels / 1e6:.0f} MP. "
                         "Downscale it first (the app offers to do it, the CLI has --max-side).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.seek(0)
            im.load()
            im = ImageOps.exif_transpose(im)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name} could not be decoded (truncated or corrupt file: {err}).") from None
    return _to_array(im, mode)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float image in [0, 1] (values outside are clipped) -> uint8, rounding to nearest."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_pil(x: np.ndarray) -> Image.Image:
    """float32 (H, W, C) image -> PIL image (L for one channel, RGB for three)."""
    a = to_uint8(x)
    return Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)


def save_image(x: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a float (H, W, C) image in [0, 1] as an 8-bit PNG (or any format PIL infers from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(x).save(path)
    return path


def encode_png(x: np.ndarray) -> bytes:
    """float (H, W, C) image -> PNG bytes (for downloads)."""
    buf = io.BytesIO()
    to_pil(x).save(buf, format="PNG")
    return buf.getvalue()


def center_crop_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Centre-crop (H, W, C) to the largest multiple of ``multiple`` per side, as the official ``crop_image``."""
    h, w = x.shape[:2]
    nh, nw = h - h % multiple, w - w % multiple
    if nh == 0 or nw == 0:
        raise ImageError(f"image is {w}x{h} px; cropping to a multiple of {multiple} would leave nothing. "
                         f"Use an image of at least {multiple}x{multiple} px.")
    top, left = (h - nh) // 2, (w - nw) // 2
    return x[top:top + nh, left:left + nw]


def pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Reflection-pad (H, W, C) at the bottom/right up to the next multiple of ``multiple``."""
    h, w = x.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    return np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else x


def resize(x: np.ndarray, height: int, width: int, *, resample: Image.Resampling = Image.Resampling.LANCZOS
           ) -> np.ndarray:
    """Resize a float (H, W, C) image with PIL per channel in float precision (no 8-bit rounding)."""
    channels = [Image.fromarray(x[..., c].astype(np.float32), mode="F").resize((width, height), resample)
                for c in range(x.shape[2])]
    return np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=2)


def limit_side(x: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale (Lanczos) so the longer side is at most ``max_side``; unchanged if already small or None."""
    h, w = x.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return x
    s = max_side / max(h, w)
    return np.clip(resize(x, max(1, round(h * s)), max(1, round(w * s))), 0.0, 1.0)


def check_min_size(x: np.ndarray, min_side: int, *, what: str = "image") -> None:
    """Raise ImageError when either side of ``x`` is below ``min_side`` pixels."""
    h, w = x.shape[:2]
    if min(h, w) < min_side:
        raise ImageError(f"{what} is {w}x{h} px; this network needs at least {min_side}x{min_side} px. "
                         "Use a larger image or a network with fewer levels.")
