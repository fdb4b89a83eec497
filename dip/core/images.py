"""Image input/output at the boundary: any file becomes float32 (H, W, C) in [0, 1], and back.

Everything inside the engine works on that one representation; this module is the only place that
guesses formats (EXIF orientation, alpha, greyscale, 16-bit, palette). Only PNG, JPEG, BMP, TIFF and WebP files
are opened (``FORMATS``); ``read_image(..., max_side=...)`` decodes a large one at reduced size without ever
holding it as a full-size float array.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NamedTuple, Optional, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from dip.core.errors import ImageError

ImageSource = Union[str, os.PathLike, bytes, BinaryIO]

MAX_PIXELS = 40_000_000
"""Largest image accepted (width * height); larger files are refused before decoding."""

FORMATS = ("PNG", "JPEG", "MPO", "BMP", "TIFF", "WEBP")
"""The only formats PIL may open (``Image.open(formats=...)``): the app's upload types; MPO is the JPEG cameras
write with a second picture inside (PIL opens it through its JPEG opener). Any other file (TGA, PCX, SGI, EPS,
which PIL hands to Ghostscript, ...) is refused by its content, whatever its name."""
FORMAT_NAMES = "PNG, JPEG, BMP, TIFF or WebP"

_MAGIC = (
    (b"GIF8", "GIF"),
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript (EPS)"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x01\xda", "SGI"),
    (b"\x00\x00\x01\x00", "ICO"),
)
_FTYP = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}

ORIENTATION = 0x0112
"""EXIF tag of the orientation; ``_TRANSPOSE`` turns such an image upright, as ``ImageOps.exif_transpose``."""
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_STRIP_PIXELS = 1 << 20  # a reduced decode converts and reduces the full image in strips of about this many pixels


def _head(source) -> bytes:
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return f.read(16)
        source.seek(0)
        return source.read(16)
    except (OSError, AttributeError):
        return b""


def _refused_kind(head: bytes) -> Optional[str]:
    """Name the format of a file PIL may not open, when its first bytes say it unambiguously (None otherwise)."""
    if head[4:8] == b"ftyp":
        return _FTYP.get(head[8:12])
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def open_image(source: ImageSource) -> Image.Image:
    """Open an image file for decoding, refusing any format but ``FORMATS`` (only the header is read).

    Parameters
    ----------
    source : path, bytes or binary file object
        A file object's ``name`` attribute, if any, names it in the error messages.

    Returns
    -------
    PIL.Image.Image
        Not yet decoded; ``Image.open`` reads the pixels on ``load()``.

    Raises
    ------
    ImageError
        For a missing file, a file that is not a PNG, JPEG, BMP, TIFF or WebP file (naming what it is when its
        first bytes tell, e.g. GIF, HEIC or EPS), a corrupt header, or more pixels than PIL's bomb limit.
    """
    return _open(source)[0]


def _open(source: ImageSource) -> tuple[Image.Image, str]:
    name = str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "upload")
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        Image.init()  # registers every opener, so that the names below can be checked
        return Image.open(source, formats=[f for f in FORMATS if f in Image.OPEN]), name
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file.") from None
    except UnidentifiedImageError:
        kind = _refused_kind(_head(source))
        if kind:
            raise ImageError(
                f"{name} is a {kind} file, not a {FORMAT_NAMES} file; save it as one of those "
                "(PNG keeps every pixel) and upload that."
            ) from None
        raise ImageError(
            f"{name} is not an image PIL can read as a {FORMAT_NAMES} file; upload one of those formats."
        ) from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name} has too many pixels; the limit is {MAX_PIXELS:,}. Downscale it first.") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name} could not be decoded (truncated or corrupt file: {err}).") from None


_ALPHA_MODES = ("RGBA", "LA", "PA")


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info)


def _to_array(im: Image.Image, mode: str, *, wide: Optional[bool] = None) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):  # 16/32-bit greyscale: scale, don't saturate
        a = np.asarray(im, dtype=np.float64)
        if wide is None:
            wide = a.max() > 255 or im.mode.startswith("I;16")
        a = np.clip(a / (65535.0 if wide else 255.0), 0, 1).astype(np.float32)[..., None]
        return np.repeat(a, 3, axis=2) if mode == "rgb" else a
    if im.mode == "F":
        a = np.clip(np.asarray(im, dtype=np.float32), 0, 1)[..., None]
        return np.repeat(a, 3, axis=2) if mode == "rgb" else a
    if _has_alpha(im):
        im = flatten(im)
    if mode == "grey" or (mode == "keep" and im.mode in ("L", "1")):
        return (np.asarray(im.convert("L"), dtype=np.float32) / 255.0)[..., None]
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def flatten(im: Image.Image) -> Image.Image:
    """Convert an image to one of the modes "L", "RGB", "I", "F", pixel for pixel, as ``load_image``.

    Transparency is composited on white, 16-bit becomes "I", bilevel "L", anything else (palette, CMYK, YCbCr, ...)
    "RGB".

    Parameters
    ----------
    im : PIL.Image.Image
        Any image PIL opened.

    Returns
    -------
    PIL.Image.Image
        ``im`` itself when it is already "L", "RGB", "I" or "F" without transparency, else a converted copy.
    """
    if _has_alpha(im):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if im.mode in ("L", "RGB", "I", "F"):
        return im
    if im.mode.startswith("I;16"):
        return im.convert("I")
    return im.convert("L" if im.mode == "1" else "RGB")


def reduced_size(width: int, height: int, max_side: Optional[int]) -> tuple[int, int]:
    """Scale (width, height) so the longer side is at most ``max_side``, rounded as ``limit_side`` rounds.

    Parameters
    ----------
    width, height : int
        Full size in px.
    max_side : int or None
        Longest side allowed in px; None (or 0) keeps the size.

    Returns
    -------
    tuple of int
        (width, height), each at least 1; unchanged when already small enough.
    """
    if not max_side or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def shrink(
    im: Image.Image, max_side: Optional[int], *, convert: Callable[[Image.Image], Image.Image] = flatten
) -> Image.Image:
    """Decode an opened image at most ``max_side`` px on its longer side, upright, in the mode ``convert`` makes.

    The full-resolution ``float32`` array is never made: a JPEG is decoded at 1/2, 1/4 or 1/8 scale
    (``Image.draft``) when that is still at least the target size; the decoded image is then converted and
    box-reduced by a whole factor in strips of rows (``Image.reduce``), and Lanczos-resized to the exact size.
    Besides the decoded file, memory holds one strip and an image under twice the target size per side.

    Parameters
    ----------
    im : PIL.Image.Image
        As ``open_image`` returns it; it is loaded here (so ``OSError`` may come from a corrupt file).
    max_side : int or None
        Longer side of the result in px; None (or a larger value) keeps the full size.
    convert : callable
        Applied to the whole image, or to each strip, before any resampling (default: ``flatten``, which
        composites transparency on white); it must return a mode ``Image.reduce`` takes ("L", "RGB", "RGBA", "I",
        "F", ...).

    Returns
    -------
    PIL.Image.Image
        Of size ``reduced_size(*im.size, max_side)``, the EXIF orientation applied (width and height swap for
        orientations 5 to 8).
    """
    turn = _TRANSPOSE.get(im.getexif().get(ORIENTATION, 1))
    size = reduced_size(*im.size, max_side)
    if size != im.size:
        im.draft(im.mode, size)  # JPEG only; a no-op for the other formats
    im.load()
    out = convert(im) if size == im.size else _reduce_in_strips(im, size, convert)
    return out.transpose(turn) if turn else out


def _reduce_in_strips(im: Image.Image, size: tuple[int, int], convert) -> Image.Image:
    w, h = im.size
    k = max(1, min(w // size[0], h // size[1]))
    rows = k * max(1, _STRIP_PIXELS // (w * k))
    mid = None
    for top in range(0, h, rows):
        strip = convert(im.crop((0, top, w, min(h, top + rows))))
        strip = strip.reduce(k) if k > 1 else strip
        if mid is None:
            mid = Image.new(strip.mode, (-(-w // k), -(-h // k)))
        mid.paste(strip, (0, top // k))
    return mid if mid.size == size else mid.resize(size, Image.Resampling.LANCZOS)


class Decoded(NamedTuple):
    """An image as ``read_image`` returns it, with the size of the file's full image."""

    pixels: np.ndarray
    """(h, w, C) float32 in [0, 1], or uint8; at most ``max_side`` px on the longer side."""
    height: int
    """Height of the full image in px, EXIF orientation applied (``pixels`` may be smaller)."""
    width: int
    """Width of the full image in px, EXIF orientation applied."""


