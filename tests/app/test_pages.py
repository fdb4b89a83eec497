"""AppTest: every page renders, a tiny run reaches "done" with a PSNR, and bad uploads get specific messages."""

from __future__ import annotations

import re

import pytest
from apphelpers import PAGES, ROOT, make_tiny, natural, open_page, png_bytes, upload, wait_until_finished

from ui.service.text import plain

EXPERIMENTS = ["impedance", "denoise", "sr", "inpaint", "jpeg"]


@pytest.mark.parametrize("task", list(PAGES))
def test_page_renders(app, task):
    open_page(app, task)
    assert app.title[0].value


def test_home_shows_device(app):
    assert any(m.label == "Device" and m.value for m in app.metric)


@pytest.mark.parametrize("task", EXPERIMENTS)
def test_tiny_run_reaches_done_and_shows_psnr(app, task, app_env):
    open_page(app, task)
    make_tiny(app, task)
    app.button(key=f"{task}.run").click().run()
    assert app.query_params["job"]  # the job id is in the URL
    status = wait_until_finished(app)
    assert status.startswith("Done"), status
    psnr = [m for m in app.metric if "PSNR" in m.label and m.value.endswith("dB")]
    assert psnr, [(m.label, m.value) for m in app.metric]
    labels = [b.proto.label for b in app.get("download_button")]
    extra = ["Holes filled PNG"] if task == "inpaint" else []  # the user's pixels kept, only holes filled
    kept_caption = [c.value for c in app.caption if "with the observed pixels kept" in c.value]
    assert len(kept_caption) == (task == "inpaint"), kept_caption
    fits = ["Fit: image PNG", "Fit: image \\+ noise PNG", "Fit: shuffled pixels PNG", "Fit: noise PNG"]
    expected = fits if task == "impedance" else ["Result PNG", *extra, "EMA PNG"]  # each target's fit, labelled
    assert labels == [*expected, "History CSV", "Report (ZIP)"], labels
    if task != "impedance":  # Deep Image Prior beside the engine's classical methods
        table = app.dataframe[-1].value if app.dataframe else None
        assert table is not None and table["method"].str.startswith("Deep Image Prior").any()
    run_dirs = [p for p in app_env.iterdir() if not p.name.startswith(".")]
    assert not list((app_env / ".incomplete").iterdir())  # nothing left to resume once the run is written
    assert len(run_dirs) == 1 and (run_dirs[0] / "metrics.json").is_file()

    open_page(app, "runs")  # the finished run is listed and opens with the same panels
    assert app.selectbox(key="runs.pick").value == run_dirs[0].name
    assert any("PSNR" in m.label for m in app.metric)


@pytest.mark.parametrize("task", EXPERIMENTS)
def test_invalid_upload_shows_error(app, task):
    open_page(app, task)
    upload(app, task, "notes.png", b"this is not an image")
    assert any("not an image" in e.value for e in app.error), [e.value for e in app.error]
    assert not app.exception


def test_blind_denoising_measures_against_the_observation(app):
    open_page(app, "denoise")
    assert [s.label for s in app.slider] == ["Noise level σ (0-255 scale)"]
    upload(app, "denoise", "noisy.png", png_bytes(natural(64)), blind=True)
    assert not app.slider  # the upload brings its own noise: no noise level to choose
    make_tiny(app, "denoise")
    app.button(key="denoise.run").click().run()
    assert wait_until_finished(app).startswith("Done")
    labels = [m.label for m in app.metric]
    assert "PSNR vs observation" in labels and "PSNR output" not in labels
    table = app.dataframe[-1].value  # the classical methods' time and settings, with no empty PSNR column
    assert list(table.columns) == ["method", "seconds", "settings"] and "Non-local means" in table["method"].tolist()


def test_a_noisy_upload_shrunk_to_the_working_size_says_how_much_noise_it_lost(app):
    import numpy as np

    open_page(app, "denoise")
    rng = np.random.default_rng(0)
    photo = np.clip(natural(256).astype(float) + rng.normal(0, 25, (256, 256, 3)), 0, 255).astype(np.uint8)
    upload(app, "denoise", "noisy_photo.png", png_bytes(photo), blind=True)
    app.selectbox(key="denoise.max_side").set_value(64).run()
    note = next(c.value for c in app.caption if c.value.startswith("Estimated noise"))
    before, after = (float(v) for v in re.findall(r"σ ≈ (\d+\.\d)", note))
    assert "in your 256x256 px photo" in note and 20 < before < 30 and after < before / 2, note
    app.selectbox(key="denoise.max_side").set_value(256).run()  # its own scale: nothing lost, no note
    assert not [c for c in app.caption if c.value.startswith("Estimated noise")]


def test_super_resolution_shows_bicubic_and_nearest(app):
    open_page(app, "sr")
    captions = " ".join(c for im in app.image for c in im.captions)
    assert "Bicubic ×4 · PSNR" in captions and "Nearest ×4 · PSNR" in captions
    app.radio(key="sr.lab-sr.factor").set_value(8).run()
    assert "Bicubic ×8" in " ".join(c for im in app.image for c in im.captions)


