"""AppTest: every kind of bad or unusual upload gets a specific message, and the page keeps working."""

from __future__ import annotations

import io
import re

import numpy as np
from apphelpers import natural, open_page, png_bytes, upload
from PIL import Image


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def unescaped(markdown: str) -> str:
    """The text a user sees of a message whose user strings went through ``ui.service.text.plain`` (backslash
    escapes and invisible word joiners)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_truncated_file(app):
    open_page(app, "denoise")
    data = png_bytes(natural(96))
    upload(app, "denoise", "cut.png", data[: len(data) // 2])
    assert any("truncated or corrupt" in e for e in errors(app)), errors(app)


def test_too_many_pixels_offers_a_downscale(app, monkeypatch):
    monkeypatch.setenv("DIP_MAX_PIXELS", "5000")
    open_page(app, "denoise")
    upload(app, "denoise", "big.png", png_bytes(natural(100)))
    assert any("100x100 px" in e and "the limit is" in e for e in errors(app)), errors(app)
    app.button(key="denoise.downscale").click().run()
    assert not errors(app) and not app.exception
    assert "Working image: 64x64 px." in captions(app)


def test_tiny_image(app):
    open_page(app, "denoise")
    upload(app, "denoise", "tiny.png", png_bytes(natural(20)))
    assert any("20x20 px" in e for e in errors(app)), errors(app)


def test_rgba_greyscale_and_16_bit_are_converted_with_a_note(app):
    open_page(app, "denoise")
    rgba = np.dstack([natural(96), np.full((96, 96), 128, np.uint8)])
    upload(app, "denoise", "alpha.png", png_bytes(rgba))
    assert "transparency" in captions(app) and not errors(app)
    upload(app, "denoise", "grey.png", png_bytes(natural(96, "L")))
    assert "greyscale" in captions(app) and not errors(app)
    deep = natural(96, "L").astype(np.uint16) * 257
    assert Image.open(io.BytesIO(png_bytes(deep))).mode.startswith("I;16")
    upload(app, "denoise", "deep.png", png_bytes(deep))
    assert "16 bits" in captions(app) and not errors(app)


def test_exif_rotated_jpeg_is_shown_upright(app):
    open_page(app, "denoise")
    im = Image.fromarray(np.asarray(Image.fromarray(natural(128)).resize((128, 64))))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    upload(app, "denoise", "phone.jpg", buf.getvalue())
    assert "EXIF orientation" in captions(app)
    app.selectbox(key="denoise.max_side").set_value(128).run()
    assert "Working image: 64x128 px." in captions(app), captions(app)


def test_a_wide_photo_is_offered_only_working_sizes_that_fit(app):
    open_page(app, "inpaint")
    app.selectbox(key="inpaint.max_side").set_value(64).run()  # fine for the square sample image
    wide = np.asarray(Image.fromarray(natural(128)).resize((320, 160)))
    upload(app, "inpaint", "wide.png", png_bytes(wide))  # at 64 px: 64x32 after cropping, too small
    sizes = app.selectbox(key="inpaint.max_side").options
    assert "64" not in sizes and sizes[0] == "128", sizes
    assert app.selectbox(key="inpaint.max_side").value == 128  # the nearest size that fits, and it says so
    assert "Working size 128 px: at 64 px this image would be narrower than the 64 px the network needs" in captions(
        app
    ), captions(app)
    assert not errors(app) and not app.exception
    assert "Working image: 128x64 px." in captions(app), captions(app)
    panorama = np.asarray(Image.fromarray(natural(128)).resize((800, 100)))
    upload(app, "inpaint", "panorama.png", png_bytes(panorama))
    assert app.selectbox(key="inpaint.max_side").options == ["512"]  # 512x64; larger sizes exceed the CPU limit
    assert "Working image: 512x64 px." in captions(app), captions(app)


def test_mask_of_another_size(app):
    open_page(app, "inpaint")
    app.radio(key="inpaint.mask_kind").set_value("upload").run()
    mask = np.full((80, 100), 255, np.uint8)
    mask[20:40, 30:60] = 0
    app.file_uploader(key="inpaint.mask_upload").set_value(("mask.png", png_bytes(mask), "image/png")).run()
    assert any("mask is 100x80 px but the image is 512x512 px" in e for e in errors(app)), errors(app)


def test_mask_upload_and_transparency_mask(app):
    open_page(app, "inpaint")
    rgba = np.dstack([natural(128), np.full((128, 128), 255, np.uint8)])
    rgba[40:80, 40:80, 3] = 0
    upload(app, "inpaint", "holes.png", png_bytes(rgba))
    app.radio(key="inpaint.mask_kind").set_value("alpha").run()
    assert not errors(app) and "of pixels missing" in " ".join(c for im in app.image for c in im.captions)
    app.radio(key="inpaint.mask_kind").set_value("upload").run()
    mask = np.full((128, 128), 255, np.uint8)
    mask[10:30, 10:30] = 0
    app.file_uploader(key="inpaint.mask_upload").set_value(("mask.png", png_bytes(mask), "image/png")).run()
    assert not errors(app), errors(app)


def test_drawn_mask_without_strokes_asks_to_draw(app):
    open_page(app, "inpaint")
    app.radio(key="inpaint.mask_kind").set_value("draw").run()
    assert not app.exception
    assert any("Nothing is painted yet" in i.value for i in app.info)


def test_blind_super_resolution_input_is_enlarged(app):
    open_page(app, "sr")
    upload(app, "sr", "small.png", png_bytes(natural(64)), blind=True)
    assert not errors(app), errors(app)
    assert "Working image: 256x256 px" in captions(app)
    # A wide low-resolution photo keeps its rows: 64x43 at working size 256 is cropped to 64x40, not 64x32.
    wide = np.asarray(Image.fromarray(natural(96)).resize((80, 54)))
    upload(app, "sr", "wide.png", png_bytes(wide), blind=True)
    assert not errors(app), errors(app)
    assert "Working image: 256x160 px" in captions(app), captions(app)
    upload(app, "sr", "thumb.png", png_bytes(natural(8)), blind=True)
    assert errors(app) == [
        "low-resolution image is 8x8 px after cropping, so its x4 output would be 32x32 px, "
        "below the 64x64 px this network needs. Use a larger image."
    ]


def test_a_low_resolution_upload_shrunk_before_enlarging_says_so_and_offers_a_larger_size(app):
    from ui import keys

    open_page(app, "sr")
    photo = np.asarray(Image.fromarray(natural(96)).resize((146, 97)))
    upload(app, "sr", "phone.png", png_bytes(photo), blind=True)
    assert not errors(app), errors(app)
    note = "is 146x97 px: at a working size of 256 px it is shrunk to 64x40 px before ×4, so the result is 256x160 px, "
    assert note + "not 584x388. The largest working size here, 512 px, shrinks it least" in captions(app), captions(app)
    app.button(key=keys.use_size("sr", 512)).click().run()  # the largest working size here shrinks it least
    assert "Working image: 480x320 px" in captions(app), captions(app)
    assert "shrunk to 120x80 px" in captions(app)  # still smaller, but nothing larger to offer
    assert not [b for b in app.button if b.key and b.key.startswith(keys.use_size("sr", 0)[:-1])]
    # an upload that fits the working size is only cropped: nothing to say
    upload(app, "sr", "small.png", png_bytes(natural(64)), blind=True)
    assert "shrunk to" not in captions(app), captions(app)


def test_widget_changes_neither_decode_nor_resize_the_upload_again(app, monkeypatch):
    """A page reruns at every widget change; a phone photo must not be decoded and downscaled each time."""
    from ui import inputs, widgets

    calls = []
    decode, prepare = inputs.decode_upload, widgets.prepare_image
    monkeypatch.setattr(inputs, "decode_upload", lambda *a, **k: calls.append("decode") or decode(*a, **k))
    monkeypatch.setattr(widgets, "prepare_image", lambda *a, **k: calls.append("resize") or prepare(*a, **k))
    photo = np.random.default_rng(7).integers(0, 256, (300, 400, 3), dtype=np.uint8)  # bytes no other test uploads
    open_page(app, "denoise")
    calls.clear()  # the page opens on a sample image
    upload(app, "denoise", "photo.png", png_bytes(photo))
    assert calls == ["decode", "resize"] and not errors(app)
    app.slider(key="denoise.lab-denoise.sigma").set_value(40).run()
    app.number_input(key="denoise.lab-denoise.iterations").set_value(10).run()
    assert calls == ["decode", "resize"], calls
    app.selectbox(key="denoise.max_side").set_value(128).run()  # a new working size: resized, not decoded
    assert calls == ["decode", "resize", "resize"] and "Working image: 128x96 px." in captions(app), captions(app)


def test_another_format_renamed_png_is_refused(app):
    """PIL reads TGA, but only PNG, JPEG, BMP, TIFF and WebP files are decoded, whatever the name says."""
    open_page(app, "denoise")
    upload(app, "denoise", "holiday.png", png_bytes(natural(64), format="TGA"))
    assert [unescaped(e) for e in errors(app)] == [
        "holiday.png is not an image PIL can read as a PNG, JPEG, BMP, TIFF or WebP file; upload one of those formats."
    ], errors(app)
    assert not app.exception


def test_a_markdown_file_name_is_shown_as_text(app):
    name = "[phish](https://evil.example/login) ![px](https://evil.example/px.png).png"
    open_page(app, "denoise")
    upload(app, "denoise", name, b"not an image at all")
    (message,) = errors(app)
    assert message.replace("\u2060", "").startswith(r"\[phish\]\(https\:\/\/evil\.example\/login\) \!\[px\]"), message
    assert "](" not in message and unescaped(message).startswith(name + " is not an image PIL can read")


def test_a_large_upload_is_kept_as_uint8_at_the_downscale_size(app, monkeypatch):
    """The decoded upload (cached for an hour, shared by sessions) is uint8 at most DOWNSCALE_TO px; a mask must
    still have the size of the file, and fits the smaller image."""
    from ui import inputs
    from ui.service import config

    decoded = []
    decode = inputs.decode_upload
    monkeypatch.setattr(config, "DOWNSCALE_TO", 200)  # stands for 2048: a 400x300 upload is "large"
    monkeypatch.setattr(inputs, "decode_upload", lambda *a, **k: decoded.append(decode(*a, **k)) or decoded[-1])
    photo = np.asarray(Image.fromarray(natural(128)).resize((400, 300)))
    open_page(app, "inpaint")
    decoded.clear()  # the page opens on a sample image
    upload(app, "inpaint", "large.png", png_bytes(photo))
    (d,) = decoded
    assert d.pixels.dtype == np.uint8 and d.pixels.shape == (150, 200, 3) and (d.height, d.width) == (300, 400)
    assert not d.pixels.flags.writeable
    assert "large.png (400x300 PNG): it is used at 200x150 px" in unescaped(captions(app)), captions(app)
    app.selectbox(key="inpaint.max_side").set_value(128).run()
    assert "Working image: 128x96 px." in captions(app), captions(app)
    app.radio(key="inpaint.mask_kind").set_value("upload").run()
    assert any("Upload a mask of 400x300 px" in i.value for i in app.info)
    small = np.full((150, 200), 255, np.uint8)
    small[40:80, 40:80] = 0
    app.file_uploader(key="inpaint.mask_upload").set_value(("small.png", png_bytes(small), "image/png")).run()
    assert any("mask is 200x150 px but the image is 400x300 px" in e for e in errors(app)), errors(app)
    mask = np.full((300, 400), 255, np.uint8)
    mask[80:160, 80:160] = 0
    app.file_uploader(key="inpaint.mask_upload").set_value(("mask.png", png_bytes(mask), "image/png")).run()
    assert not errors(app) and not app.exception, errors(app)
    assert "Working image: 128x96 px." in captions(app), captions(app)


def test_the_transparency_mask_has_the_size_of_the_decoded_upload():
    """A file over the downscale size gives its alpha mask at the size of the decoded image, rounded alike."""
    from ui.service.imaging import alpha_mask, decode_upload

    rgba = np.dstack([natural(64), np.full((64, 64), 255, np.uint8)])
    rgba[20:40, 10:30, 3] = 0
    data = png_bytes(Image.fromarray(rgba).resize((333, 517)))
    decoded = decode_upload(data, "holes.png", max_pixels=10**6, max_side=100)
    mask = alpha_mask(data, max_side=100)
    assert mask.shape == decoded.pixels.shape[:2] == (100, 64) and 0 < mask.mean() < 1


def test_at_most_two_uploads_are_decoded_at_once(monkeypatch):
    import threading
    import time

    from ui.service import imaging

    busy, most, lock = [0], [0], threading.Lock()
    read = imaging.read_image

    def slow_read(*a, **k):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.2)
        with lock:
            busy[0] -= 1
        return read(*a, **k)

    monkeypatch.setattr(imaging, "read_image", slow_read)
    data = png_bytes(natural(32))
    threads = [
        threading.Thread(target=imaging.decode_upload, args=(data, f"{i}.png"), kwargs={"max_pixels": 10**6})
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 2


def test_far_too_many_pixels_is_not_downscaled_here(app, monkeypatch):
    """Downscaling decodes the whole file; a PNG over twice the limit would hold more than the limit allows."""
    monkeypatch.setenv("DIP_MAX_PIXELS", "4000")
    open_page(app, "denoise")
    upload(app, "denoise", "huge.png", png_bytes(natural(100)))
    assert any("100x100 px" in e and "the limit is 4,000 pixels" in e for e in errors(app)), errors(app)
    assert any("too large to downscale here" in i.value for i in app.info), [i.value for i in app.info]
    assert not [b for b in app.button if b.key == "denoise.downscale"]
