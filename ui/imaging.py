"""Image helpers for the pages: previews, the wipe comparison, upload inspection, masks, SR baselines.

No Streamlit here. Engine images are float32 (H, W, C) in [0, 1]; previews are uint8 (H, W, 3).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dip.images import to_uint8
from dip.presets import Preset
from dip.tasks import prepare_image

EXIF_ORIENTATION = 0x0112


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


def abs_error(x: np.ndarray, x_true: np.ndarray) -> np.ndarray:
    """|x - x_true| averaged over channels as a uint8 heat map (brighter = larger error, x4 gain)."""
    x_true = fit_to(x_true, x)
    err = np.abs(x.astype(np.float32) - x_true.astype(np.float32)).mean(axis=2)
    return np.clip(err * 4, 0, 255).astype(np.uint8)


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
            im = Image.open(io.BytesIO(data))
            orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError, SyntaxError):
        return None
    info = UploadInfo(im.width, im.height, im.mode, im.format or "?", getattr(im, "n_frames", 1),
                      orientation not in (None, 1))
    if info.has_alpha or (im.mode == "P" and "transparency" in im.info):
        info.notes.append("it has transparency: transparent pixels were placed on white")
    if im.mode in ("L", "1", "LA", "I;16", "I;16B", "I;16L", "I", "F"):
        info.notes.append("it is greyscale: the grey channel is used for red, green and blue")
    if im.mode.startswith("I;16") or im.mode == "I":
        info.notes.append("it has 16 bits per channel: values were scaled to [0, 1] without clipping")
    if info.exif_rotated:
        info.notes.append(f"its EXIF orientation ({orientation}) was applied, so it is shown upright")
    if info.frames > 1:
        info.notes.append(f"it has {info.frames} frames: the first one is used")
    if im.mode == "CMYK":
        info.notes.append("it is CMYK: converted to RGB")
    return info


def downscale_side(width: int, height: int, max_pixels: int, *, cap: int = 2048) -> int:
    """Longest side that brings an image under ``max_pixels`` (at most ``cap``)."""
    return int(min(cap, (max_pixels * max(width, height) / min(width, height)) ** 0.5))


def downscale_upload(data: bytes, max_side: int) -> bytes:
    """Re-encode an over-large image file as a PNG whose longer side is at most ``max_side`` (EXIF applied)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(data))
        im.draft(im.mode, (max_side, max_side))  # JPEG: decode at a reduced scale
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("RGB", "RGBA", "L", "LA", "I;16", "I"):
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def alpha_mask(data: bytes) -> Optional[np.ndarray]:
    """The alpha channel of an image file as a mask (1 = opaque = known pixel), or None without alpha."""
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if im.mode not in ("RGBA", "LA", "PA") and not (im.mode == "P" and "transparency" in im.info):
        return None
    a = np.asarray(im.convert("RGBA"))[..., 3]
    return (a > 127).astype(np.float32)


def prepare_mask(mask: np.ndarray, preset: Preset, *, max_side: Optional[int]) -> np.ndarray:
    """Apply to a full-size (H, W) mask the same downscale, padding and crop as ``prepare_image`` does to the image."""
    m = prepare_image(mask.astype(np.float32)[..., None], preset, max_side=max_side)[..., 0]
    return (m > 0.5).astype(np.float32)


def canvas_mask(rgba: Optional[np.ndarray], height: int, width: int) -> Optional[np.ndarray]:
    """Strokes drawn on the canvas (any opaque pixel) become holes; None when nothing was drawn."""
    if rgba is None or rgba.ndim != 3 or rgba.shape[2] < 4 or not (rgba[..., 3] > 0).any():
        return None
    holes = Image.fromarray(((rgba[..., 3] > 0) * 255).astype(np.uint8)).resize((width, height),
                                                                                Image.Resampling.NEAREST)
    return (np.asarray(holes) < 128).astype(np.float32)


def mask_overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 preview of ``image`` with the holes of ``mask`` tinted red."""
    a = preview(image).astype(np.float32)
    holes = mask < 0.5
    a[holes] = a[holes] * 0.35 + np.array([230, 40, 40]) * 0.65
    return a.astype(np.uint8)
