"""Classical baselines: each one improves on the degraded input; optional packages are optional."""

import sys
import types

import numpy as np
import pytest

from dip.core import degrade
from dip.core.baselines import denoise_baselines, estimate_sigma, inpaint_baselines, sr_baselines, unavailable_baselines
from dip.core.errors import ConfigError, ImageError
from dip.core.images import center_crop_to_multiple, limit_side, load_image
from dip.core.metrics import psnr


@pytest.fixture(scope="module")
def image():
    return center_crop_to_multiple(limit_side(load_image("sample_images/chelsea.png"), 64), 16)


def test_denoise_baselines_beat_the_noisy_input(image):
    noisy = degrade.add_gaussian_noise(image, 25, seed=0)
    results = denoise_baselines(noisy, 25, x_true=image)
    names = [b.name for b in results]
    assert names[:2] == ["nlm", "tv"]
    for b in results:
        assert b.image.shape == image.shape and b.image.dtype == np.float32
        assert b.psnr == pytest.approx(psnr(image, b.image))
        assert b.psnr > psnr(image, noisy) + 2.0, b.name
        assert b.seconds >= 0 and b.settings


def test_denoise_without_known_sigma_estimates_it(image):
    noisy = degrade.add_gaussian_noise(image, 25, seed=1)
    results = denoise_baselines(noisy, None)
    assert all(b.psnr is None for b in results)
    assert "estimated" in results[0].settings
    assert estimate_sigma(noisy) * 255 == pytest.approx(25, rel=0.2)
    assert estimate_sigma(image) < estimate_sigma(noisy) / 2


def test_estimate_sigma_of_grey_and_tiny_images():
    rng = np.random.default_rng(0)
    flat = np.full((32, 48, 1), 0.5, np.float32)
    noisy = np.clip(flat + rng.normal(0, 10 / 255, flat.shape), 0, 1).astype(np.float32)
    sigma = estimate_sigma(noisy)
    assert isinstance(sigma, float) and sigma * 255 == pytest.approx(10, rel=0.2)
    assert estimate_sigma(flat) == pytest.approx(0, abs=1e-6)
    for shape in ((4, 40, 3), (40, 4, 1), (0, 0, 3)):  # too few pixels: a clear message, no skimage warning
        with pytest.raises(ImageError, match=r"need at least 8x8 px to estimate its noise"):
            estimate_sigma(np.zeros(shape, np.float32))
    with pytest.raises(ImageError, match=r"\(H, W, C\) image"):
        estimate_sigma(np.zeros((16, 16), np.float32))


def test_denoise_on_a_grey_image(image):
    grey = image.mean(axis=2, keepdims=True)
    noisy = degrade.add_gaussian_noise(grey, 25, seed=0)
    for b in denoise_baselines(noisy, 25, x_true=grey):
        assert b.image.shape == grey.shape
        assert b.psnr > psnr(grey, noisy), b.name


def test_missing_optional_packages_are_left_out(image, monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # import bm3d -> ImportError
    monkeypatch.setitem(sys.modules, "pywt", None)
    noisy = degrade.add_gaussian_noise(image, 25, seed=0)
    assert [b.name for b in denoise_baselines(noisy, 25, x_true=image)] == ["nlm", "tv"]
    missing = unavailable_baselines("denoise")
    assert "non-commercial" in missing["bm3d"] and "PyWavelets" in missing["wavelet"]
    assert unavailable_baselines("sr") == {}


def test_installed_bm3d_is_used_with_sigma_psd(image, monkeypatch):
    calls = {}

    def bm3d_rgb(z, sigma_psd):
        calls["sigma_psd"] = sigma_psd
        return np.clip(z * 0.5 + 0.25, 0, 1)

    monkeypatch.setitem(sys.modules, "bm3d", types.SimpleNamespace(bm3d_rgb=bm3d_rgb))
    noisy = degrade.add_gaussian_noise(image, 25, seed=0)
    results = {b.name: b for b in denoise_baselines(noisy, 25, x_true=image)}
    assert results["bm3d"].label == "CBM3D"
    assert calls["sigma_psd"] == pytest.approx(25 / 255)
    assert "bm3d" not in unavailable_baselines("denoise")


def test_sr_baselines_upsample_to_the_target_size(image):
    lr = degrade.downscale(image, 4)
    results = {b.name: b for b in sr_baselines(lr, 4, image.shape, x_true=image)}
    assert list(results) == ["nearest", "bicubic", "lanczos"]
    for b in results.values():
        assert b.image.shape == image.shape
        assert b.psnr == pytest.approx(psnr(image, b.image))
    assert results["bicubic"].psnr > results["nearest"].psnr
    assert results["lanczos"].psnr > results["nearest"].psnr


def test_inpaint_baseline_beats_the_masked_input(image):
    mask = degrade.bernoulli_mask(*image.shape[:2], 0.5, seed=0)
    y = degrade.apply_mask(image, mask)
    (b,) = inpaint_baselines(y, mask, x_true=image)
    assert b.name == "biharmonic" and b.image.shape == image.shape
    assert b.psnr > psnr(image, y) + 10.0
    known = mask.astype(bool)
    np.testing.assert_allclose(b.image[known], image[known], atol=1e-5)


def test_inputs_are_checked(image):
    with pytest.raises(ImageError, match=r"\(H, W, C\) array"):
        denoise_baselines(image[..., 0], 25)
    with pytest.raises(ImageError, match=r"outside \[0, 1\]"):
        denoise_baselines(image * 255, 25)
    with pytest.raises(ConfigError, match="sigma_255=0"):
        denoise_baselines(image, 0)
    with pytest.raises(ImageError, match="mask is 8x8 px"):
        inpaint_baselines(image, np.ones((8, 8)))
    with pytest.raises(ImageError, match="smaller than the low-resolution"):
        sr_baselines(image, 4, (8, 8, 3))