def read_image(
    source: ImageSource,
    *,
    mode: str = "rgb",
    max_pixels: int = MAX_PIXELS,
    max_side: Optional[int] = None,
    uint8: bool = False,
) -> Decoded:
    """Read an image file, optionally at a reduced size, with the size of its full image.

    Parameters
    ----------
    source : path, bytes or binary file object
    mode : {"rgb", "keep", "grey"}
        "rgb" always returns 3 channels; "keep" keeps greyscale images as 1 channel; "grey" converts to 1.
    max_pixels : int
        Images with more pixels are refused before they are decoded.
    max_side : int, optional
        Longer side of ``pixels`` in px: a larger image is decoded at reduced size (see ``shrink``), so that
        neither a full-size float array nor, for a JPEG, a full-size decode is ever made. None: full size.
    uint8 : bool
        Return ``pixels`` as uint8 in [0, 255] (four times smaller than float32); 16-bit and float images are
        scaled as for float32 and then rounded.

    Returns
    -------
    Decoded
        ``pixels`` (h, w, C) float32 in [0, 1] (uint8 with ``uint8=True``), and ``height``, ``width`` of the full
        image after EXIF orientation.

    Raises
    ------
    ImageError
        For a missing file, a file that is not a PNG, JPEG, BMP, TIFF or WebP image, a truncated file, or too many
        pixels.
    ValueError
        If ``mode`` is not one of the three.

    Notes
    -----
    EXIF orientation is applied; transparent images are composited on white; 16-bit images are scaled by
    1/65535; animated images give their first frame. Only ``FORMATS`` are read.
    """
    if mode not in ("rgb", "keep", "grey"):
        raise ValueError(f"mode={mode!r}; expected 'rgb', 'keep' or 'grey'.")
    im, name = _open(source)
    w, h = im.size
    if w * h > max_pixels:
        raise ImageError(
            f"{name} is {w}x{h} px ({w * h / 1e6:.1f} MP); the limit is {max_pixels / 1e6:.0f} MP. "
            "Downscale it first (the app offers to do it, the CLI has --max-side)."
        )
    try:
        im.seek(0)
        if im.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):
            w, h = h, w
        small = shrink(im, max_side)
        wide = im.mode.startswith("I;16") or (im.mode == "I" and im.getextrema()[1] > 255)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name} could not be decoded (truncated or corrupt file: {err}).") from None
    if uint8 and small.mode in ("L", "RGB"):
        one = mode == "grey" or (mode == "keep" and small.mode == "L")
        a = np.asarray(small.convert("L" if one else "RGB"))
        return Decoded(a[..., None] if one else a, h, w)
    a = _to_array(small, mode, wide=wide)
    return Decoded(to_uint8(a) if uint8 else a, h, w)


