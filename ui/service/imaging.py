"""Image helpers for the pages: previews, the wipe comparison, upload inspection, masks, SR baselines.

No Streamlit here. Engine images are float32 (H, W, C) in [0, 1]; previews are uint8 (H, W, 3).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image

from dip.core.errors import DIPError
from dip.core.images import ORIENTATION as EXIF_ORIENTATION
from dip.core.images import Decoded, open_image, read_image, shrink, to_uint8
from dip.core.presets import Preset
from dip.core.tasks import prepare_image
from ui.service.config import DOWNSCALE_TO

DECODES = threading.BoundedSemaphore(2)
"""Uploads decoded at once in this process, all sessions together (a 40 MP PNG holds 160 MB while it is decoded;
a third browser waits instead of adding its own): every full decode of an upload or mask file holds it."""


def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _malloc_trim()


@contextmanager
def decoding():
    """Hold a ``DECODES`` slot; on leaving, hand the memory freed since back to the OS (glibc keeps freed blocks in
    the arena of the thread that used them: measured, one 40 MP decode left 130 MB of RSS behind in its session's
    thread, and three sessions three times that). Free the decoded file before leaving (return from a function)."""
    try:
        with DECODES:
            yield
    finally:
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)


def preview(x: Optional[np.ndarray], max_side: Optional[int] = None) -> Optional[np.ndarray]:
    """float (H, W, C) or (H, W) in [0, 1], or uint8 -> uint8 (H, W, 3), optionally downscaled."""
    if x is None:
        return None
    a = x if x.dtype == np.uint8 else to_uint8(x if x.ndim == 3 else x[..., None])
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if max_side and max(a.shape[:2]) > max_side:
        im = Image.fromarray(a)
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        a = np.asarray(im)
    return np.ascontiguousarray(a)


def fit_to(a: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Resize uint8 ``a`` to the height and width of ``like`` (no-op when they already match)."""
    h, w = like.shape[:2]
    if a.shape[:2] == (h, w):
        return a
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.LANCZOS))


def wipe(left: np.ndarray, right: np.ndarray, position: int) -> np.ndarray:
    """Left part from ``left``, right part from ``right`` (resized to match), split at ``position`` % with a line."""
    right = fit_to(right, left)
    w = left.shape[1]
    cut = int(round(np.clip(position, 0, 100) / 100 * w))
    out = np.concatenate([left[:, :cut], right[:, cut:]], axis=1).copy()
    if 0 < cut < w:
        out[:, cut - 1] = (255, 214, 10)  # a 1-px yellow divider
    return out


@dataclass
class UploadInfo:
    """What an uploaded file is, read from its header without decoding the pixels."""

    width: int
    height: int
    mode: str
    format: str
    frames: int = 1
    exif_rotated: bool = False
    notes: list = field(default_factory=list)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def has_alpha(self) -> bool:
        return self.mode in ("RGBA", "LA", "PA", "RGBa", "La")