def test_second_run_while_one_is_active_is_refused(app):
    open_page(app, "denoise")
    make_tiny(app, "denoise", iterations=5000)
    app.number_input(key="denoise.lab-denoise.snapshot_every").set_value(100).run()  # within the snapshot limit
    app.button(key="denoise.run").click().run()
    first = app.query_params["job"]
    app.button(key="denoise.run").click().run()
    assert any("You already have a denoise job" in w.value for w in app.warning), [w.value for w in app.warning]
    assert app.query_params["job"] == first
    app.button(key=f"cancel.{first}").click().run()
    assert wait_until_finished(app).startswith("Cancelled")


def test_reload_and_server_restart_find_the_job_from_the_url(app):
    open_page(app, "denoise")
    make_tiny(app, "denoise")
    app.button(key="denoise.run").click().run()
    job = app.query_params["job"]
    assert wait_until_finished(app).startswith("Done")

    from apphelpers import APP
    from streamlit.testing.v1 import AppTest

    from ui import state

    reloaded = AppTest.from_file(APP, default_timeout=120)  # a new session: a reload or a shared link
    reloaded.query_params["job"] = job
    reloaded.run()
    assert not reloaded.exception
    assert any(s.value.startswith("Done") and job in s.value for s in reloaded.success)  # on the Denoising page

    state.reset_registry()  # "server restart": the job is only on disk now
    restarted = AppTest.from_file(APP, default_timeout=120)
    restarted.query_params["job"] = job
    restarted.run()
    assert any(s.value.startswith("Done") for s in restarted.success)
    assert any(m.label == "PSNR output" for m in restarted.metric)


def test_best_without_ground_truth_is_shown_and_the_switch_reaches_the_run(app, app_env):
    import json

    open_page(app, "denoise")
    make_tiny(app, "denoise")
    app.toggle(key="denoise.lab-denoise.stop_at_blind").set_value(True).run()
    assert any("stop at the best (no ground truth) on" in m.value for m in app.markdown)
    app.button(key="denoise.run").click().run()
    assert wait_until_finished(app).startswith("Done")
    assert "Best (no ground truth)" in [m.label for m in app.metric]  # beside the oracle's best iterate
    config = json.loads(next(app_env.glob("*/config.json")).read_text())
    assert config["fit"]["stop_at_blind"] is True


def test_runs_written_by_the_command_line_open_on_the_runs_page(app, app_env, monkeypatch):
    """`python -m dip` run folders (and `dip reproduce`'s docs/runs/) open there too, named by their image, on a
    gallery server: they have no owner, so a private server lists them for nobody."""
    from dip.cli.commands import main

    monkeypatch.setenv("DIP_PUBLIC_RUNS", "1")

    out = app_env / "20261130-cli-denoise"
    assert (
        main(
            [
                "denoise",
                "--image",
                str(ROOT / "sample_images" / "coffee.png"),
                "--max-side",
                "96",
                "--iters",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    open_page(app, "runs")
    assert app.selectbox(key="runs.pick").value == out.name
    assert app.dataframe[0].value["image"].tolist() == ["coffee.png"]
    assert plain("Denoising · coffee.png · lab-denoise") in [h.value for h in app.subheader]  # shown as text
    assert any("PSNR" in m.label for m in app.metric) and not app.exception


def test_a_long_run_offers_only_smaller_working_sizes_the_network_can_take(app, monkeypatch):
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("DIP_CPU_BUDGET_MIN", "0.001")  # every size is "long": the offers always show
    open_page(app, "denoise")
    wide = np.asarray(Image.open(ROOT / "sample_images" / "chelsea.png").convert("RGB").resize((640, 160)))
    upload(app, "denoise", "wide.png", png_bytes(wide))
    app.selectbox(key="denoise.max_side").set_value(512).run()
    offers = [b for b in app.button if b.label.startswith("Use ") and "≈" in b.label]
    sides = sorted(int(re.match(r"Use (\d+) px", b.label).group(1)) for b in offers)
    assert sides and all(s < 512 for s in sides), sides
    # 192 px makes it 192x48, cropped to 192x32: below the 5-level net's 33 px; 256 px gives 256x64
    assert sides[0] == 256
    for side in sides:
        app.selectbox(key="denoise.max_side").set_value(512).run()
        next(b for b in app.button if b.label.startswith(f"Use {side} px")).click().run()
        assert not app.exception and app.selectbox(key="denoise.max_side").value == side
        assert not [e for e in app.error if "smaller than" in e.value], [e.value for e in app.error]


def test_the_time_estimate_counts_start_up_and_baselines_and_learns_from_finished_runs(app):
    open_page(app, "denoise")
    make_tiny(app, "denoise", iterations=5)
    first = next(c.value for c in app.caption if c.value.startswith("Expected time on this CPU"))
    assert "plus start-up and the classical baselines" in first and "from how long the last runs" not in first
    app.button(key="denoise.run").click().run()
    assert wait_until_finished(app).startswith("Done")
    app.number_input(key="denoise.lab-denoise.iterations").set_value(6).run()
    again = next(c.value for c in app.caption if c.value.startswith("Expected time on this CPU"))
    assert re.search(r"×\d+\.\d\d from how long the last runs here took", again), again
