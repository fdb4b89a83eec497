"""One share link, many browsers: each AppTest is its own browser session (its own owner secret)."""

from __future__ import annotations

import re

from apphelpers import APP, PAGES, make_tiny, natural, open_page, png_bytes, upload, wait_until_finished
from streamlit.testing.v1 import AppTest


def browser():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def finished_upload_run(at) -> str:
    """A tiny denoising run of an uploaded photo (private to ``at``'s browser); returns its id."""
    open_page(at, "denoise")
    upload(at, "denoise", "my_photo.png", png_bytes(natural(96)))
    make_tiny(at, "denoise")
    at.button(key="denoise.run").click().run()
    job = at.query_params["job"]
    assert wait_until_finished(at).startswith("Done")
    return job


def visit(url_params: dict, page: str = None) -> AppTest:
    """A new browser opening a link: the entry point with ``url_params``, or ``page`` with them."""
    at = AppTest.from_file(APP, default_timeout=120)
    if page:
        at.run()
        at.switch_page(PAGES[page])
    for k, v in url_params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_another_browser_cannot_open_my_uploaded_photo_run_until_i_share_it(app):
    job = finished_upload_run(app)

    stranger = visit({"job": job})  # the owner's address-bar URL
    assert any("names no job you can open" in t.value for t in stranger.toast)
    assert not any(job in s.value for s in stranger.success)

    stranger = visit({"run": job}, "runs")
    assert stranger.dataframe == [] or job not in stranger.dataframe[0].value["run"].tolist()
    assert any("no saved run you can open" in w.value for w in stranger.warning)
    assert not any(m.label == "PSNR output" for m in stranger.metric)

    open_page(app, "runs")  # the owner still sees it, and makes a read-only link
    assert job in app.dataframe[0].value["run"].tolist()
    app.button(key=f"{job}.share").click().run()
    link = next(c.value for c in app.code if "share=" in c.value)
    token = re.search(r"share=([A-Za-z0-9_-]+)", link).group(1)

    friend = visit({"share": token}, "runs")
    assert friend.selectbox(key="runs.pick").value == job
    assert any(m.label == "PSNR output" for m in friend.metric)
    assert any("read-only" in c.value for c in friend.caption)
    assert not [b for b in friend.button if b.key and b.key.startswith("cancel.")]
    assert not [b for b in friend.button if b.key == f"{job}.share"]  # only the owner makes links

    assert any("names no run" in w.value for w in visit({"share": "x" * 32}, "runs").warning)


def test_a_sample_image_job_is_shown_read_only_elsewhere_and_only_its_owner_can_cancel(app):
    open_page(app, "denoise")  # the default image is a bundled sample: nobody's private photo
    make_tiny(app, "denoise", iterations=4000)
    app.number_input(key="denoise.lab-denoise.snapshot_every").set_value(100).run()
    app.button(key="denoise.run").click().run()
    job = app.query_params["job"]

    stranger = visit({"job": job})
    assert stranger.query_params["job"] == job
    assert any("another browser's job, read-only" in c.value for c in stranger.caption)
    assert not [b for b in stranger.button if b.key == f"cancel.{job}"]
    assert not any(p.label.startswith("Your ") for p in stranger.get("page_link"))
    stranger.button(key="denoise.run").click().run()  # the stranger's own job is theirs, not refused as the owner's
    assert not any("You already have" in w.value for w in stranger.warning)
    mine = stranger.query_params["job"]
    assert mine != job

    app.run()
    assert any(p.label.startswith("Your denoising job") for p in app.get("page_link"))
    app.button(key=f"cancel.{job}").click().run()
    assert wait_until_finished(app).startswith("Cancelled")
    stranger.button(key=f"cancel.{mine}").click().run()
    assert wait_until_finished(stranger).startswith("Cancelled")


def test_a_job_beyond_the_servers_limits_is_refused_with_the_limit_and_what_fits(app, monkeypatch):
    monkeypatch.setenv("DIP_MAX_WORKING_SIDE", "96")
    monkeypatch.setenv("DIP_MAX_TFLOP", "0.01")
    open_page(app, "denoise")
    assert app.selectbox(key="denoise.max_side").options == ["64", "96"]  # larger sizes would be refused
    make_tiny(app, "denoise", iterations=150, side=96)
    app.button(key="denoise.run").click().run()
    refusals = [w.value for w in app.warning if "this server allows 10 GFLOP per job" in w.value]
    assert refusals and re.search(r"at most [\d,]+ iterations fit", refusals[0]), [w.value for w in app.warning]
    assert "job" not in app.query_params


def test_a_link_with_markdown_or_an_overlong_id_gets_a_plain_message(app):
    for bad in ("[text](https://evil.example/login)", "x" * 300):
        at = visit({"job": bad})
        assert [t.value for t in at.toast] == ["The link is not a valid job id."]
        assert not at.exception