def inspect_upload(data: bytes) -> Optional[UploadInfo]:
    """Header facts of an image file, with notes on what loading changes; None if PIL cannot identify it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = open_image(data)  # PNG, JPEG, BMP, TIFF and WebP only, as the decode
            orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    except (DIPError, OSError, ValueError, SyntaxError):
        return None
    info = UploadInfo(
        im.width, im.height, im.mode, im.format or "?", getattr(im, "n_frames", 1), orientation not in (None, 1)
    )
    if info.has_alpha or (im.mode == "P" and "transparency" in im.info):
        info.notes.append("it has transparency: transparent pixels were placed on white")
    if im.mode in ("L", "1", "LA", "I;16", "I;16B", "I;16L", "I", "F"):
        info.notes.append("it is greyscale: the grey channel is used for red, green and blue")
    if im.mode.startswith("I;16") or im.mode == "I":
        info.notes.append(
            "it has 16 bits per channel: values were scaled to [0, 1] without clipping (and kept at 8 bits)"
        )
    if info.exif_rotated:
        info.notes.append(f"its EXIF orientation ({orientation}) was applied, so it is shown upright")
    if info.frames > 1:
        info.notes.append(f"it has {info.frames} frames: the first one is used")
    if im.mode == "CMYK":
        info.notes.append("it is CMYK: converted to RGB")
    return info


def decode_upload(data: bytes, name: str, *, max_pixels: int, max_side: Optional[int] = DOWNSCALE_TO) -> Decoded:
    """An uploaded file as the pages keep it: uint8 (h, w, 3), read-only, at most ``max_side`` px on the longer
    side (decoded at reduced size, never as a full-size float array), with the full image's height and width.

    Holds ``DECODES`` while it decodes. Raises ImageError (naming ``name``) for a file that cannot be used.
    """
    f = io.BytesIO(data)
    f.name = name
    with decoding():
        decoded = read_image(f, mode="rgb", max_pixels=max_pixels, max_side=max_side, uint8=True)
    decoded.pixels.flags.writeable = False  # shared by every session through the cache
    return decoded


def float_image(pixels: np.ndarray) -> np.ndarray:
    """uint8 (h, w, C) -> a new float32 array in [0, 1], equal to what ``load_image`` gives (one allocation)."""
    x = pixels.astype(np.float32)
    x /= 255.0
    return x


def downscale_side(width: int, height: int, max_pixels: int, *, cap: int = DOWNSCALE_TO) -> int:
    """Longest side that brings an image under ``max_pixels`` (at most ``cap``)."""
    return int(min(cap, (max_pixels * max(width, height) / min(width, height)) ** 0.5))


def _png_mode(im: Image.Image) -> Image.Image:
    """A mode PNG keeps and ``Image.reduce`` takes (16-bit as "I" until it is written), transparency kept."""
    if im.mode in ("RGB", "RGBA", "L", "LA", "I"):
        return im
    if im.mode.startswith("I;16"):
        return im.convert("I")
    if im.mode == "PA" or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")
    return im.convert("L" if im.mode == "1" else "RGB")


def downscale_upload(data: bytes, max_side: int) -> bytes:
    """Re-encode an over-large image file as a PNG whose longer side is at most ``max_side`` (EXIF applied).

    Decoded at reduced size while holding ``DECODES``; transparency and 16 bits per sample are kept.
    """
    with decoding():
        im = _shrunk_for_png(data, max_side)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _shrunk_for_png(data: bytes, max_side: int) -> Image.Image:
    full = open_image(data)
    im = shrink(full, max_side, convert=_png_mode)
    if im.mode == "I":  # PNG writes 16-bit greyscale as I;16; 8-bit values stay 8-bit
        sixteen = full.mode != "I" or full.getextrema()[1] > 255
        im = im.convert("I;16" if sixteen else "L")
    return im


def alpha_mask(data: bytes, *, max_side: Optional[int] = None) -> Optional[np.ndarray]:
    """The alpha channel of an image file as a mask (1 = opaque = known pixel), or None without alpha.

    With ``max_side`` it has the size ``decode_upload(data, ..., max_side=max_side)`` gives the image.
    """
    with decoding():
        a = _alpha(data, max_side)
    return None if a is None else (np.asarray(a) > 127).astype(np.float32)


def _alpha(data: bytes, max_side: Optional[int]) -> Optional[Image.Image]:
    im = open_image(data)
    if im.mode not in ("RGBA", "LA", "PA") and not (im.mode == "P" and "transparency" in im.info):
        return None
    return shrink(im, max_side, convert=lambda part: part.convert("RGBA").getchannel("A"))


def prepare_mask(mask: np.ndarray, preset: Preset, *, max_side: Optional[int]) -> np.ndarray:
    """Apply to a full-size (H, W) mask the same downscale, padding and crop as ``prepare_image`` does to the image."""
    m = prepare_image(mask.astype(np.float32)[..., None], preset, max_side=max_side)[..., 0]
    return (m > 0.5).astype(np.float32)


def canvas_mask(rgba: Optional[np.ndarray], height: int, width: int) -> Optional[np.ndarray]:
    """Strokes drawn on the canvas (any opaque pixel) become holes; None when nothing was drawn."""
    if rgba is None or rgba.ndim != 3 or rgba.shape[2] < 4 or not (rgba[..., 3] > 0).any():
        return None
    holes = Image.fromarray(((rgba[..., 3] > 0) * 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.NEAREST
    )
    return (np.asarray(holes) < 128).astype(np.float32)


def mask_overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 preview of ``image`` with the holes of ``mask`` tinted red."""
    a = preview(image).astype(np.float32)
    holes = mask < 0.5
    a[holes] = a[holes] * 0.35 + np.array([230, 40, 40]) * 0.65
    return a.astype(np.uint8)
