"""JPEG artefacts: remove the blocks and ringing of a JPEG (blind, as the official snail notebook), or of a clean
image compressed here at a chosen quality."""

import streamlit as st

from dip.core.jpeg import DEFAULT_QUALITY
from dip.core.presets import Preset
from ui import inputs, keys, panels, settings, state, submit, widgets

state.run_through_entry_point()
TASK = "jpeg"
st.title("JPEG artefacts")
st.caption(
    "The network is fitted to the compressed image through the identity; it reproduces the picture before the "
    "8x8 blocks and the ringing around edges."
)


def quality(p: Preset) -> dict:
    q = st.slider(
        "JPEG quality (1 = worst, 95 = best)",
        1,
        95,
        int(p.params.get("quality", DEFAULT_QUALITY)),
        key=keys.setting(p.task, p.name, "quality"),
        persist_state="session",
        help="The clean image is compressed at this quality. Ignored for a JPEG you upload as it is.",
    )
    return {"params": {"quality": q}}


picked = inputs.image_picker(TASK, blind_label="Upload a JPEG with artefacts (blind)")
s = settings.form(TASK, picked, extra=None if picked and picked.blind else quality)
image = widgets.prepared(picked, s) if picked and s else None
problem = widgets.problem_for(picked, s, image) if image is not None else None
if problem is not None:
    info = widgets.observation(problem, source=picked.name, preset=s.preset)
    submit.run_area(TASK, s, info, problem=problem)
panels.job_panel(TASK)
