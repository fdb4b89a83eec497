"""The fast paths give the float32 NCHW results, and the benchmark measures what it says (never timings)."""

import copy
import ctypes.util
import json
import os
import warnings

import numpy as np
import pytest
import torch
from conftest import continue_fit, denoising_in_progress, small_image, tiny_preset
from torch.utils.flop_counter import FlopCounterMode

from dip.cli.commands import main
from dip.core.device import available_cpus, release_memory, tune_allocator, tune_threads
from dip.core.errors import ConfigError
from dip.core.fit import FitStep, to_image
from dip.core.metrics import psnr
from dip.core.models import make_input_code
from dip.core.operators import Identity
from dip.core.tasks import build_net, make_problem, solve
from dip.lab import bench


def _steps(preset, side=32):
    """Two FitSteps on the same weights and data: float32 NCHW and float32 NHWC."""
    net = build_net(preset, 3)
    z = make_input_code(preset.input, side, side, generator=torch.Generator().manual_seed(0))
    y = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    return [
        FitStep(
            copy.deepcopy(net),
            z,
            y,
            Identity(),
            preset.with_overrides(fit={"precision": "fp32", "channels_last": cl}).fit,
            torch.device("cpu"),
        )
        for cl in (False, True)
    ]


def test_channels_last_gives_the_nchw_output_and_gradients(monkeypatch):
    monkeypatch.setattr("dip.core.batchnorm.WIDE_MIN_PIXELS", 64)  # the 4-channel skips' batch norms run wide
    nchw, nhwc = _steps(tiny_preset("denoise"))
    assert nhwc.z.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(nhwc.forward(nhwc.z), nchw.forward(nchw.z), rtol=0, atol=1e-5)
    (_, loss1), (_, loss2) = nchw(), nhwc()  # one iteration: the loss comes before Adam's update
    torch.testing.assert_close(loss2, loss1, rtol=1e-5, atol=0)
    g1, g2 = (torch.cat([p.grad.flatten() for p in s.net.parameters()]) for s in (nchw, nhwc))
    assert (g2 - g1).norm() / g1.norm() < 1e-4  # only the summation order of the convolutions differs
    # Later iterations are not compared: Adam's first steps are about sign(gradient), so float rounding in
    # near-zero gradients changes the trajectory (the same happens between thread counts).


@pytest.mark.filterwarnings("ignore:precision:RuntimeWarning")  # forced on purpose; emulated on some CPUs
def test_bf16_training_ends_within_0_1_db_of_float32(monkeypatch):
    """Denoising a 64x64 image: 150 iterations in bf16 autocast end at the float32 PSNR (this seed: -0.02 dB).

    Both precisions continue the same run after 100 float32 iterations, while PSNR still climbs by ~2 dB. From
    scratch, a 64x64 run cannot resolve 0.1 dB: Adam's first steps are about sign(gradient), so any change of
    rounding (bf16, or only the float32 thread count) starts another trajectory, and single runs then differ
    by 0.1-0.3 dB either way (docs/benchmark.md). PSNR is the mean over the last 50 iterates, which removes
    the +-0.2 dB jitter of single iterates. Measured with seeds 0-3: -0.02 to +0.04 dB.
    With bands of 8 KiB, 8 of the tiny net's convolutions sum their weight gradients over bands of a few rows, as
    a 256x256 run's do (bf16 ends +0.01 dB from float32 with them, +0.01 without), and its three 4-channel skip
    batch norms run on the wide view, as the noise-impedance net's 8-channel ones do at 128 px and up (+0.003 dB
    with bands and wide view, +0.007 with bands alone).
    """
    monkeypatch.setattr("dip.core.layers.WEIGHT_GRAD_BAND_BYTES", 2**13)
    monkeypatch.setattr("dip.core.batchnorm.WIDE_MIN_PIXELS", 256)  # the 4-channel skips' batch norms run wide
    x, problem, start = denoising_in_progress()
    psnrs, outputs = {}, {}
    for precision in ("fp32", "bf16"):
        step = continue_fit(start, precision=precision)
        images = [to_image(step()[0]).clip(0, 1) for _ in range(150)]
        psnrs[precision] = np.mean([psnr(x, im) for im in images[-50:]])
        outputs[precision] = images[-1]
    assert psnrs["fp32"] > problem.psnr_degraded + 4  # well into the denoising, where precision could show
    assert not np.array_equal(outputs["bf16"], outputs["fp32"])  # bf16 arithmetic really ran
    assert abs(psnrs["bf16"] - psnrs["fp32"]) < 0.1


def test_batched_reads_with_backtracking_give_the_same_records():
    # Backtracking is decided on the device, so it no longer forces a host read every iteration.
    # Threshold 0: any drop of the PSNR against y rolls back. Where the first drop comes depends on the CPU's
    # arithmetic (iteration 10 on one machine, 14 on another), so the run is long enough to reach it anywhere.
    preset = tiny_preset("denoise", 24).with_overrides(fit={"backtrack": True, "backtrack_threshold_db": 0.0})
    problem = make_problem(preset, small_image(side=32))
    every = solve(preset.with_overrides(fit={"sync_every": 1}), problem)
    batched = solve(preset.with_overrides(fit={"sync_every": 5}), problem)
    assert any(r.backtracked for r in every.history) and not all(r.backtracked for r in every.history)
    assert batched.history == every.history
    assert np.array_equal(batched.output, every.output)


