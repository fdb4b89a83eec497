"""The shared result panels, rendered on their own from a finished job's record."""

import pytest
from streamlit.testing.v1 import AppTest


def _metrics_panel(metrics: dict, blind: bool) -> None:
    from ui.jobs import JobView
    from ui.panels import psnr_metrics

    psnr_metrics(JobView(id="j", task="denoise", status="done", iteration=1800, total=1800, history={},
                         snapshots={}, info={"blind": blind}, outcome={"metrics": metrics}))


CHELSEA = {"psnr_observed": 20.3, "psnr_final": 29.57, "psnr_ema": 31.42, "psnr_best": 29.70,
           "best_iteration": 1608, "psnr_blind": 29.02, "blind_iteration": 942, "es_patience": 1000}


@pytest.mark.parametrize("blind", [False, True])
def test_an_unconfirmed_blind_pick_is_called_provisional(blind):
    """Chelsea's record: the pick at 942 of 1800 iterations was never confirmed (patience 1000)."""
    at = AppTest.from_function(_metrics_panel, args=({**CHELSEA, "blind_confirmed": False}, blind),
                               default_timeout=60).run()
    assert not at.exception, at.exception
    notes = [c.value for c in at.caption if "provisional" in c.value]
    assert len(notes) == 1 and "iteration 942" in notes[0] and "(1000 iterations)" in notes[0], notes


def test_a_confirmed_blind_pick_gets_no_warning():
    at = AppTest.from_function(_metrics_panel, args=({**CHELSEA, "blind_confirmed": True}, False),
                               default_timeout=60).run()
    assert not at.exception, at.exception
    assert not [c.value for c in at.caption if "provisional" in c.value]
    assert "at iteration 942 (-0.68 dB vs the oracle)" in [c.value for c in at.caption]
