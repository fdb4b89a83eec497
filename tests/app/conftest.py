"""AppTest fixtures: a temporary runs folder, and a fresh job registry for every test."""

from __future__ import annotations

import pytest
from apphelpers import APP


@pytest.fixture(autouse=True)
def app_env(tmp_path, monkeypatch):
    """Runs go to a temporary folder; after the test the registry is shut down and forgotten.

    Only the registry is cleared: the device and speed measurements are cached for the whole session.
    """
    monkeypatch.setenv("DIP_RUNS_DIR", str(tmp_path / "runs"))
    yield tmp_path / "runs"
    from ui import state

    state.reset_registry()


@pytest.fixture
def app():
    """An AppTest of the entry point, already run once (Home)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at
