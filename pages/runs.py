"""Runs: every finished run saved on the server (runs/<id>/), with its images, curves and downloads."""

import streamlit as st

from ui import panels, state

state.run_through_entry_point()
st.title("Runs")
st.caption("Every finished, cancelled or failed run is saved on the server, so nothing is lost when a tab closes.")
panels.runs_browser()
