"""ES-WMV / ES-EMV (Wang et al., "Early Stopping for Deep Image Prior"): definitions, patience, memory, real fit."""

import numpy as np
import pytest
import torch

from dip.core import degrade
from dip.core.errors import ConfigError
from dip.core.fit import FitConfig, fit, to_tensor
from dip.core.images import center_crop_to_multiple, limit_side, load_image
from dip.core.metrics import psnr
from dip.core.models import InputConfig, SkipNet, SkipNetConfig, make_input_code
from dip.core.operators import Identity
from dip.core.stopping import ExponentialVariance, WindowedVariance, make_detector

SHAPE = (1, 3, 8, 8)
PATTERN = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0)) - 0.5


def frame(t: int, scale: float) -> torch.Tensor:
    """0.5 + scale * (+-pattern), the sign alternating with t: a window of even length has mean 0.5."""
    return 0.5 + scale * (1 if t % 2 else -1) * PATTERN


def block_scales(n: int, start: int, length: int, low: float = 0.01, high: float = 0.2) -> list[float]:
    """Scale ``high`` everywhere except ``low`` on iterations start .. start + length - 1 (1-based)."""
    return [low if start <= t < start + length else high for t in range(1, n + 1)]


def feed(detector, scales) -> list[torch.Tensor]:
    frames = []
    for t, s in enumerate(scales, start=1):
        frames.append(frame(t, s))
        detector.update(t, frames[-1])
    return frames


def exact_window_variance(frames, t, window):
    stack = torch.stack(frames[t - window : t]).double()
    return float(((stack - stack.mean(0)) ** 2).mean())


def test_wmv_returns_the_iterate_that_closes_the_quietest_window():
    window, start = 20, 61
    det = WindowedVariance(window=window, patience=10_000)
    frames = feed(det, block_scales(200, start, window))
    assert det.best_iteration == start + window - 1  # the window that holds exactly the quiet block
    torch.testing.assert_close(det.best_image, frames[start + window - 2])


def test_wmv_variance_matches_the_definition():
    det = WindowedVariance(window=10, patience=10_000)
    rng = np.random.default_rng(0)
    frames = []
    for t in range(1, 80):
        frames.append(torch.from_numpy(rng.random(SHAPE, dtype=np.float32)) * (1 + t % 7))
        det.update(t, frames[-1])
        if t >= 10:
            assert float(det.last_var) == pytest.approx(exact_window_variance(frames, t, 10), rel=1e-5)


def test_wmv_stays_exact_over_a_long_run_with_tiny_late_variance():
    """Running sums of raw float32 values drift; the re-centred sums must not (variance ~1e-6 after 2000 its)."""
    det = WindowedVariance(window=50, patience=10**6)
    g = torch.Generator().manual_seed(1)
    base = torch.rand(SHAPE, generator=g)
    frames = []
    for t in range(1, 2001):
        s = 0.3 * max(0.0, 1 - t / 400) + 0.001
        frames.append(base + s * torch.randn(SHAPE, generator=g))
        det.update(t, frames[-1])
    assert float(det.last_var) == pytest.approx(exact_window_variance(frames, 2000, 50), rel=1e-4)


def test_emv_finds_a_v_shaped_minimum():
    t0 = 300
    det = ExponentialVariance(alpha=0.1, patience=10_000, warmup=20)
    feed(det, [0.01 + 0.002 * abs(t - t0) for t in range(1, 601)])
    assert abs(det.best_iteration - t0) <= 10  # the exponential average lags by about 1 / alpha


def test_emv_matches_the_recursion():
    det = ExponentialVariance(alpha=0.1, patience=10, warmup=1)
    xs = [torch.full((1, 1, 2, 2), v) for v in (0.2, 0.6, 0.4, 0.9)]
    mean, var = 0.2, 0.0
    for t, x in enumerate(xs, start=1):
        det.update(t, x)
        if t > 1:
            delta = x[0, 0, 0, 0].item() - mean
            var = (1 - 0.1) * (var + 0.1 * delta**2)
            mean += 0.1 * delta
            assert float(det.last_var) == pytest.approx(var, rel=1e-5)


