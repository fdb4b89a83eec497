"""Resumable fits: a run interrupted after a checkpoint continues to exactly the uninterrupted result."""

import numpy as np
import pytest
import torch
from conftest import small_image, tiny_preset

from dip.core.checkpoint import Checkpoint
from dip.core.errors import ConfigError
from dip.core.stopping import ExponentialVariance
from dip.core.tasks import make_problem, solve


class Killed(Exception):
    """Stands for the process ending (a closed session) in the middle of a fit."""


def _kill_at(iteration):
    def on_step(rec):
        if rec.iteration == iteration:
            raise Killed

    return on_step


class SideDetector:
    """A caller's own state that must resume with the fit (as ``dip reproduce`` feeds ES-EMV)."""

    def __init__(self):
        self.emv, self.seen = ExponentialVariance(alpha=0.3, warmup=2), []

    def snapshot(self, s):
        self.emv.update(s.iteration, torch.from_numpy(s.image))
        self.seen.append(s.iteration)

    def state_dict(self):
        return {"emv": self.emv.state_dict(), "seen": list(self.seen)}

    def load_state_dict(self, state):
        self.emv.load_state_dict(state["emv"])
        self.seen = list(state["seen"])


@pytest.fixture
def setup():
    # Backtracking, the ES-WMV ring buffer (window 3 < run) and input noise all carry state across the cut.
    preset = tiny_preset("denoise", 14).with_overrides(
        fit={"backtrack": True, "es_window": 3, "es_patience": 5, "snapshot_every": 1}
    )
    return preset, make_problem(preset, small_image(side=32), seed=0)


def test_an_interrupted_fit_resumes_to_the_uninterrupted_result(setup, tmp_path):
    preset, problem = setup
    whole_side = SideDetector()
    whole = solve(preset, problem, on_snapshot=whole_side.snapshot)

    path = tmp_path / "checkpoint.pt"
    side = SideDetector()
    with pytest.raises(Killed):
        solve(
            preset,
            problem,
            on_snapshot=side.snapshot,
            on_step=_kill_at(11),
            checkpoint=Checkpoint(path, every=4, extra=side),
        )
    assert path.is_file() and not path.with_name("checkpoint.pt.tmp").exists()

    resumed_side = SideDetector()  # a fresh process: nothing but the file is carried over
    steps = []
    resumed = solve(
        preset,
        problem,
        on_snapshot=resumed_side.snapshot,
        on_step=steps.append,
        checkpoint=Checkpoint(path, every=4, extra=resumed_side),
    )
    assert resumed.resumed_from == 8 and [r.iteration for r in steps] == list(range(9, 15))
    assert resumed.history == whole.history
    for name in ("output", "ema", "best", "blind"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name
    assert (resumed.best_iteration, resumed.blind_iteration) == (whole.best_iteration, whole.blind_iteration)
    assert resumed_side.seen == whole_side.seen
    assert resumed_side.emv.best_iteration == whole_side.emv.best_iteration
    assert resumed.iterations_done == 14 and resumed.seconds > 0


def test_a_checkpoint_of_another_run_is_refused_with_the_fix(setup, tmp_path):
    preset, problem = setup
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(Killed):
        solve(preset, problem, on_step=_kill_at(5), checkpoint=Checkpoint(path, every=4))
    longer = preset.with_overrides(fit={"iterations": 20})
    with pytest.raises(ConfigError, match=r"different run \(settings, settings\.iterations differ\); delete it"):
        solve(longer, problem, checkpoint=Checkpoint(path))
    other_image = make_problem(preset, small_image("coffee.png", side=32), seed=0)
    with pytest.raises(ConfigError, match=r"\(y differ\)"):
        solve(preset, other_image, checkpoint=Checkpoint(path))
    # what only changes the reporting keeps the checkpoint usable
    resumed = solve(preset.with_overrides(fit={"snapshot_every": 7}), problem, checkpoint=Checkpoint(path))
    assert resumed.resumed_from == 4


def test_an_unreadable_checkpoint_gets_a_clear_message(setup, tmp_path):
    preset, problem = setup
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable fit checkpoint.*delete it"):
        solve(preset, problem, checkpoint=Checkpoint(path))
    with pytest.raises(ConfigError, match="every=0"):
        Checkpoint(path, every=0)


def test_a_run_continued_on_another_machine_keeps_its_arithmetic(setup, tmp_path, monkeypatch):
    # "auto" is bf16 on CPUs with native bf16 and float32 elsewhere; sessions land on either kind.
    preset, problem = setup
    monkeypatch.setattr("dip.core.fit.autocast_dtype", lambda precision, dev: torch.bfloat16)  # a bf16 machine
    monkeypatch.setattr("dip.core.layers.WEIGHT_GRAD_BAND_BYTES", 2**13)  # weight gradients in bands, as at 256 px
    monkeypatch.setattr("dip.core.batchnorm.WIDE_MIN_PIXELS", 64)  # thin batch norms on the wide view, likewise
    whole = solve(preset, problem)
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(Killed):
        solve(preset, problem, on_step=_kill_at(6), checkpoint=Checkpoint(path, every=4))
    monkeypatch.setattr("dip.core.fit.autocast_dtype", lambda precision, dev: None)  # a float32 machine
    assert solve(preset, problem).precision == "fp32"
    resumed = solve(preset, problem, checkpoint=Checkpoint(path, every=4))
    assert whole.precision == resumed.precision == "bf16" and resumed.resumed_from == 4
    assert resumed.history == whole.history and np.array_equal(resumed.output, whole.output)
