"""The one loop, on tiny problems: it restores, repeats exactly, cancels, backtracks and reports every step."""

import numpy as np
import pytest
import torch
from conftest import small_image, tiny_preset

from dip.core import degrade
from dip.core.errors import ConfigError
from dip.core.fit import FitConfig
from dip.core.tasks import build_net, make_problem, solve, summarize


def test_denoising_beats_the_noisy_input_by_several_db():
    x = small_image("chelsea.png")
    preset = tiny_preset("denoise", 300)
    problem = make_problem(preset, x, seed=0)
    result = solve(preset, problem)
    m = summarize(preset, problem, result)
    assert m.psnr_observed == pytest.approx(20.3, abs=0.3)  # sigma 25 on a 64x64 crop
    assert m.psnr_final > m.psnr_observed + 4
    assert m.psnr_ema > m.psnr_observed + 4
    assert m.psnr_best == pytest.approx(max(r.psnr_true for r in result.history))
    assert result.history[m.best_iteration - 1].psnr_true == pytest.approx(m.psnr_best)
    assert result.output.shape == x.shape and 0 <= result.output.min() and result.output.max() <= 1


def test_a_seeded_run_repeats_exactly():
    x = small_image()
    preset = tiny_preset("denoise", 15)
    runs = [solve(preset, make_problem(preset, x, seed=0)) for _ in range(2)]
    assert [r.loss for r in runs[0].history] == [r.loss for r in runs[1].history]
    assert np.array_equal(runs[0].output, runs[1].output)
    other = solve(preset.with_overrides(fit={"seed": 1}), make_problem(preset, x, seed=1))
    assert not np.array_equal(runs[0].output, other.output)


def test_inpainting_fills_the_hole_better_than_the_mean_colour():
    x = small_image("coffee.png")
    mask = degrade.box_mask(64, 64, fraction=0.1)
    preset = tiny_preset("inpaint", 250)
    problem = make_problem(preset, x, mask=mask)
    result = solve(preset, problem)
    hole = mask == 0
    mean_fill = x[~hole].mean(axis=0)
    err_mean = np.mean((x[hole] - mean_fill) ** 2)
    err_dip = np.mean((x[hole] - result.output[hole]) ** 2)
    err_observed = np.mean((x[hole] - problem.y[hole]) ** 2)
    assert err_dip < 0.7 * err_mean < err_observed
    m = summarize(preset, problem, result)  # keeping the observed pixels removes the error outside the hole
    assert m.psnr_final_known_kept > m.psnr_final + 1 and m.psnr_ema_known_kept > m.psnr_ema + 1
    assert m.final_input == "clean"


def test_callbacks_get_every_iteration_and_snapshots_at_the_interval():
    x = small_image()
    preset = tiny_preset("denoise", 23).with_overrides(fit={"snapshot_every": 10})
    records, snaps = [], []
    result = solve(preset, make_problem(preset, x), on_step=records.append, on_snapshot=snaps.append)
    assert [r.iteration for r in records] == list(range(1, 24))
    assert [s.iteration for s in snaps] == [10, 20, 23]
    assert all(r.psnr_true is not None and r.psnr_ema_true is not None for r in records)
    # The PSNR against the observation is the data term seen through the operator.
    assert records[-1].psnr_observed == pytest.approx(-10 * np.log10(records[-1].loss))
    assert snaps[0].image.shape == x.shape and result.history == records


def test_blind_observation_has_no_ground_truth_metrics():
    noisy = degrade.add_gaussian_noise(small_image(), 25)
    preset = tiny_preset("denoise", 5)
    problem = make_problem(preset, noisy, observed=True)
    result = solve(preset, problem)
    m = summarize(preset, problem, result)
    assert problem.x_true is None and result.history[-1].psnr_true is None
    assert m.psnr_observed is None and m.psnr_final is None and m.psnr_best is None


def test_cancellation_stops_within_one_iteration():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 7

    preset = tiny_preset("denoise", 100)
    result = solve(preset, make_problem(preset, small_image()), should_stop=should_stop)
    assert result.cancelled and result.iterations_done == 7 and len(result.history) == 7
    assert result.output.shape == (64, 64, 3)


def test_backtracking_restores_the_last_good_weights():
    preset = tiny_preset("denoise", 6).with_overrides(fit={"reg_noise_std": 0.0})
    # A threshold no iteration can satisfy makes every step after the first count as a collapse, so the
    # weights go back to those of iteration 1 each time (iteration 2's output comes from the first step).
    always = preset.with_overrides(fit={"backtrack": True, "backtrack_threshold_db": -1e9})
    problem = make_problem(preset, small_image())
    result = solve(always, problem)
    assert [r.backtracked for r in result.history] == [False] + [True] * 5
    first_loss = result.history[0].loss
    assert result.history[1].loss != first_loss
    assert all(r.loss == first_loss for r in result.history[2:])
    normal = solve(preset.with_overrides(fit={"backtrack": True}), problem)
    assert not any(r.backtracked for r in normal.history)
    assert normal.history[-1].loss < first_loss


def test_batched_metric_reads_give_the_same_records():
    preset = tiny_preset("denoise", 12)
    problem = make_problem(preset, small_image())
    every = solve(preset, problem)
    batched = solve(preset.with_overrides(fit={"sync_every": 5}), problem)
    assert every.history == batched.history


def test_fit_config_rejects_bad_values_with_the_fix():
    with pytest.raises(ConfigError, match="lr=0; the learning rate must be positive"):
        FitConfig(lr=0)
    with pytest.raises(ConfigError, match="exp_weight=1.0; expected a value in \\[0, 1\\)"):
        FitConfig(exp_weight=1.0)


def test_super_resolution_beats_bicubic_on_a_small_image():
    x = small_image("coffee.png", side=96)
    preset = tiny_preset("sr", 400)
    problem = make_problem(preset, x)
    assert problem.y.shape == (24, 24, 3)
    m = summarize(preset, problem, solve(preset, problem))
    assert m.psnr_final > m.psnr_observed + 0.5  # psnr_observed is the bicubic upsampling here


def test_network_is_initialised_from_the_seed():
    p = tiny_preset("denoise")
    a, b = build_net(p, 3), build_net(p, 3)
    assert all(torch.equal(u, v) for u, v in zip(a.parameters(), b.parameters()))
