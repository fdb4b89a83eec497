"""Home: what Deep Image Prior is, the device in use, and links to the experiments."""

import streamlit as st

from dip.core.registry import TASKS
from ui import state

state.run_through_entry_point()
st.title("Deep Image Prior Studio")
st.markdown(
    "**Deep Image Prior** (Ulyanov, Vedaldi and Lempitsky, CVPR 2018) restores an image with a randomly "
    "initialised convolutional network and *no training data*: the network is fitted to the single degraded "
    "image, and its structure alone favours natural images over noise. Stopped at the right time, the fit "
    "removes noise, fills holes and adds detail."
)
_, description = state.device()
c1, c2, c3 = st.columns(3)
c1.metric("Device", description)
c2.metric("Jobs waiting or running", len(state.get_registry().active_jobs()))
c3.metric(
    "Your saved runs",
    len(state.visible_runs().rows),
    help="Your own runs, runs of the sample images and "
    "runs shared with you; on a gallery server (DIP_PUBLIC_RUNS=1) every run.",
)

st.subheader("Experiments")
for name, task in TASKS.items():
    path, title, icon = state.PAGES[name]
    st.page_link(path, label=f"**{title}**: {task.summary[0].upper()}{task.summary[1:]}.", icon=icon)
path, title, icon = state.PAGES["runs"]
st.page_link(path, label=f"**{title}**: every finished run, with its images, curves and downloads.", icon=icon)

st.subheader("Links")
st.markdown(
    "- Paper: [arXiv:1711.10925](https://arxiv.org/abs/1711.10925) · "
    "[project page](https://dmitryulyanov.github.io/deep_image_prior)\n"
    "- Official code: [DmitryUlyanov/deep-image-prior](https://github.com/DmitryUlyanov/deep-image-prior)\n"
    "- Sample images: scikit-image `skimage.data` (public domain / CC0, see `sample_images/README.md`)"
)
st.caption(
    "Jobs run one at a time on the device above; each page shows your place in the queue. Every "
    "finished run is saved on the server and listed on the Runs page."
)