@pytest.mark.parametrize("kind", ["wmv", "emv"])
def test_patience_stops_exactly_patience_iterations_after_the_minimum(kind):
    patience = 40
    det = make_detector(kind, window=20, patience=patience)
    stop_at = None
    for t, s in enumerate(block_scales(400, 31, 60), start=1):  # quiet block within patience of the start
        det.update(t, frame(t, s))
        if det.should_stop():
            stop_at = t
            break
    assert stop_at is not None
    assert stop_at == det.best_iteration + patience
    assert 31 <= det.best_iteration <= 90


def test_emv_memory_is_constant_and_wmv_memory_is_one_window():
    image_bytes = PATTERN.numel() * 4
    emv, wmv = ExponentialVariance(patience=10**6, warmup=5), WindowedVariance(window=16, patience=10**6)
    sizes = []
    for t in range(1, 1001):
        emv.update(t, frame(t, 0.1))
        wmv.update(t, frame(t, 0.1))
        if t in (50, 1000):
            sizes.append((emv.state_bytes(), wmv.state_bytes()))
    assert sizes[0] == sizes[1]
    assert sizes[1][0] <= 3 * image_bytes + 64  # mean, variance, best image (+ scalars)
    assert sizes[1][1] <= (16 + 4) * image_bytes + 64  # ring buffer, reference, two sums, best image


def test_make_detector_validates():
    assert make_detector("none") is None
    with pytest.raises(ConfigError, match="choose wmv, emv or none"):
        make_detector("median")
    with pytest.raises(ConfigError, match="window of at least 2"):
        make_detector("wmv", window=1)
    with pytest.raises(ConfigError, match="es_patience=0"):
        make_detector("emv", patience=0)


def _tiny_denoise(iterations, **fit_kw):
    x = center_crop_to_multiple(limit_side(load_image("sample_images/camera.png"), 64), 16)
    y = degrade.add_gaussian_noise(x, 25, seed=0)
    torch.manual_seed(0)
    net = SkipNet(SkipNetConfig(input_channels=8, channels_down=(16, 16, 16), channels_skip=4))
    z = make_input_code(InputConfig(channels=8), *x.shape[:2], generator=torch.Generator().manual_seed(0))
    cfg = FitConfig(iterations=iterations, reg_noise_std=0.0, seed=0, **fit_kw)
    return x, y, net, z, cfg


def test_fit_stops_at_blind_after_patience():
    x, y, net, z, cfg = _tiny_denoise(400, early_stop="wmv", es_window=10, es_patience=15, stop_at_blind=True)
    x = x[:32, :32]
    y = y[:32, :32]
    z = z[..., :32, :32]
    result = fit(net, z, to_tensor(y), Identity(), cfg, device="cpu")
    assert result.iterations_done < 400
    assert result.iterations_done == result.blind_iteration + 15
    assert result.blind_confirmed is True
    assert result.blind.shape == x.shape


def test_blind_iterate_is_close_to_the_oracle_on_a_small_noisy_image():
    """64 px camera, sigma 25, 16-channel 3-level net without input noise: the fit peaks near iteration 180
    and has lost about 2 dB by 400 (it fits the noise). Both detectors land within 2 dB of the oracle."""
    x, y, net, z, cfg = _tiny_denoise(400, early_stop="wmv", es_window=50, es_patience=1000, snapshot_every=1)
    emv = ExponentialVariance(alpha=0.1, patience=1000, warmup=50)
    result = fit(
        net,
        z,
        to_tensor(y),
        Identity(),
        cfg,
        x_true=to_tensor(x),
        device="cpu",
        on_snapshot=lambda s: emv.update(s.iteration, torch.from_numpy(s.image)),
    )
    best, final, blind = psnr(x, result.best), psnr(x, result.output), psnr(x, result.blind)
    emv_psnr = psnr(x, emv.best_image.numpy())
    assert best > final + 1.0, "the run must overfit for the check to mean anything"
    assert best - blind <= 2.0, (best, blind, result.blind_iteration)
    assert best - emv_psnr <= 2.0, (best, emv_psnr, emv.best_iteration)
    assert blind > final
    assert result.blind_confirmed is False, "400 iterations cannot exhaust a patience of 1000"
