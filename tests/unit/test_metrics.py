import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from dip.core.metrics import psnr, psnr_from_mse, ssim


def test_psnr_equals_skimage_with_data_range_1():
    rng = np.random.default_rng(0)
    a = rng.random((20, 30, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-4)
    assert psnr(a, b) == pytest.approx(psnr_from_mse(float(np.mean((a.astype(np.float64) - b) ** 2))))


def test_border_excludes_the_frame():
    a = np.full((10, 10, 3), 0.5)
    b = a.copy()
    b[0, :] = 0  # a corrupted first row, like F16's
    assert psnr(a, b) < 20 and psnr(a, b, border=1) == np.inf


def test_ssim_is_one_for_identical_images_and_lower_for_noise():
    rng = np.random.default_rng(1)
    a = rng.random((32, 32, 3))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)) < 0.9


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