@pytest.mark.filterwarnings("ignore:precision:RuntimeWarning")  # forced on purpose; emulated on some CPUs
def test_fp16_runs_with_a_gradient_scaler():
    preset = tiny_preset("denoise", 30).with_overrides(fit={"precision": "fp16"})
    result = solve(preset, make_problem(preset, small_image(side=32)))
    losses = [r.loss for r in result.history]
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < losses[0]


def test_bench_case_reports_time_flops_memory_and_ratio():
    case = bench.run_case("impedance", 64, torch.device("cpu"), warmup=1, repeats=2, conv=True)
    with FlopCounterMode(display=False) as counter:
        bench.make_step("impedance", 64, torch.device("cpu"), reference=True)()
    assert case.flops == counter.get_total_flops() > 0
    for timing in (case.engine, case.reference):
        assert len(timing.times) == 2 and min(timing.times) > 0
        assert timing.seconds == pytest.approx(float(np.median(timing.times)))
        assert timing.gflops == pytest.approx(case.flops / timing.seconds / 1e9)
        assert timing.peak_memory_mib > 0
    assert case.ratio > 0 and case.precision in ("bf16", "fp32")
    assert case.conv_gflops > 0  # the engine-precision convolution, timed between the iterations
    report = bench.format_report(
        {"machine": bench.machine_info(torch.device("cpu")), "conv_gflops": {}, "cases": [bench.asdict(case)]}
    )
    share = f"{case.engine.gflops:.0f} ({100 * case.engine.gflops / case.conv_gflops:.0f} % of {case.conv_gflops:.0f})"
    assert "| impedance | 64² |" in report and share in report


def test_conv_throughput_is_positive():
    assert bench.conv_throughput(torch.device("cpu"), size=16, channels=8, repeats=1) > 0


def test_bench_command_prints_json(capsys):
    code = main(
        [
            "bench",
            "--json",
            "--no-conv",
            "--configs",
            "impedance",
            "--sizes",
            "48",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--variant",
            "engine",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["machine"]["torch"] == torch.__version__
    (case,) = report["cases"]
    assert case["size"] == 48 and case["reference"] is None and case["engine"]["seconds"] > 0


def test_bench_rejects_sizes_the_net_cannot_take():
    with pytest.raises(ConfigError, match="size 16 px is too small for the denoise network; use at least 33"):
        bench.make_step("denoise", 16, torch.device("cpu"))
    assert main(["bench", "--sizes", "64,x"]) == 2


def test_thread_cap_never_exceeds_the_cpus_this_process_may_use():
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
    assert tune_threads() <= max(available_cpus(), torch.get_num_threads())  # only ever lowers the count


@pytest.mark.parametrize("precision, nhwc", [("fp32", False), ("bf16", True)])
@pytest.mark.filterwarnings("ignore:precision:RuntimeWarning")  # forced on purpose; emulated on some CPUs
def test_memory_format_follows_the_precision_unless_set(precision, nhwc):
    """Float32 on a CPU runs NCHW (NHWC float32 convolutions are slower there); bf16 autocast runs NHWC."""
    preset = tiny_preset("denoise")
    z = make_input_code(preset.input, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.rand(1, 3, 16, 16)

    def step(**fit):
        return FitStep(build_net(preset, 3), z, y, Identity(), preset.with_overrides(fit=fit).fit, torch.device("cpu"))

    auto = step(precision=precision)
    assert auto.channels_last is nhwc
    assert auto.z.is_contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    assert step(precision=precision, channels_last=not nhwc).channels_last is (not nhwc)  # an explicit choice wins


def test_a_forced_reduced_precision_warns_where_the_cpu_would_emulate_it(monkeypatch):
    preset = tiny_preset("denoise")
    z = make_input_code(preset.input, 16, 16, generator=torch.Generator().manual_seed(0))

    def step(precision):
        return FitStep(
            build_net(preset, 3),
            z,
            torch.rand(1, 3, 16, 16),
            Identity(),
            preset.with_overrides(fit={"precision": precision}).fit,
            torch.device("cpu"),
        )

    monkeypatch.setattr("dip.core.device.cpu_supports_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="emulated"):
        step("bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step("auto"), step("fp32")  # the defaults never warn
        monkeypatch.setattr("dip.core.device.cpu_supports_bf16", lambda: True)
        step("bf16")  # a CPU with native bf16


@pytest.mark.skipif(not os.path.exists("/proc/self/statm") or not ctypes.util.find_library("c"), reason="glibc/Linux")
def test_the_tuned_allocator_keeps_freed_pages_until_the_fit_hands_them_back():
    """Freed activations stay mapped across iterations (no re-faulting) and go back to the OS when a fit ends."""
    tune_allocator()  # what fit() does on a CPU; it cannot be undone in a process, and every fit does it anyway
    page = os.sysconf("SC_PAGE_SIZE")

    def resident_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 2**20

    release_memory()
    before = resident_mib()
    block = torch.ones(64 * 2**20)  # 256 MiB, touched
    del block
    kept = resident_mib()
    release_memory()
    assert kept - before > 200  # still mapped after free: the next iteration reuses the pages without faults
    assert kept - resident_mib() > 200  # handed back by release_memory
