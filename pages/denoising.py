"""Denoising: remove Gaussian noise (with ground truth), or restore an already noisy upload (blind)."""

import streamlit as st

from ui import inputs, panels, settings, state, submit, widgets

state.run_through_entry_point()
TASK = "denoise"
st.title("Denoising")
st.caption("The network is fitted to the noisy image; it reproduces the image long before it reproduces the noise.")

picked = inputs.image_picker(TASK, blind_label="Upload a noisy image (blind)")
# The noise level only degrades a clean image; a noisy upload brings its own noise.
s = settings.form(TASK, picked, extra=None if picked and picked.blind else settings.noise_level)
image = widgets.prepared(picked, s) if picked and s else None
problem = widgets.problem_for(picked, s, image) if image is not None else None
if problem is not None:
    info = widgets.observation(problem, source=picked.name, preset=s.preset)
    widgets.downscaled_noise_note(picked, image)
    submit.run_area(TASK, s, info, problem=problem)
panels.job_panel(TASK)
