"""The shared result panels, rendered on their own from a finished job's record."""

import pytest
from streamlit.testing.v1 import AppTest


def _metrics_panel(metrics: dict, blind: bool) -> None:
    from dip.core.records import JobOutcome
    from ui.panels import psnr_metrics
    from ui.service.jobs import JobView

    psnr_metrics(
        JobView(
            id="j",
            task="denoise",
            status="done",
            iteration=1800,
            total=1800,
            history={},
            snapshots={},
            info={"blind": blind},
            outcome=JobOutcome.from_dict({"metrics": metrics}),
        )
    )


CHELSEA = {
    "psnr_observed": 20.3,
    "psnr_final": 29.57,
    "psnr_ema": 31.42,
    "psnr_best": 29.70,
    "best_iteration": 1608,
    "psnr_blind": 29.02,
    "blind_iteration": 942,
    "es_patience": 1000,
}


@pytest.mark.parametrize("blind", [False, True])
def test_an_unconfirmed_blind_pick_is_called_provisional(blind):
    """Chelsea's record: the pick at 942 of 1800 iterations was never confirmed (patience 1000)."""
    at = AppTest.from_function(
        _metrics_panel, args=({**CHELSEA, "blind_confirmed": False}, blind), default_timeout=60
    ).run()
    assert not at.exception, at.exception
    notes = [c.value for c in at.caption if "provisional" in c.value]
    assert len(notes) == 1 and "iteration 942" in notes[0] and "(1000 iterations)" in notes[0], notes


def test_a_confirmed_blind_pick_gets_no_warning():
    at = AppTest.from_function(
        _metrics_panel, args=({**CHELSEA, "blind_confirmed": True}, False), default_timeout=60
    ).run()
    assert not at.exception, at.exception
    assert not [c.value for c in at.caption if "provisional" in c.value]
    assert "at iteration 942 (-0.68 dB vs the oracle)" in [c.value for c in at.caption]


@pytest.mark.parametrize("truth", [True, False])
def test_loss_chart_puts_the_psnr_on_its_own_right_axis(truth):
    from dip.core.fit import StepRecord
    from ui.service.charts import loss_figure

    recs = [
        StepRecord(i, 0.1 / i, 10 + i / 100, 12 + i / 100 if truth else None, 12 if truth else None, False)
        for i in range(1, 3001)
    ]
    fig = loss_figure(recs)
    loss, *psnr = fig.data
    assert loss.name == "loss" and loss.yaxis in (None, "y") and fig.layout.yaxis.type == "log"
    names = ["PSNR output", "PSNR EMA"] if truth else ["PSNR vs observation"]
    assert [t.name for t in psnr] == names and {t.yaxis for t in psnr} == {"y2"}
    right = fig.layout.yaxis2
    assert right.overlaying == "y" and right.side == "right" and right.tickmode == "auto"
    assert right.title.text.startswith("PSNR vs " + ("ground truth" if truth else "observation"))
    assert len(loss.x) <= 1500 + 1 and loss.x[-1] == 3000  # thinned for drawing, the last iteration kept
