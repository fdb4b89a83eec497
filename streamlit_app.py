"""Deep Image Prior Studio: the entry point. It lists the pages, keeps the job id in the URL, shows the device."""

import streamlit as st

from ui import state
from ui.service import config

st.set_page_config(page_title="Deep Image Prior Studio", page_icon=config.app_icon(), layout="wide")

pages = {
    key: st.Page(path, title=title, icon=icon, default=key == "home")
    for key, (path, title, icon) in state.PAGES.items()
}
current = st.navigation(list(pages.values()))
task = next(key for key, page in pages.items() if page.url_path == current.url_path)
state.sync_url(task)
with state.through_entry_point():
    current.run()
state.sidebar(pages)  # after the page, so a job it just queued is counted
