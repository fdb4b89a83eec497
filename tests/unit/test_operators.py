import numpy as np
import pytest
import torch

from dip.core.errors import ConfigError
from dip.core.operators import Identity, Lanczos2Downsampler, PixelMask, lanczos2_taps

# The first 8 of the 16 symmetric taps of the official factor-4 Lanczos-2 kernel (REFERENCE.md §3.2).
OFFICIAL_TAPS_X4 = [-0.001065, -0.009752, -0.020384, -0.014878, 0.024594, 0.098658, 0.183115, 0.239711]


def test_factor4_taps_equal_the_official_kernel():
    taps = lanczos2_taps(4)
    assert taps.shape == (16,)
    np.testing.assert_allclose(taps[:8], OFFICIAL_TAPS_X4, atol=1e-6)
    np.testing.assert_allclose(taps[8:], OFFICIAL_TAPS_X4[::-1], atol=1e-6)
    assert taps.sum() == pytest.approx(1.0)


def test_factor8_kernel_has_32_taps_and_unit_sum():
    taps = lanczos2_taps(8)
    assert taps.shape == (32,) and taps.sum() == pytest.approx(1.0) and np.allclose(taps, taps[::-1])


@pytest.mark.parametrize(
    "factor,size,expected", [(4, (384, 576), (96, 144)), (8, (384, 576), (48, 72)), (4, (101, 75), (25, 18))]
)
def test_downsampler_output_size(factor, size, expected):
    op = Lanczos2Downsampler(factor)
    assert op(torch.rand(1, 3, *size)).shape[-2:] == expected == op.output_size(*size)


def test_downsampler_keeps_constants_and_channels_apart():
    x = torch.ones(1, 3, 64, 64) * torch.tensor([0.2, 0.5, 0.9])[None, :, None, None]
    y = Lanczos2Downsampler(4)(x)
    np.testing.assert_allclose(y[0, :, 5, 5].numpy(), [0.2, 0.5, 0.9], atol=1e-6)


def test_odd_factor_is_refused():
    with pytest.raises(ConfigError, match="factor=3 is not supported"):
        Lanczos2Downsampler(3)


def _all_operators():
    mask = (np.random.default_rng(0).random((32, 48)) > 0.5).astype(np.float32)
    return [Identity(), Lanczos2Downsampler(4), Lanczos2Downsampler(8), PixelMask(mask)]


@pytest.mark.parametrize("op", _all_operators(), ids=lambda o: type(o).__name__)
def test_operator_contract(op):
    """Every operator: documented output size, float32 out, linear, differentiable, deterministic."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 32, 48, generator=gen), torch.rand(1, 3, 32, 48, generator=gen)
    y = op(a)
    assert y.shape[-2:] == op.output_size(32, 48) and y.dtype == torch.float32
    torch.testing.assert_close(op(2 * a - 3 * b), 2 * op(a) - 3 * op(b), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(op(a), y)
    a.requires_grad_(True)
    op(a).sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_mask_zeroes_holes_and_broadcasts_over_channels():
    mask = np.zeros((4, 4), np.float32)
    mask[:, :2] = 1
    y = PixelMask(mask)(torch.ones(1, 3, 4, 4))
    assert y[:, :, :, :2].eq(1).all() and y[:, :, :, 2:].eq(0).all()
