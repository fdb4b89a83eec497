import io

import numpy as np
import pytest
from PIL import Image

from dip.core.errors import ImageError
from dip.core.images import (
    center_crop_to_multiple,
    check_min_size,
    limit_side,
    load_image,
    pad_to_multiple,
    read_image,
    save_image,
)


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
    with pytest.raises(ImageError, match="is not an image PIL can read as a PNG, JPEG, BMP, TIFF or WebP file"):
        load_image(b"just some text, not a picture")
    with pytest.raises(ImageError, match="is a PDF file, not a PNG, JPEG, BMP, TIFF or WebP file"):
        load_image(b"%PDF-1.4 definitely not a picture")


@pytest.mark.parametrize("fmt", ["TGA", "PCX", "SGI", "GIF"])
def test_other_formats_renamed_png_are_refused(tmp_path, fmt):
    """PIL reads these, but only the upload formats may be decoded, whatever the file is called."""
    path = tmp_path / "holiday.png"
    path.write_bytes(_png(Image.new("RGB", (8, 8), "red"), fmt))
    assert Image.open(path).format == fmt  # PIL left to itself would decode it
    with pytest.raises(ImageError, match=r"holiday\.png is .*a PNG, JPEG, BMP, TIFF or WebP file; "):
        load_image(path)


def test_eps_is_refused_before_ghostscript(monkeypatch):
    from PIL import EpsImagePlugin

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: pytest.fail("Ghostscript was called"))
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n0 0 moveto 8 8 lineto stroke\n%%EOF\n"
    with pytest.raises(ImageError, match=r"is a PostScript \(EPS\) file, not a PNG, JPEG"):
        load_image(eps)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "WEBP"])
def test_upload_formats_are_read(fmt):
    assert load_image(_png(Image.new("RGB", (9, 7), "red"), fmt)).shape == (7, 9, 3)


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


def _photo(width: int, height: int) -> Image.Image:
    """A smooth picture with some detail (a resized sample image), like a photo."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "sample_images" / "chelsea.png"
    return Image.open(sample).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)


@pytest.mark.parametrize("kind", ["RGB", "RGBA", "I;16", "JPEG-rotated"])
def test_reduced_decode_matches_a_full_decode_and_resize(kind):
    im = _photo(800, 600)
    if kind == "RGBA":
        im.putalpha(Image.linear_gradient("L").resize(im.size))
        data = _png(im)
    elif kind == "I;16":
        data = _png(Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257))
    elif kind == "JPEG-rotated":
        exif = Image.Exif()
        exif[0x0112] = 6
        data = _png(im, "JPEG", quality=95, exif=exif.tobytes())
    else:
        data = _png(im)
    full = load_image(data)
    small = read_image(data, max_side=256)
    expected = limit_side(full, 256)
    assert small.pixels.shape == expected.shape and max(small.pixels.shape[:2]) == 256
    assert (small.height, small.width) == full.shape[:2]  # the full size, upright
    assert small.pixels.dtype == np.float32 and 0 <= small.pixels.min() and small.pixels.max() <= 1
    assert np.abs(small.pixels - expected).mean() < 1.5 / 255
    assert load_image(data, max_side=256).shape == expected.shape
    assert read_image(data, max_side=5000).pixels.shape == full.shape  # already small enough: full size


def test_uint8_decode_equals_the_float_one():
    data = _png(_photo(300, 200))
    u = read_image(data, max_side=128, uint8=True).pixels
    x = read_image(data, max_side=128).pixels
    assert u.dtype == np.uint8 and u.shape == (85, 128, 3)
    np.testing.assert_array_equal(u, np.round(x * 255).astype(np.uint8))


def test_reduced_decode_never_makes_a_full_size_array():
    """numpy and Python allocations are traced; the full float32 image would be 1600 * 1600 * 12 B = 31 MB."""
    import tracemalloc

    data = _png(Image.linear_gradient("L").resize((1600, 1600)).convert("RGB"))
    tracemalloc.start()
    try:
        read_image(data, max_side=256)
        reduced = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        load_image(data)
        full = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert full > 1600 * 1600 * 12 and reduced < 4_000_000, (reduced, full)
