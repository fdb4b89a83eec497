"""Hard limits on one job: each refusal names its limit and what fits; the lab defaults fit a 2-core CPU."""

from __future__ import annotations

import pytest
import torch

from dip.core.limits import LimitExceeded, Limits, check_job, gflop_per_iteration, stored_snapshots
from dip.core.presets import get_preset
from dip.core.tasks import build_net
from dip.lab.bench import count_flops

CPU = Limits.for_device("cpu")


def test_flops_counted_without_arithmetic_equal_a_real_iteration():
    preset = get_preset("lab-denoise").with_overrides(net={"channels_down": (8, 16, 16, 16, 16)})
    net = build_net(preset, 3)
    z = torch.rand(1, preset.input.channels, 64, 96)
    real = count_flops(lambda: net(z).square().mean().backward()) / 1e9
    assert gflop_per_iteration(preset, 64, 96) == pytest.approx(real, rel=1e-9)


@pytest.mark.parametrize("name", ["lab-denoise", "lab-sr", "lab-inpaint"])
def test_every_lab_preset_fits_a_2_core_cpu_at_the_default_working_size(name):
    assert check_job(get_preset(name), (256, 256, 3), CPU) < CPU.max_tflop


def test_noise_impedance_counts_its_four_fits():
    preset = get_preset("lab-impedance")
    one = check_job(preset, (256, 256, 3), CPU)
    assert check_job(preset, (256, 256, 3), CPU, fits=4) == pytest.approx(4 * one)


def test_too_much_compute_says_how_many_iterations_fit():
    preset = get_preset("lab-denoise")
    with pytest.raises(LimitExceeded, match=r"828 TFLOP.*allows 400 TFLOP.*at most 869 iterations fit"):
        check_job(preset, (512, 512, 3), CPU)
    check_job(preset.with_overrides(fit={"iterations": 869}), (512, 512, 3), CPU)  # what it offered fits


def test_size_width_and_snapshot_limits_name_what_fits():
    preset = get_preset("lab-denoise")
    with pytest.raises(LimitExceeded, match="at most 512 px.*512 px or less"):
        check_job(preset, (384, 640, 3), CPU)
    wide = preset.with_overrides(net={"channels_down": (512,) * 5})
    with pytest.raises(LimitExceeded, match="512 channels.*at most 256"):
        check_job(wide, (64, 64, 3), CPU)
    every_one = preset.with_overrides(fit={"snapshot_every": 1})
    with pytest.raises(LimitExceeded, match="1801 snapshots.*one every 10 iterations") as refused:
        check_job(every_one, (64, 64, 3), CPU)
    assert "10 iterations" in str(refused.value)
    assert stored_snapshots(preset.with_overrides(fit={"snapshot_every": 10})) <= CPU.max_snapshots


def test_a_gpu_takes_the_papers_largest_case():
    barbara = get_preset("barbara")
    assert check_job(barbara, (514, 514, 1), Limits.for_device("cuda")) > CPU.max_tflop
