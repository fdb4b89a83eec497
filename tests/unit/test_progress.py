"""Command-line progress bars: a fit continued from a checkpoint shows the earlier iterations as done and leaves
them out of the rate."""

import numpy as np
from tqdm import tqdm

from dip.cli.progress import FitProgress, continue_bar, progress_bar
from dip.core.fit import Snapshot
from dip.core.presets import get_preset
from dip.lab.reproduce import _Watcher


def _rate_after(bar: tqdm, seconds: float) -> str:
    """The bar's text had ``seconds`` passed since it was made, with the plain (unsmoothed) rate."""
    return tqdm.format_meter(**{**bar.format_dict, "elapsed": seconds, "rate": None})


def test_a_continued_bar_starts_at_the_checkpoint_and_rates_only_new_iterations(capsys):
    old = progress_bar(10, "denoise")
    bar = continue_bar(old, 10, "denoise", 4)
    assert bar is not old and (bar.n, bar.total, bar.desc) == (4, 10, "denoise")
    bar.update(2)
    text = _rate_after(bar, 2.0)
    assert "6/10" in text and "1.00it/s" in text  # 2 new iterations in 2 s, not 6
    bar.close()
    assert "denoise: continuing from the checkpoint at iteration 4" in capsys.readouterr().err


def test_fit_progress_continues_from_its_saved_state(capsys):
    progress = FitProgress(8, "noise")
    progress.load_state_dict({"steps": 3, "snapshots": []})  # before the first step, as a resumed fit does
    rec = type("Rec", (), {"loss": 0.01, "psnr_true": None})()
    progress.step(rec)
    assert progress.state_dict()["steps"] == 4 and progress.bar.format_dict["initial"] == 3
    progress.close()
    err = capsys.readouterr().err
    assert "noise: continuing from the checkpoint at iteration 3" in err and "4/8" in err


def test_a_reproduce_case_continues_its_bar_and_snapshots():
    preset = get_preset("lab", "denoise").with_overrides(fit={"iterations": 20, "snapshot_every": 2})
    image = np.zeros((4, 4, 3), np.float32)
    first = _Watcher(preset, "case")
    for i in range(1, 6):
        first.snapshot(Snapshot(i, image + i / 10, image))
        first.step(None)
    second = _Watcher(preset, "case")
    second.load_state_dict(first.state_dict())
    first.bar.close()
    assert (second.bar.n, second.bar.total, second.bar.format_dict["initial"]) == (5, 20, 5)
    assert [s.iteration for s in second.kept] == [2, 4]
    second.bar.close()