def load_image(
    source: ImageSource, *, mode: str = "rgb", max_pixels: int = MAX_PIXELS, max_side: Optional[int] = None
) -> np.ndarray:
    """Read an image file (path, bytes or file object) as float32 (H, W, C) in [0, 1].

    Parameters
    ----------
    source : path, bytes or binary file object
    mode : {"rgb", "keep", "grey"}
        "rgb" always returns 3 channels; "keep" keeps greyscale images as 1 channel; "grey" converts to 1.
    max_pixels : int
        Images with more pixels are refused before they are decoded.
    max_side : int, optional
        Decode at reduced size so the longer side is at most this many px (see ``read_image``); None: full size.

    Returns
    -------
    ndarray
        float32 (H, W, C) in [0, 1], C = 3 (or 1 for "grey", and for greyscale files with "keep").

    Raises
    ------
    ImageError
        For a missing file, a file that is not a PNG, JPEG, BMP, TIFF or WebP image, a truncated file, or too many
        pixels.
    ValueError
        If ``mode`` is not one of the three.

    Notes
    -----
    EXIF orientation is applied; transparent images are composited on white; 16-bit images are scaled by
    1/65535; animated images give their first frame. Only ``FORMATS`` (PNG, JPEG, BMP, TIFF, WebP) are read.
    """
    return read_image(source, mode=mode, max_pixels=max_pixels, max_side=max_side).pixels


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Convert a float image in [0, 1] to uint8, rounding to nearest.

    Parameters
    ----------
    x : ndarray
        Float image in [0, 1], any shape; values outside are clipped.

    Returns
    -------
    ndarray
        uint8 in [0, 255], same shape.
    """
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_pil(x: np.ndarray) -> Image.Image:
    """Convert a float32 (H, W, C) image in [0, 1] to an 8-bit PIL image.

    Parameters
    ----------
    x : ndarray
        float32 (H, W, C) in [0, 1], C = 1 or 3.

    Returns
    -------
    PIL.Image.Image
        Mode "L" for one channel, "RGB" for three.
    """
    a = to_uint8(x)
    return Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)


def save_image(x: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a float (H, W, C) image in [0, 1] as an 8-bit PNG (or any format PIL infers from the suffix).

    Parameters
    ----------
    x : ndarray
        float (H, W, C) in [0, 1], C = 1 or 3.
    path : str or PathLike
        Destination file; missing parent folders are created.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(x).save(path)
    return path


def center_crop_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Centre-crop (H, W, C) to the largest multiple of ``multiple`` per side, as the official ``crop_image``.

    Parameters
    ----------
    x : ndarray
        Image (H, W, C).
    multiple : int
        Each side of the result is a multiple of this, e.g. 32.

    Returns
    -------
    ndarray
        View of ``x`` of shape (H - H % multiple, W - W % multiple, C).

    Raises
    ------
    ImageError
        If a side is smaller than ``multiple``.
    """
    h, w = x.shape[:2]
    nh, nw = h - h % multiple, w - w % multiple
    if nh == 0 or nw == 0:
        raise ImageError(
            f"image is {w}x{h} px; cropping to a multiple of {multiple} would leave nothing. "
            f"Use an image of at least {multiple}x{multiple} px."
        )
    top, left = (h - nh) // 2, (w - nw) // 2
    return x[top : top + nh, left : left + nw]


