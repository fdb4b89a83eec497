"""Input widgets: the image picker (sample or upload, with a specific message for every bad file) and the
inpainting mask picker (generated, uploaded, drawn in the browser, or the image's transparency)."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Optional

import numpy as np
import streamlit as st
from PIL import Image

from dip.core import degrade
from dip.core.errors import DIPError
from dip.core.images import Decoded
from ui import keys
from ui.service import config
from ui.service.imaging import (
    UploadInfo,
    alpha_mask,
    canvas_mask,
    decode_upload,
    decoding,
    downscale_side,
    downscale_upload,
    float_image,
    inspect_upload,
    prepare_mask,
    preview,
)
from ui.service.text import plain

MESSAGE_CHARS = 400  # an engine message (it may quote the file name) is shown escaped, up to this many characters


@dataclass
class Picked:
    """The chosen image as loaded: float32 (h, w, 3), at most ``config.DOWNSCALE_TO`` px on the longer side (a
    larger file is decoded at reduced size); ``full_size``: (height, width) of the file's image, EXIF applied;
    ``blind``: it is already degraded."""

    name: str
    data: bytes
    image: np.ndarray
    info: Optional[UploadInfo]
    blind: bool = False
    digest: str = ""  # identifies the file's bytes: the cache key of the work done on it
    full_size: tuple[int, int] = (0, 0)


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def named(data: bytes, name: str) -> io.BytesIO:
    """Bytes as a file object whose name appears in the engine's error messages."""
    f = io.BytesIO(data)
    f.name = name
    return f


def samples() -> list[str]:
    return sorted(p.name for p in config.SAMPLES_DIR.glob("*.png"))


def uploaded(key: str, label: str, help: Optional[str] = None) -> tuple[Optional[str], Optional[bytes]]:
    """An uploader whose file survives page switches (the bytes are kept in session state)."""
    stash = keys.kept(key)

    def forget():
        st.session_state.pop(stash, None)

    up = st.file_uploader(
        label, type=config.UPLOAD_TYPES, key=key, help=help, on_change=forget, max_upload_size=config.UPLOAD_MB
    )
    if up is not None:
        st.session_state[stash] = (up.name, up.getvalue())
    elif stash in st.session_state:
        st.caption(f"Using the file uploaded earlier: {plain(st.session_state[stash][0])}")
    return st.session_state.get(stash, (None, None))


def image_picker(task: str, *, blind_label: Optional[str] = None) -> Optional[Picked]:
    """Sample image or upload (optionally an already degraded one); shows a specific error for bad files."""
    sources = {"sample": "Sample image", "upload": "Upload an image"}
    if blind_label:
        sources["blind"] = blind_label
    source = st.radio(
        "Image", list(sources), format_func=sources.get, horizontal=True, key=keys.source(task), persist_state="session"
    )
    if source == "sample":
        name = st.selectbox("Sample", samples(), key=keys.sample(task), persist_state="session")
        return _load(task, name, (config.SAMPLES_DIR / name).read_bytes(), None) if name else None
    help = "PNG, JPEG, BMP, TIFF or WebP. Transparent, greyscale, 16-bit and EXIF-rotated files are converted."
    name, data = uploaded(keys.upload(task), "Upload an image file", help)
    if data is None:
        st.info("Upload an image, or pick a sample image.")
        return None
    if source == "blind":  # the same uploader as a clean upload: say what changes
        st.caption(
            f"{plain(name)} is used as it is, already degraded: nothing is added to it, and there is no "
            "ground truth to score against."
        )
    return _load(task, name, data, keys.kept(keys.upload(task)), blind=source == "blind")


def _load(task: str, name: str, data: bytes, stash: Optional[str], *, blind: bool = False) -> Optional[Picked]:
    digest = _digest(data)
    smaller = st.session_state.get(keys.downscaled(task))
    if smaller and smaller[0] == digest:  # the user accepted a downscaled copy
        name, data = smaller[1], smaller[2]
        digest = _digest(data)
    info = inspect_upload(data)
    if info is not None and info.pixels > config.max_pixels():
        _offer_a_downscale(task, name, data, digest, info, stash)
        return None
    try:
        decoded = _decoded(digest, name, config.max_pixels(), config.DOWNSCALE_TO, data)
    except DIPError as err:
        st.error(plain(err, limit=MESSAGE_CHARS))
        return None
    notes = list(info.notes) if info is not None else []
    h, w = decoded.pixels.shape[:2]
    if (h, w) != (decoded.height, decoded.width):
        notes.append(f"it is used at {w}x{h} px, more than the largest working size")
    if info is not None and notes:
        st.caption(f"{plain(name)} ({info.width}x{info.height} {info.format}): " + "; ".join(notes) + ".")
    image = float_image(decoded.pixels)  # a new array: callers may modify theirs
    return Picked(name, data, image, info, blind, digest, (decoded.height, decoded.width))


