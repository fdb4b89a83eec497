"""Noise impedance (paper Fig. 2): the same network fits a natural image much faster than noise."""

import streamlit as st

from ui import inputs, panels, settings, state, submit, widgets

state.run_through_entry_point()
TASK = "impedance"
st.title("Noise impedance")
st.caption(
    "Four targets, one network: the image, the image plus noise, its pixels shuffled, and pure noise. "
    "The loss curves show which ones the network resists."
)

picked = inputs.image_picker(TASK)
s = settings.form(TASK, picked, extra=settings.noise_level)
image = widgets.prepared(picked, s) if picked and s else None
if image is not None:
    info = widgets.impedance_targets(image, s, picked.name)
    submit.run_area(TASK, s, info, image=image)
panels.job_panel(TASK)