def pad_to_multiple(x: np.ndarray, multiple: int) -> np.ndarray:
    """Reflection-pad (H, W, C) at the bottom/right up to the next multiple of ``multiple``.

    Parameters
    ----------
    x : ndarray
        Image (H, W, C).
    multiple : int
        Each side of the result is a multiple of this, e.g. 32.

    Returns
    -------
    ndarray
        Padded copy, or ``x`` itself when both sides are already multiples.
    """
    h, w = x.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    return np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else x


def resize(
    x: np.ndarray, height: int, width: int, *, resample: Image.Resampling = Image.Resampling.LANCZOS
) -> np.ndarray:
    """Resize a float (H, W, C) image with PIL per channel in float precision (no 8-bit rounding).

    Parameters
    ----------
    x : ndarray
        Float image (H, W, C).
    height, width : int
        Size of the result in px.
    resample : PIL.Image.Resampling, optional
        PIL filter. Default Lanczos.

    Returns
    -------
    ndarray
        float32 (height, width, C), not clipped (Lanczos may overshoot [0, 1]).
    """
    channels = [
        Image.fromarray(x[..., c].astype(np.float32), mode="F").resize((width, height), resample)
        for c in range(x.shape[2])
    ]
    return np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=2)


def limit_side(x: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale (Lanczos) so the longer side is at most ``max_side``; unchanged if already small or None.

    Parameters
    ----------
    x : ndarray
        float32 (H, W, C) in [0, 1].
    max_side : int or None
        Longest side allowed in px; None (or 0) keeps the size.

    Returns
    -------
    ndarray
        Downscaled image clipped to [0, 1], or ``x`` itself.
    """
    h, w = x.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return x
    width, height = reduced_size(w, h, max_side)
    return np.clip(resize(x, height, width), 0.0, 1.0)


def check_min_size(x: np.ndarray, min_side: int, *, what: str = "image") -> None:
    """Raise ImageError when either side of ``x`` is below ``min_side`` pixels.

    Parameters
    ----------
    x : ndarray
        Image (H, W, ...).
    min_side : int
        Smallest side allowed in px.
    what : str, optional
        How the message names the image. Default "image".

    Raises
    ------
    ImageError
        If ``min(H, W) < min_side``.
    """
    h, w = x.shape[:2]
    if min(h, w) < min_side:
        raise ImageError(
            f"{what} is {w}x{h} px; this network needs at least {min_side}x{min_side} px. Use a larger image."
        )
