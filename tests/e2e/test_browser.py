"""End to end in Chromium: open the app, upload an image on Denoising, run a tiny job, open every page."""

from __future__ import annotations

import re

import locators as sel
import pytest
from appserver import serve
from PIL import Image

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

RUN_TIMEOUT_MS = 180_000  # a 30-iteration job of a small net on a busy 2-core CPU


def wait_for_app(page) -> None:
    page.wait_for_selector(sel.APP_CONNECTED, timeout=60_000)
    expect(page.locator(sel.APP)).to_have_attribute("data-test-script-state", "notRunning", timeout=60_000)
    expect(page.locator(sel.STALE)).to_have_count(0, timeout=60_000)


def open_page(page, title: str) -> None:
    page.get_by_test_id(sel.SIDEBAR_NAV).get_by_text(title, exact=True).click()
    expect(page.get_by_role("heading", name=title if title != "Home" else "Deep Image Prior Studio")).to_be_visible(
        timeout=60_000
    )
    wait_for_app(page)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_for_app(page)


def choose(page, label: str, option: str) -> None:
    box = page.get_by_test_id(sel.SELECTBOX).filter(has_text=label)
    item = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):  # the first click can land while the app is still redrawing
        box.click()
        try:
            item.click(timeout=5_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    wait_for_app(page)


@pytest.fixture
def small_png(tmp_path):
    """A 96x96 crop of a bundled photo (the cat's face), so the job is tiny but the result recognisable."""
    im = Image.open(sel.ROOT / "sample_images" / "chelsea.png").convert("RGB").crop((110, 20, 290, 200))
    path = tmp_path / "chelsea_face.png"
    im.resize((96, 96), Image.Resampling.LANCZOS).save(path)
    return path


def test_denoise_upload_run_and_every_page(app_server, page, small_png, screenshot):
    page.goto(app_server)
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Deep Image Prior Studio")).to_be_visible()
    screenshot(page, "home")

    open_page(page, "Denoising")
    page.get_by_text("Upload an image", exact=True).click()
    wait_for_app(page)
    page.get_by_test_id(sel.UPLOAD_INPUT).set_input_files(str(small_png))
    expect(page.get_by_test_id(sel.FILE_CHIP)).to_contain_text("chelsea_face.png")
    # The upload's rerun has drawn the page once its observation caption shows; until then the script state can
    # still read notRunning and the old run's (stale) widgets sit beside the new ones, e.g. two "Advanced" expanders.
    expect(page.get_by_text(re.compile(r"Working image: \d+x\d+ px"))).to_be_visible(timeout=60_000)
    wait_for_app(page)
    advanced = page.get_by_test_id(sel.EXPANDER).filter(has_text="Advanced")
    expect(advanced).to_have_count(1, timeout=60_000)
    advanced.get_by_text("Advanced", exact=False).click()
    choose(page, "Working size", "64")
    set_number(page, "Iterations", 30)
    set_number(page, "Channels (widest level)", 16)
    set_number(page, "Snapshot every (iterations)", 3)
    expect(page.get_by_text("Working image: 64x64 px.")).to_be_visible()
    page.get_by_test_id(sel.PRIMARY_BUTTON).filter(has_text="Run").click()

    expect(page.get_by_test_id(sel.SUCCESS)).to_contain_text("Done", timeout=RUN_TIMEOUT_MS)
    wait_for_app(page)
    output = page.get_by_test_id(sel.METRIC).filter(has_text="PSNR output")
    expect(output).to_contain_text(re.compile(r"\d+\.\d\d dB"))
    expect(page.get_by_test_id(sel.PLOTLY)).to_be_visible()
    assert "job=" in page.url  # a reload or a shared link finds the job again
    expect(page.get_by_test_id(sel.EXCEPTION)).to_have_count(0)
    screenshot(page, "denoising")

    page.reload()
    wait_for_app(page)
    expect(page.get_by_test_id(sel.SUCCESS)).to_contain_text("Done", timeout=60_000)

    for title in ("Noise impedance", "Super-resolution", "Inpainting", "JPEG artefacts", "Runs", "Home"):
        open_page(page, title)
        expect(page.get_by_test_id(sel.EXCEPTION)).to_have_count(0)
        if title == "Runs":
            expect(page.get_by_test_id(sel.SUCCESS)).to_contain_text("Done")
        screenshot(page, title.lower().replace(" ", "_").replace("-", "_"))


def test_a_shared_link_to_a_page_opens_that_page_on_a_fresh_server(page, tmp_path):
    """The first visit after a (re)start lands straight on /denoising: the page, inside the app's navigation."""
    with serve(tmp_path) as url:
        page.goto(f"{url}/denoising")
        wait_for_app(page)
        expect(page.get_by_role("heading", name="Denoising")).to_be_visible(timeout=60_000)
        nav = page.get_by_test_id(sel.SIDEBAR_NAV)
        for title in sel.PAGES:  # the entry point's titles, not a folder listing of file names
            expect(nav.get_by_text(title, exact=True)).to_be_visible()
        assert page.locator(sel.EXCEPTION).count() == 0


def test_a_drawn_mask_stays_when_the_working_size_changes_or_the_canvas_is_hidden(app_server, page):
    """Strokes are kept on the whole picture, so choosing Quick look (128 px, not 256) keeps the drawing, and so
    do another mask kind or another page in between."""
    page.goto(f"{app_server}/inpainting")
    wait_for_app(page)
    page.get_by_text("Draw it", exact=True).click()
    wait_for_app(page)
    expect(page.get_by_text("Nothing is painted yet", exact=False)).to_be_visible()
    canvas = page.locator(sel.DRAWING).last
    expect(canvas).to_be_visible(timeout=60_000)
    # fabric.js lays the canvas out once its picture has loaded: draw only on its final size (448 px wide)
    page.wait_for_function("c => c.getBoundingClientRect().width > 400", arg=canvas.element_handle(), timeout=60_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 150)
    page.mouse.down()
    for step in range(25):
        page.mouse.move(box["x"] + 100 + 6 * step, box["y"] + 150 + 3 * step)
    page.mouse.up()
    missing = page.get_by_text(re.compile(r"Observation \(\d+% of pixels missing\)"))
    expect(missing).to_be_visible(timeout=60_000)
    wait_for_app(page)
    expect(page.get_by_text("Working image: 256x256 px.")).to_be_visible()

    page.get_by_text("Quick look (128 px", exact=False).click()
    expect(page.get_by_text("Working image: 128x128 px.")).to_be_visible(timeout=60_000)
    wait_for_app(page)
    expect(missing).to_be_visible()
    expect(page.get_by_text("Nothing is painted yet", exact=False)).to_have_count(0)
    drawn = missing.inner_text()

    page.get_by_text("Box", exact=True).click()
    expect(missing).not_to_have_text(drawn, timeout=60_000)  # the box's own holes
    page.get_by_text("Draw it", exact=True).click()
    expect(missing).to_have_text(drawn, timeout=60_000)
    open_page(page, "Denoising")
    open_page(page, "Inpainting")
    expect(missing).to_have_text(drawn, timeout=60_000)
    expect(page.get_by_test_id(sel.EXCEPTION)).to_have_count(0)
