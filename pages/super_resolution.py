"""Super-resolution ×4 or ×8 through the Lanczos downsampler, beside bicubic and nearest upsampling."""

import streamlit as st

from ui import inputs, panels, settings, state, submit, widgets

state.run_through_entry_point()
TASK = "sr"
st.title("Super-resolution")
st.caption("The network's output, downsampled, must match the low-resolution image; the prior fills in the detail.")

picked = inputs.image_picker(TASK, blind_label="Upload a low-resolution image (blind)")
s = settings.form(TASK, picked, extra=settings.sr_factor)
image = widgets.prepared(picked, s) if picked and s else None
problem = widgets.problem_for(picked, s, image) if image is not None else None
if problem is not None:
    info = widgets.observation(problem, source=picked.name, preset=s.preset)
    widgets.reduced_input_note(picked, s, image)
    submit.run_area(TASK, s, info, problem=problem)
panels.job_panel(TASK)