def _offer_a_downscale(task: str, name: str, data: bytes, digest: str, info: UploadInfo, stash: Optional[str]):
    """Over the pixel limit: say so, and offer a downscaled copy. Making it decodes the whole file (a JPEG at 1/2
    to 1/8 scale), so a PNG, BMP, TIFF or WebP over twice the limit is not offered: that would hold 8 B per pixel
    allowed, 320 MB at the default 40 MP."""
    limit = config.max_pixels()
    st.error(f"{plain(name)} is {info.width}x{info.height} px ({info.pixels:,} pixels); the limit is {limit:,} pixels.")
    if info.format not in ("JPEG", "MPO") and info.pixels > 2 * limit:
        st.info(
            "That is too large to downscale here: save a smaller copy (at most "
            f"{downscale_side(info.width, info.height, limit)} px on the longer side) and upload that."
        )
        return
    side = downscale_side(info.width, info.height, limit)
    if stash and st.button(f"Downscale it to {side} px on the longer side and use that", key=keys.downscale(task)):
        try:
            smaller = downscale_upload(data, side)
        except (DIPError, OSError, ValueError, SyntaxError) as err:
            st.error(plain(f"{name} could not be downscaled: {err}", limit=MESSAGE_CHARS))
            return
        st.session_state[keys.downscaled(task)] = (digest, f"{name} (downscaled)", smaller)
        st.rerun()


@st.cache_resource(show_spinner=False, max_entries=2, ttl=3600)
def _decoded(digest: str, name: str, max_pixels: int, max_side: int, _data: bytes) -> Decoded:
    """An upload decoded once, not at every widget change (each reruns the page; a 12 MP JPEG takes about a second).
    Kept as a resource, not pickled data, and as uint8 at most ``max_side`` px (12 MB at 2048 px): a 40 MP upload
    kept as full-size float32 held 480 MB for an hour. Decoded at reduced size, a few at a time (``DECODES``)."""
    return decode_upload(_data, name, max_pixels=max_pixels, max_side=max_side)


@st.cache_resource(show_spinner=False, max_entries=2, ttl=3600)
def _transparency(digest: str, _data: bytes) -> Optional[np.ndarray]:
    """An upload's alpha mask at its decoded size, decoded once per file, not at every rerun (as ``_decoded``)."""
    return alpha_mask(_data, max_side=config.DOWNSCALE_TO)


@st.cache_resource(show_spinner=False, max_entries=2, ttl=3600)
def _canvas_background(digest: str, _image: np.ndarray) -> Image.Image:
    """The picture under the drawing canvas, scaled once per image, not at every stroke's rerun (as ``_decoded``)."""
    return Image.fromarray(preview(_image, max_side=CANVAS_SIDE))


def mask_kind() -> Optional[str]:
    """The inpainting mask chosen (a key of ``MASKS``), recorded with the run."""
    return st.session_state.get(keys.MASK_KIND)


def holes_are_transparency() -> bool:
    """Whether the inpainting mask is the image's own transparency: then the white-filled holes are no ground truth."""
    return mask_kind() == "alpha"


# -- inpainting masks --
MASKS = {
    "text": "Text",
    "bernoulli": "Random pixels (Bernoulli)",
    "box": "Box",
    "upload": "Upload a mask",
    "draw": "Draw it",
    "alpha": "Image transparency",
}
CANVAS_SIDE = 448  # px, the drawing canvas's longer side


def mask_picker(picked: Picked, s, image: np.ndarray) -> Optional[np.ndarray]:
    """The inpainting mask (H, W) at the working size: 1 = known pixel, 0 = hole; None until one is usable."""
    kinds = [k for k in MASKS if k != "alpha" or (picked.info is not None and picked.info.has_alpha)]
    if "alpha" in kinds:
        _default_to_transparency(picked)
    kind = st.radio("Mask", kinds, format_func=MASKS.get, horizontal=True, key=keys.MASK_KIND, persist_state="session")
    h, w = image.shape[:2]
    try:
        if kind in ("text", "box"):
            return degrade.make_mask(kind, h, w, seed=s.preset.fit.seed)
        if kind == "bernoulli":
            keep = st.slider(
                "Fraction of pixels kept",
                0.05,
                0.95,
                float(s.preset.keep_fraction),
                0.05,
                key=keys.KEEP_FRACTION,
                persist_state="session",
            )
            return degrade.make_mask("bernoulli", h, w, keep_fraction=keep, seed=s.preset.fit.seed)
        if kind == "alpha":  # at the size of picked.image, which prepare_image shrinks to the working size
            st.caption(
                "The holes are the image's transparent pixels: nothing is known about them, so the run is "
                "blind (no ground truth; PSNR only against the observed pixels)."
            )
            return prepare_mask(_transparency(picked.digest, picked.data), s.preset, max_side=s.max_side)
        if kind == "upload":
            return _uploaded_mask(picked, s)
        return _drawn_mask(picked, s)
    except DIPError as err:
        st.error(plain(err, limit=MESSAGE_CHARS))
        return None


