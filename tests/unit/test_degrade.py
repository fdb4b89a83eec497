import io

import numpy as np
import pytest
from PIL import Image

from dip.core import degrade
from dip.core.errors import ImageError


def test_gaussian_noise_is_seeded_clipped_and_has_sigma():
    x = np.full((128, 128, 3), 0.5, np.float32)
    a = degrade.add_gaussian_noise(x, 25, seed=1)
    assert np.array_equal(a, degrade.add_gaussian_noise(x, 25, seed=1))
    assert not np.array_equal(a, degrade.add_gaussian_noise(x, 25, seed=2))
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert np.std(a - x) == pytest.approx(25 / 255, rel=0.03)


def test_negative_sigma_is_refused():
    with pytest.raises(ValueError, match="sigma_255=-1"):
        degrade.add_gaussian_noise(np.zeros((2, 2, 3)), -1)


def test_downscale_and_upscale_sizes():
    x = np.random.default_rng(0).random((96, 144, 3)).astype(np.float32)
    lr = degrade.downscale(x, 4)
    assert lr.shape == (24, 36, 3)
    for method in ("bicubic", "lanczos", "nearest"):
        assert degrade.upscale(lr, 4, method).shape == x.shape


def test_downscale_matches_pil_lanczos_on_8_bit_input():
    a = (np.random.default_rng(0).random((64, 48, 3)) * 255).astype(np.uint8)
    pil = np.asarray(Image.fromarray(a).resize((12, 16), Image.Resampling.LANCZOS), np.float32) / 255
    ours = degrade.downscale(a.astype(np.float32) / 255, 4)
    assert np.abs(ours - pil).max() < 1.5 / 255  # same filter; PIL's 8-bit path only rounds


def test_bernoulli_mask_keeps_the_requested_fraction():
    m = degrade.bernoulli_mask(200, 200, 0.5, seed=0)
    assert set(np.unique(m)) == {0.0, 1.0} and m.mean() == pytest.approx(0.5, abs=0.01)
    assert np.array_equal(m, degrade.bernoulli_mask(200, 200, 0.5, seed=0))


def test_box_and_text_masks_have_holes_and_known_pixels():
    for kind in ("box", "text"):
        m = degrade.make_mask(kind, 128, 96)
        assert m.shape == (128, 96) and 0.02 < 1 - m.mean() < 0.5


def test_load_mask_size_mismatch_is_a_clear_error():
    buf = io.BytesIO()
    Image.new("L", (10, 8), 255).save(buf, format="PNG")
    with pytest.raises(ImageError, match="mask is 10x8 px but the image is 12x8 px"):
        degrade.load_mask(buf.getvalue(), height=8, width=12)


def test_load_mask_white_known_black_hole():
    im = Image.new("L", (10, 8), 255)
    im.paste(0, (0, 0, 5, 8))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    m = degrade.load_mask(buf.getvalue(), height=8, width=10)
    assert m[:, :5].sum() == 0 and m[:, 5:].min() == 1


def test_all_white_mask_is_refused():
    buf = io.BytesIO()
    Image.new("L", (10, 8), 255).save(buf, format="PNG")
    with pytest.raises(ImageError, match="mask has no holes"):
        degrade.load_mask(buf.getvalue(), height=8, width=10)


def test_keep_known_puts_the_observed_pixels_back_and_fills_only_the_holes():
    rng = np.random.default_rng(0)
    x, restored = rng.random((8, 10, 3), dtype=np.float32), rng.random((8, 10, 3), dtype=np.float32)
    mask = degrade.bernoulli_mask(8, 10, 0.5, seed=1)
    kept = degrade.keep_known(restored, degrade.apply_mask(x, mask), mask)
    known = mask == 1
    assert np.array_equal(kept[known], x[known]) and np.array_equal(kept[~known], restored[~known])
    grey = degrade.keep_known(restored[..., :1], x[..., :1], mask)  # Barbara: one channel
    assert grey.shape == (8, 10, 1) and np.array_equal(grey[known], x[known][:, :1])
    with pytest.raises(ValueError, match="shapes differ"):
        degrade.keep_known(restored, x[:4], mask)


@pytest.mark.parametrize("task", ["denoise", "sr", "inpaint"])
def test_a_saved_problem_comes_back_with_its_operator(tmp_path, image64, task):
    import torch

    from dip.core.presets import get_preset
    from dip.core.tasks import load_problem, make_problem, save_problem

    preset = get_preset("lab", task)
    problem = make_problem(preset, image64, seed=3)
    save_problem(problem, tmp_path / "p.npz")
    back = load_problem(tmp_path / "p.npz", preset)
    assert (back.task, back.shape) == (problem.task, problem.shape)
    for name in ("y", "x_true", "degraded", "mask"):
        a, b = getattr(problem, name), getattr(back, name)
        assert (a is None and b is None) or np.array_equal(a, b), name
    x = torch.rand(1, 3, *problem.shape[:2])
    assert torch.equal(back.op(x), problem.op(x))
