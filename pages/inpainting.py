"""Inpainting: fill in text, random pixels, a box, an uploaded mask or a mask drawn in the browser."""

import streamlit as st

from ui import inputs, panels, settings, state, submit, widgets

state.run_through_entry_point()
TASK = "inpaint"
st.title("Inpainting")
st.caption("The loss only sees the known pixels; the network's structure decides what goes into the holes.")

picked = inputs.image_picker(TASK)
s = settings.form(TASK, picked)
image = widgets.prepared(picked, s) if picked and s else None
mask = inputs.mask_picker(picked, s, image) if image is not None else None
problem = (
    widgets.problem_for(picked, s, image, mask, blind=inputs.holes_are_transparency()) if mask is not None else None
)
if problem is not None:
    info = widgets.observation(problem, source=picked.name, preset=s.preset)
    info["mask"] = inputs.mask_kind()  # recorded in metrics.json (ui.service.runners._base_metrics)
    submit.run_area(TASK, s, info, problem=problem)
panels.job_panel(TASK)
