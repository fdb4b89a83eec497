import io

import numpy as np
import pytest
from PIL import Image

from dip.errors import ImageError
from dip.images import (center_crop_to_multiple, check_min_size, limit_side, load_image, pad_to_multiple,
                        save_image)


def _png(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_rgb_png_round_trip(tmp_path):
    x = np.random.default_rng(0).random((12, 17, 3)).astype(np.float32)
    save_image(x, tmp_path / "a.png")
    y = load_image(tmp_path / "a.png")
    assert y.shape == (12, 17, 3) and y.dtype == np.float32
    assert np.abs(y - x).max() <= 0.5 / 255 + 1e-6


def test_not_an_image_gets_a_clear_error():
    with pytest.raises(ImageError, match="is not an image PIL can read; upload a PNG, JPEG"):
        load_image(b"%PDF-1.4 definitely not a picture")


def test_truncated_file_gets_a_clear_error():
    data = _png(Image.new("RGB", (64, 64), "red"), "JPEG")
    with pytest.raises(ImageError, match="could not be decoded \\(truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(ImageError, match="is 100x80 px \\(0.0 MP\\); the limit is .* Downscale it first"):
        load_image(_png(Image.new("RGB", (100, 80))), max_pixels=5000)


def test_rgba_is_composited_on_white():
    im = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    im.putpixel((0, 0), (0, 0, 255, 255))
    x = load_image(_png(im))
    assert x.shape == (4, 4, 3)
    np.testing.assert_allclose(x[1, 1], [1, 1, 1])
    np.testing.assert_allclose(x[0, 0], [0, 0, 1])


def test_greyscale_kept_or_replicated():
    im = Image.new("L", (5, 3), 128)
    assert load_image(_png(im)).shape == (3, 5, 3)
    assert load_image(_png(im), mode="keep").shape == (3, 5, 1)
    assert load_image(_png(Image.new("RGB", (5, 3), "red")), mode="grey").shape == (3, 5, 1)


def test_16_bit_png_is_scaled_not_saturated():
    a = np.linspace(0, 65535, 256, dtype=np.uint16).reshape(16, 16)
    x = load_image(_png(Image.fromarray(a)), mode="keep")
    assert x.shape == (16, 16, 1)
    np.testing.assert_allclose(x[..., 0], a / 65535.0, atol=1e-6)
    assert len(np.unique(x)) == 256


def test_exif_orientation_is_applied():
    im = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    x = load_image(_png(im, "JPEG", exif=exif.tobytes()))
    assert x.shape[:2] == (40, 20)


def test_center_crop_matches_the_official_box():
    x = np.zeros((388, 584, 3), np.float32)
    x[2, 4] = 1  # top-left of the official zebra crop box (4, 2, 580, 386)
    c = center_crop_to_multiple(x, 32)
    assert c.shape == (384, 576, 3) and c[0, 0, 0] == 1


def test_crop_of_a_too_small_image_is_refused():
    with pytest.raises(ImageError, match="would leave nothing"):
        center_crop_to_multiple(np.zeros((20, 40, 3)), 32)


def test_pad_and_limit_side():
    assert pad_to_multiple(np.zeros((30, 33, 3)), 32).shape == (32, 64, 3)
    assert limit_side(np.zeros((400, 200, 3), np.float32), 100).shape == (100, 50, 3)
    assert limit_side(np.zeros((40, 20, 3)), 100).shape == (40, 20, 3)


def test_min_size_message_names_sizes_and_fix():
    with pytest.raises(ImageError, match="image is 24x20 px; this network needs at least 33x33 px"):
        check_min_size(np.zeros((20, 24, 3)), 33)
