"""Helpers of the AppTest tests: page paths, tiny settings, polling a job, making uploads."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
PAGES = {
    "home": "pages/home.py",
    "impedance": "pages/noise_impedance.py",
    "denoise": "pages/denoising.py",
    "sr": "pages/super_resolution.py",
    "inpaint": "pages/inpainting.py",
    "jpeg": "pages/jpeg_artefacts.py",
    "runs": "pages/runs.py",
}
PRESETS = {
    "impedance": "lab-impedance",
    "denoise": "lab-denoise",
    "sr": "lab-sr",
    "inpaint": "lab-inpaint",
    "jpeg": "snail",
}


def open_page(at, task: str):
    at.switch_page(PAGES[task]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def make_tiny(at, task: str, *, iterations: int = 3, side: int = 64) -> None:
    """Set the Advanced widgets to a tiny run: few iterations, 8 channels, a snapshot every iteration, 64 px."""
    k = f"{task}.{PRESETS[task]}"
    at.number_input(key=f"{k}.iterations").set_value(iterations)
    at.number_input(key=f"{k}.channels").set_value(8)
    at.number_input(key=f"{k}.snapshot_every").set_value(1)
    at.selectbox(key=f"{task}.max_side").set_value(side)
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def wait_until_finished(at, timeout: float = 120.0) -> str:
    """AppTest never fires run_every, so poll by re-running the script until a final status shows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        finished = (
            [s.value for s in at.success if s.value.startswith("Done")]
            + [w.value for w in at.warning if w.value.startswith("Cancelled")]
            + [e.value for e in at.error if e.value.startswith("The job failed")]
        )
        if finished:
            return finished[0]
        time.sleep(0.3)
    raise AssertionError("the job did not finish in time")


def png_bytes(image, **save) -> bytes:
    """PNG (or ``format=...``) bytes of a uint8/uint16 array or a PIL image."""
    buf = io.BytesIO()
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    im.save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def natural(side: int = 96, mode: str = "RGB") -> np.ndarray:
    """A crop of a bundled sample image as uint8, so uploads look like photos."""
    im = Image.open(ROOT / "sample_images" / "chelsea.png").convert(mode)
    return np.asarray(im.resize((side, side)))


def upload(at, task: str, name: str, data: bytes, *, key: str = None, blind: bool = False) -> None:
    at.radio(key=f"{task}.source").set_value("blind" if blind else "upload").run()
    at.file_uploader(key=key or f"{task}.upload").set_value((name, data, "image/png")).run()
