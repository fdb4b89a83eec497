"""The Streamlit UI layer of Deep Image Prior Studio.

Only ``ui.state``, ``ui.widgets`` and ``ui.panels`` import Streamlit. ``ui.jobs`` (the job registry),
``ui.runners`` (what a job does), ``ui.imaging``, ``ui.charts`` and ``ui.runs`` are plain Python and are
unit-tested without a Streamlit runtime.
"""
