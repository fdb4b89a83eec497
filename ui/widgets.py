"""The observation shared by the experiment pages: the prepared working image, the problem, what the input looks
like, and image rows."""

from __future__ import annotations

from typing import Optional

import numpy as np
import streamlit as st

from dip.core.baselines import estimate_sigma, sr_baselines
from dip.core.errors import DIPError
from dip.core.impedance import make_targets
from dip.core.presets import Preset
from dip.core.registry import get_task
from dip.core.tasks import (
    fits_network,
    make_problem,
    prepare_image,
    prepare_low_resolution,
    prepared_shape,
    working_long_side,
)
from ui import keys, state
from ui.inputs import Picked
from ui.service.imaging import mask_overlay, preview
from ui.service.text import plain
from ui.settings import Settings, working_sizes


def prepared(picked: Picked, s: Settings) -> Optional[np.ndarray]:
    """The picked image downscaled and cropped for the preset, or None after showing why it cannot be used."""
    # an already degraded input of a task whose output is larger (SR): the result is that many times its size
    low_resolution = picked.blind and get_task(s.preset.task).output_scale(s.preset) > 1
    try:
        p = s.preset  # only what the preparation reads is part of the key: a new noise level reuses the image
        geometry = (p.grey, p.border_pad, p.pad_multiple, p.crop_multiple, p.factor, p.net.min_side)
        image = _prepared(picked.digest, geometry, s.max_side, low_resolution, picked.image, p)
    except DIPError as err:
        if low_resolution or not _offer_a_working_size(picked, s):
            st.error(str(err))
        return None
    side = working_long_side(*picked.image.shape[:2], p, s.max_side)
    if not low_resolution and side != s.max_side:
        st.caption(
            f"Scaled to {side} px on the longer side, not {s.max_side}: the network takes sides in multiples of "
            f"{p.crop_multiple} px, and at {s.max_side} px cropping to them would cut off more of the picture."
        )
    return image


