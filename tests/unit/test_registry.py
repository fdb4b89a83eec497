"""The task registry: one object per task, and the tasks built from it behave as the hand-written ones did."""

import numpy as np
import pytest

from dip.core.errors import ConfigError
from dip.core.jpeg import compress
from dip.core.operators import Identity, Lanczos2Downsampler, PixelMask
from dip.core.presets import get_preset
from dip.core.registry import TASKS, get_task, task_title
from dip.core.tasks import load_problem, make_problem, save_problem


def _image(h=64, w=64):
    y, x = np.mgrid[0:h, 0:w] / 64.0
    return np.stack([x, y, (x + y) / 2], -1).astype(np.float32)


def test_every_task_has_its_lab_preset_and_a_quick_look():
    for name, task in TASKS.items():
        names = [p.name for p in task.presets()]
        assert names[0] == task.default_preset and f"quick-{name}" in names
        assert task.title and task.summary and task.page


@pytest.mark.parametrize(
    "name,op",
    [("denoise", Identity), ("sr", Lanczos2Downsampler), ("inpaint", PixelMask), ("jpeg", Identity)],
)
def test_make_problem_uses_the_tasks_operator_and_survives_a_restart(tmp_path, name, op):
    preset = get_preset("lab", name)
    problem = make_problem(preset, _image(), seed=0)
    assert isinstance(problem.op, op)
    assert problem.psnr_degraded is not None and problem.psnr_degraded < 60  # degraded, scored against the truth
    save_problem(problem, tmp_path / "p.npz")
    back = load_problem(tmp_path / "p.npz", preset)
    assert isinstance(back.op, op) and back.shape == problem.shape
    np.testing.assert_array_equal(back.y, problem.y)


def test_blind_super_resolution_output_is_factor_times_the_input():
    problem = make_problem(get_preset("lab", "sr"), _image(16, 24), observed=True)
    assert problem.shape == (64, 96, 3) and problem.x_true is None


def test_jpeg_observation_is_a_real_jpeg_round_trip():
    x = _image()
    y = compress(x, 10)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 0 < np.abs(y - x).mean() < 0.1
    assert np.abs(compress(x, 90) - x).mean() < np.abs(y - x).mean()


def test_an_unknown_task_lists_the_known_ones():
    with pytest.raises(ConfigError, match="choose one of impedance, denoise, sr, inpaint, jpeg"):
        get_task("deblur")
    assert task_title("sr") == "Super-resolution" and task_title("old-task") == "old-task"
