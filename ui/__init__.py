"""The Streamlit UI layer of Deep Image Prior Studio.

The modules here (``state``, ``inputs``, ``widgets``, ``panels``) import Streamlit; ``ui.service`` holds the plain
ones (the job registry, what a job does, run folders, images, charts, configuration), unit-tested without a
Streamlit runtime.
"""
