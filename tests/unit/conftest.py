"""Small shared fixtures: tiny images and a tiny network preset so every engine test runs in seconds."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from dip.core.fit import FitStep, to_tensor
from dip.core.images import load_image, resize
from dip.core.models import make_input_code
from dip.core.operators import Identity
from dip.core.presets import get_preset
from dip.core.tasks import build_net, make_problem

SAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "sample_images"


@pytest.fixture(autouse=True)
def _few_threads():
    # Tests run beside other work on 2 cores; one thread keeps timings of tiny nets stable.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def small_image(name: str = "chelsea.png", side: int = 64) -> np.ndarray:
    """A natural sample image, downscaled and centre-cropped to side x side, float32 in [0, 1]."""
    x = load_image(SAMPLES / name)
    h, w = x.shape[:2]
    s = side / min(h, w)
    x = resize(x, max(side, round(h * s)), max(side, round(w * s))).clip(0, 1)
    top, left = (x.shape[0] - side) // 2, (x.shape[1] - side) // 2
    return np.ascontiguousarray(x[top : top + side, left : left + side])


@pytest.fixture
def image64() -> np.ndarray:
    return small_image()


def tiny_preset(task: str, iterations: int = 200, **task_params):
    """The task's lab preset with a 3-level, 32-channel net and an 8-channel input: same code path, 100x cheaper."""
    return get_preset("lab", task).with_overrides(
        fit={"iterations": iterations, "snapshot_every": 50},
        net={"channels_down": (16, 32, 32), "channels_skip": 4},
        input={"channels": 8},
        **task_params,
    )


def denoising_in_progress(iterations: int = 100):
    """A 64x64 float32 denoising fit (tiny net) after ``iterations`` steps: (clean image, problem, FitStep).

    Comparisons of two arithmetics go on from such a state: from scratch, a 64x64 run cannot resolve 0.1 dB
    (Adam's first steps are about sign(gradient), so any rounding change starts another trajectory).
    """
    x = small_image()
    preset = tiny_preset("denoise").with_overrides(fit={"precision": "fp32"})
    problem = make_problem(preset, x, seed=0)
    z = make_input_code(preset.input, 64, 64, generator=torch.Generator().manual_seed(0))
    step = FitStep(build_net(preset, 3), z, to_tensor(problem.y), Identity(), preset.fit, torch.device("cpu"))
    for _ in range(iterations):
        step()
    return x, problem, step


def continue_fit(step, *, net=None, precision=None):
    """A copy of a fit in progress (weights, Adam moments, noise stream) that goes on, with ``net`` (default: a copy
    of the step's) and in ``precision`` (default: the step's settings)."""
    fit = step.config if precision is None else dataclasses.replace(step.config, precision=precision)
    fork = FitStep(copy.deepcopy(step.net) if net is None else net, step.z, step.y, step.op, fit, step.dev)
    fork.optimizer.load_state_dict(copy.deepcopy(step.optimizer.state_dict()))
    fork.generator.set_state(step.generator.get_state())
    return fork
