"""Small shared fixtures: tiny images and a tiny network preset so every engine test runs in seconds."""

import numpy as np
import pytest
import torch

from dip.core.images import load_image, resize
from dip.core.presets import get_preset

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
