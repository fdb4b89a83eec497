"""What a grader reads: noise impedance offers every target's fit, σ = 0 shows no "inf", super-resolution names its
bicubic input, and the lab presets cite a source the project has."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from apphelpers import ROOT, make_tiny, open_page, wait_until_finished
from streamlit.testing.v1 import AppTest


def text(markdown: str) -> str:
    """What a ``plain()``-escaped string reads as."""
    return re.sub(r"\\(.)", r"\1", markdown)


def run_dir(runs):
    folders = [p for p in runs.iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1, folders
    return folders[0]


def test_noise_impedance_offers_each_target_fit_labelled_and_zips_them(app, app_env):
    from dip.lab.report import report_zip

    open_page(app, "impedance")
    make_tiny(app, "impedance", iterations=2)
    app.button(key="impedance.run").click().run()
    assert wait_until_finished(app).startswith("Done")
    labels = [text(b.proto.label) for b in app.get("download_button")]
    assert labels == [
        "Fit: image PNG",
        "Fit: image + noise PNG",
        "Fit: shuffled pixels PNG",
        "Fit: noise PNG",
        "History CSV",
        "Report (ZIP)",
    ], labels

    run = run_dir(app_env)
    z = zipfile.ZipFile(io.BytesIO(report_zip(run)))
    for slug in ("image", "image_plus_noise", "shuffled_pixels", "noise"):
        assert z.read(f"fit_{slug}.png") == (run / slug / "result.png").read_bytes()
        assert f"target_{slug}.png" in z.namelist()
    assert "| image + noise |" in z.read("summary.md").decode()

    open_page(app, "runs")  # the same downloads on the Runs page
    assert [text(b.proto.label) for b in app.get("download_button")] == labels


def test_sigma_zero_says_no_noise_and_shows_no_infinite_psnr(app):
    open_page(app, "denoise")
    app.slider(key="denoise.lab-denoise.sigma").set_value(0).run()
    make_tiny(app, "denoise")
    app.button(key="denoise.run").click().run()
    assert wait_until_finished(app).startswith("Done")
    shown = {m.label: (m.value, m.delta) for m in app.metric}
    assert shown["PSNR degraded input"] == ("no noise", "")
    assert shown["PSNR output"][0].endswith(" dB") and not shown["PSNR output"][1]  # no gain over an infinite PSNR
    assert not [(label, v) for label, v in shown.items() if "inf" in f"{v[0]} {v[1]}".lower()], shown


def _metrics_panel(task: str, metrics: dict) -> None:
    from dip.core.records import JobOutcome
    from ui.panels import psnr_metrics
    from ui.service.jobs import JobView

    psnr_metrics(
        JobView(
            id="j",
            task=task,
            status="done",
            iteration=10,
            total=10,
            history={},
            snapshots={},
            info={"blind": False},
            outcome=JobOutcome.from_dict({"metrics": metrics}),
        )
    )


@pytest.mark.parametrize(
    "task,label", [("sr", "PSNR bicubic input"), ("denoise", "PSNR degraded input"), ("inpaint", "PSNR degraded input")]
)
def test_super_resolution_labels_its_input_psnr_as_bicubic(task, label):
    metrics = {
        "task": task,
        "psnr_observed": 22.5,
        "psnr_final": 24.0,
        "psnr_ema": 24.5,
        "psnr_best": 25.0,
        "best_iteration": 8,
    }
    at = AppTest.from_function(_metrics_panel, args=(task, metrics), default_timeout=60).run()
    assert not at.exception, at.exception
    first = at.metric[0]
    assert (first.label, first.value) == (label, "22.50 dB")
    assert [m.delta for m in at.metric[1:4]] == ["+1.50 dB", "+2.00 dB", "+2.50 dB"]


def test_an_infinite_psnr_is_never_printed_as_inf():
    from ui.panels import _delta, _fmt

    inf = float("inf")
    assert _fmt(inf, "no noise") == "no noise" and _fmt(None) == "–" and _fmt(20.0) == "20.00 dB"
    assert _delta(30.0, inf) is None and _delta(inf, 20.0) is None and _delta(30.0, 20.0) == "+10.00 dB"


def test_lab_presets_cite_a_source_the_project_has(app):
    from dip.core.presets import PRESETS

    open_page(app, "denoise")
    captions = [text(c.value) for c in app.caption if c.value.startswith("Source")]
    assert captions == ["Source: the lab's hyper-parameter table (README: Lab presets)."], captions
    readme = (ROOT / "README.md").read_text()
    assert "\n## Lab presets" in readme
    for p in PRESETS.values():  # a file a source names exists
        for name in re.findall(r"\b[\w-]+\.(?:md|ipynb)\b", p.source):
            assert name.endswith(".ipynb") or (ROOT / name).is_file(), (p.name, p.source)