@st.cache_data(show_spinner=False, max_entries=16)
def _prepared(
    digest: str, geometry: tuple, max_side: int, low_resolution: bool, _image: np.ndarray, _preset: Preset
) -> np.ndarray:
    """Downscaled and cropped once per upload and size setting, not at every widget change (a 12 MP photo takes
    about half a second to resize)."""
    if low_resolution:
        return prepare_low_resolution(_image, _preset, max_side=max(1, max_side // _preset.factor))
    return prepare_image(_image, _preset, max_side=max_side)


def _offer_a_working_size(picked: Picked, s: Settings) -> bool:
    """When only the working size makes the image too small for the network, say so and offer the smallest
    working size that fits (a wide photo at 64 px is cropped to 64x32). False when no working size helps."""
    h0, w0 = picked.image.shape[:2]
    need = s.preset.min_image_side
    h, w = prepared_shape(h0, w0, s.preset, max_side=s.max_side)
    fits = [x for x in working_sizes() if x > s.max_side and fits_network(h0, w0, s.preset, max_side=x)]
    if min(h, w) >= need or not fits:
        return False
    st.error(
        f"At a working size of {s.max_side} px this {w0}x{h0} px image becomes {w}x{h} px, smaller than the "
        f"{need}x{need} px this network needs. Choose a working size of at least {fits[0]} px."
    )
    _use_size_button(s.preset.task, fits[0])
    return True


def _use_size_button(task: str, size: int) -> None:
    """A button that sets the working size to ``size`` px."""
    st.button(
        f"Use {size} px",
        key=keys.use_size(task, size),
        on_click=lambda: st.session_state.update({keys.max_side(task): size}),
    )


def problem_for(
    picked: Picked, s: Settings, image: np.ndarray, mask: Optional[np.ndarray] = None, *, blind: bool = False
):
    """The Problem of this image; ``blind`` (or an already degraded upload): there is no ground truth."""
    try:
        return make_problem(s.preset, image, observed=picked.blind or blind, mask=mask, seed=s.preset.fit.seed)
    except DIPError as err:
        st.error(str(err))
        return None


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def show_images(items: list[tuple[str, Optional[np.ndarray]]]) -> None:
    """A row of captioned images (None entries are skipped)."""
    items = [(c, im) for c, im in items if im is not None]
    for col, (caption, im) in zip(st.columns(max(3, len(items))), items):  # >= 3 columns: small images stay small
        col.image(preview(im), caption=caption, width="stretch")


def observation(problem, *, source: str, preset: Preset) -> dict:
    """Show the degraded observation before running; returns the job's ``info`` (what panels show meanwhile)."""
    y, truth = problem.degraded, problem.x_true
    info = {
        "source": source,
        "preset": preset.name,
        "blind": truth is None,
        "psnr_degraded": problem.psnr_degraded,
        "images": {"observed": preview(y), "ground_truth": preview(truth)},
    }
    h, w = problem.shape[:2]
    st.subheader("Observation")
    if state.job_id(problem.task):  # a run is shown below: say which of the two this block belongs to
        st.caption(
            "For the next run, with the settings above. The run shown below used its own settings, listed "
            "with its results."
        )
    if problem.task == "sr":
        base = {b.name: b for b in sr_baselines(problem.y, preset.factor, problem.shape, x_true=truth)}
        info["images"].update({k: preview(base[k].image) for k in ("bicubic", "nearest")})
        info["baselines"] = [base[k].as_record() for k in ("bicubic", "nearest")]
        lh, lw = problem.y.shape[:2]
        show_images(
            [
                (f"Low-resolution input ({lw}x{lh} px)", problem.y),
                (f"Bicubic ×{preset.factor} · {_db(base['bicubic'].psnr)}", base["bicubic"].image),
                (f"Nearest ×{preset.factor} · {_db(base['nearest'].psnr)}", base["nearest"].image),
                ("Ground truth", truth),
            ]
        )
    elif problem.task == "inpaint":
        info["images"]["mask"] = preview(problem.mask)
        holes = 1 - problem.mask.mean()
        show_images(
            [
                (f"Observation ({holes:.0%} of pixels missing) · {_db(problem.psnr_degraded)}", y),
                ("Mask (holes in red)", mask_overlay(truth if truth is not None else y, problem.mask)),
                ("Ground truth", truth),
            ]
        )
    else:
        spec = get_task(problem.task)
        caption = (
            f"{spec.blind_label} (no ground truth)"
            if truth is None
            else f"{spec.observed_label} · {_db(problem.psnr_degraded)}"
        )
        show_images([(caption, y), ("Ground truth", truth)])
    st.caption(
        f"Working image: {w}x{h} px" + (" (blind: PSNR is measured against the observation)." if truth is None else ".")
    )
    return info


def downscaled_noise_note(picked: Picked, image: np.ndarray) -> None:
    """A noisy upload shrunk to the working size has lost part of its noise to the averaging: say how much, since
    the run then denoises an easier image than the photo (a phone photo at 256 px may show hardly any noise)."""
    full, small = picked.image, image
    if not picked.blind or max(full.shape[:2]) <= max(small.shape[:2]):
        return
    h, w = full.shape[:2]
    top, left = max(0, (h - 1024) // 2), max(0, (w - 1024) // 2)
    before = estimate_sigma(full[top : top + 1024, left : left + 1024]) * 255  # a centre crop keeps this quick
    after = estimate_sigma(small) * 255
    fh, fw = picked.full_size if all(picked.full_size) else (h, w)
    # A very large photo is decoded at most ui.service.config.DOWNSCALE_TO px: its own noise is measured at that scale.
    where = f"your {fw}x{fh} px photo" + (f" (measured at {w}x{h} px)" if (fh, fw) != (h, w) else "")
    if after >= 0.8 * before:  # downscaling took little of it: nothing worth a warning
        return
    st.caption(
        f"Estimated noise: σ ≈ {before:.1f} in {where}, σ ≈ {after:.1f} at the working size — "
        "downscaling averaged part of it out. To denoise at the photo's own scale, choose a larger working "
        "size (slower) or upload a crop."
    )


def reduced_input_note(picked: Picked, s: Settings, image: np.ndarray) -> None:
    """A low-resolution upload larger than the working size allows is shrunk before it is enlarged, so the result
    is smaller than the upload times the factor: say so, and offer the working size that shrinks it least."""
    factor = get_task(s.preset.task).output_scale(s.preset)
    if not picked.blind or factor <= 1:
        return
    h0, w0 = picked.image.shape[:2]
    h, w = image.shape[:2]
    if max(h, w) >= max(h0, w0):  # only cropped to the network's multiples
        return
    larger = [x for x in working_sizes() if x > s.max_side]
    whole = next((x for x in larger if x >= max(h0, w0) * factor), None)
    st.caption(
        f"{plain(picked.name)} is {w0}x{h0} px: at a working size of {s.max_side} px it is shrunk to {w}x{h} px "
        f"before ×{factor}, so the result is {w * factor}x{h * factor} px, not {w0 * factor}x{h0 * factor}."
        + (
            f" A working size of {whole} px keeps it at its own size (slower)."
            if whole
            else f" The largest working size here, {larger[-1]} px, shrinks it least (slower)."
            if larger
            else ""
        )
    )
    if larger:
        _use_size_button(s.preset.task, whole or larger[-1])


def _db(value: Optional[float]) -> str:
    return "no ground truth" if value is None else f"PSNR {value:.2f} dB"


def impedance_targets(image: np.ndarray, s: Settings, source: str) -> dict:
    """The four fitting targets as thumbnails; returns the job's ``info``."""
    targets = make_targets(image, sigma_255=s.preset.sigma_255, seed=s.preset.fit.seed)
    st.subheader("Targets")
    show_images([(name, im) for name, im in targets.items()])
    h, w = image.shape[:2]
    st.caption(
        f"Each target is fitted from scratch by the same network ({w}x{h} px, "
        f"{s.preset.fit.iterations} iterations each)."
    )
    return {
        "source": source,
        "preset": s.preset.name,
        "blind": False,
        "psnr_degraded": None,
        "images": {f"target:{name}": preview(im) for name, im in targets.items()},
    }
