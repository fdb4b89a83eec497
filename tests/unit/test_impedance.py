import numpy as np
import pytest
from conftest import small_image, tiny_preset

from dip.core.impedance import (
    TARGETS,
    fig2_ordering,
    make_targets,
    remove_checkpoints,
    run_impedance,
    target_checkpoints,
)
from dip.core.presets import get_preset


def test_targets_are_the_four_of_figure_2():
    x = small_image()
    t = make_targets(x, seed=0)
    assert list(t) == list(TARGETS)
    assert np.array_equal(t["image"], x)
    # Shuffling moves whole pixels: the colour histogram is unchanged, the layout is not.
    np.testing.assert_allclose(np.sort(t["shuffled pixels"].reshape(-1, 3), axis=0), np.sort(x.reshape(-1, 3), axis=0))
    assert not np.array_equal(t["shuffled pixels"], x)
    assert 0.45 < t["noise"].mean() < 0.55 and abs(t["noise"].var() - 1 / 12) < 0.005
    assert np.std(t["image + noise"] - x) > 0.08


def test_natural_image_fits_fastest_and_noise_slowest():
    preset = get_preset("lab-impedance").with_overrides(fit={"iterations": 100})
    result = run_impedance(preset, small_image("chelsea.png"), targets=("image", "shuffled pixels", "noise"))
    assert all(len(ls) == 100 for ls in result.losses.values())  # loss recorded at every iteration
    loss = result.loss_at(100)
    assert loss["image"] < loss["shuffled pixels"] < loss["noise"]
    rel = result.relative_loss_at(100)
    assert rel["image"] < 0.5 * rel["shuffled pixels"] and rel["shuffled pixels"] < 0.8 * rel["noise"]


def test_fig2_ordering_by_mse_and_by_variance_can_disagree():
    # Noise starts at 4x the shuffled target's level and loses a quarter of it; shuffled pixels lose a tenth:
    # slowest by MSE, but not by the fraction of its variance left unexplained.
    losses = {
        "image": [0.02, 0.01, 0.005],
        "image + noise": [0.03, 0.02, 0.015],
        "shuffled pixels": [0.03, 0.029, 0.027],
        "noise": [0.12, 0.10, 0.09],
    }
    variances = {"image": 0.03, "image + noise": 0.035, "shuffled pixels": 0.03, "noise": 0.12}
    out = fig2_ordering(losses, variances, [1, 3])
    assert out["mse"]["order_at"][3] == ["image", "image + noise", "shuffled pixels", "noise"]
    assert out["mse"]["holds"] is True
    assert out["relative"]["order_at"][3][-1] == "shuffled pixels"
    assert out["relative"]["loss_at"][3]["noise"] == 0.09 / 0.12
    assert out["relative"]["holds"] is False


def test_an_interrupted_impedance_run_continues_to_the_uninterrupted_losses(tmp_path):
    preset = tiny_preset("impedance", 10)
    x = small_image(side=32)
    whole = run_impedance(preset, x)

    class Killed(Exception):
        """Stands for the process ending in the middle of the third target's fit."""

    def dies_in_shuffled_pixels(name, rec):
        if name == "shuffled pixels" and rec.iteration == 7:
            raise Killed

    with pytest.raises(Killed):
        run_impedance(preset, x, on_step=dies_in_shuffled_pixels, checkpoints=target_checkpoints(tmp_path, 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-image.pt",
        "checkpoint-image_plus_noise.pt",
        "checkpoint-shuffled_pixels.pt",
    ]

    steps = {name: [] for name in TARGETS}  # a fresh process: nothing but the files is carried over
    checkpoints = target_checkpoints(tmp_path, 3)
    resumed = run_impedance(
        preset, x, on_step=lambda name, rec: steps[name].append(rec.iteration), checkpoints=checkpoints
    )
    # Finished targets repeat only the iterations after their last checkpoint; the cut one goes on from its own.
    assert steps == {
        "image": [10],
        "image + noise": [10],
        "shuffled pixels": [7, 8, 9, 10],
        "noise": list(range(1, 11)),
    }
    assert resumed.losses == whole.losses
    for name in TARGETS:
        assert np.array_equal(resumed.results[name].output, whole.results[name].output), name
    remove_checkpoints(checkpoints)
    assert not any(tmp_path.iterdir())