def _default_to_transparency(picked: Picked) -> None:
    """An upload with transparent pixels has its holes drawn already: they become the mask when it arrives (once
    per file, so the user's own choice afterwards stays)."""
    if st.session_state.get(keys.MASK_DEFAULTED_FOR) == picked.digest:
        return
    st.session_state[keys.MASK_DEFAULTED_FOR] = picked.digest
    try:
        alpha = _transparency(picked.digest, picked.data)
    except DIPError:
        return  # the radio's own branch reports it if the user picks it
    if alpha is not None and (alpha < 0.5).any():
        st.session_state[keys.MASK_KIND] = "alpha"


def _canvas_start(digest: str, strokes: Optional[dict]) -> Optional[dict]:
    """The strokes a canvas starts from: the saved ones when it appears (it was not drawn in the previous full run:
    another mask kind or page was shown), then the same value while it stays, since a new value redraws the canvas
    and clears its undo history."""
    run = st.session_state.get(keys.FULL_RUNS, 0)
    shown = st.session_state.get(keys.CANVAS_SHOWN)
    start = shown[2] if shown is not None and shown[0] == digest and shown[1] >= run - 1 else strokes
    st.session_state[keys.CANVAS_SHOWN] = (digest, run, start)
    return start


def _uploaded_mask(picked: Picked, s) -> Optional[np.ndarray]:
    name, data = uploaded(
        keys.MASK_UPLOAD,
        "Upload a mask (white = keep, black = fill in)",
        "Same size as the image: white (or opaque) pixels are known, black (or transparent) pixels are filled in.",
    )
    h, w = picked.full_size  # the file's size; picked.image may be smaller
    if data is None:
        st.info(f"Upload a mask of {w}x{h} px, the size of the image.")
        return None
    with decoding():  # decoded at the size of picked.image
        mask = degrade.load_mask(named(data, name), height=h, width=w, max_side=config.DOWNSCALE_TO)
    return prepare_mask(mask, s.preset, max_side=s.max_side)


def _drawn_mask(picked: Picked, s) -> Optional[np.ndarray]:
    """Strokes on the whole picture, prepared like the image: a new working size or preset keeps the drawing."""
    # Imported on use: the component can only register inside a running Streamlit server (or AppTest).
    from streamlit_drawable_canvas import st_canvas

    h, w = picked.image.shape[:2]
    scale = CANVAS_SIDE / max(h, w)  # the canvas is drawn at a comfortable size; strokes are scaled back
    stroke = st.slider("Brush size (px)", 2, 60, 18, key=keys.BRUSH, persist_state="session")
    st.caption("Paint over the parts to fill in.")
    saved = st.session_state.get(keys.DRAWING)
    saved = saved if saved is not None and saved[0] == picked.digest else None
    start = _canvas_start(picked.digest, saved[1] if saved else None)
    result = st_canvas(
        stroke_width=stroke,
        stroke_color="#ff3030",
        background_image=_canvas_background(picked.digest, picked.image),
        width=round(w * scale),
        height=round(h * scale),
        drawing_mode="freedraw",
        initial_drawing=start,
        return_image_data=True,
        key=keys.canvas(picked.digest),
    )
    painted = result.image_data if result is not None else None  # RGBA at the canvas's size, ~0.8 MB
    if painted is not None:  # kept as it is, not as a mask at the image's size (up to 16 MB)
        st.session_state[keys.DRAWING] = (picked.digest, result.json_data, painted)
    else:  # a canvas shown again starts from the saved strokes and sends no picture of them until the next stroke
        painted = saved[2] if saved is not None and start is saved[1] else None
    mask = canvas_mask(painted, h, w)
    if mask is None:
        st.info("Nothing is painted yet: draw on the image to mark the holes.")
        return None
    return prepare_mask(mask, s.preset, max_side=s.max_side)
