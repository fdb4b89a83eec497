"""Damaged run folders never break the Runs page: the listing leaves them out with a note, opening one shows the
specific reason, the default view falls back to the newest run that opens, and ids from the URL render as text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from apphelpers import APP, PAGES
from fakes import fake_run

from dip.core.errors import RunFolderError

GOOD = "20260101-000000-denoise-cccccc"
BAD_IMAGE = "20260102-000000-denoise-bbbbbb"  # listed (its metrics.json is fine), fails when opened
BAD_METRICS = "20260103-000000-denoise-aaaaaa"  # metrics.json holds [] : not listed
PARTIAL = ".20260104-000000-denoise-dddddd.partial-0a1b2c3d"  # a writer's temporary: neither listed nor noted


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def text(markdown: str) -> str:
    """What a ``plain()``-escaped string reads as (backslash escapes and word joiners are not seen)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


# ui.service.runs without Streamlit ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "run_id",
    [
        "../x",
        "..",
        "a/b",
        "a\\b",
        ".hidden",
        "/etc",
        "/tmp/x",
        "",
        "x" * 101,
        "a b",
        "a;b",
        "ü",
        "a\nb",
        "a\x00b",
        None,
        5,
    ],
)
def test_run_folder_refuses_ids_that_are_not_plain_folder_names(tmp_path, run_id):
    from ui.service.runs import run_folder

    (tmp_path / "runs").mkdir()
    fake_run(tmp_path / "x")  # what "../x" would reach
    assert run_folder(tmp_path / "runs", run_id) is None


def test_run_folder_accepts_a_plain_id_up_to_100_characters(tmp_path):
    from ui.service.runs import run_folder

    for run_id in (GOOD, "a" * 100, "A.b_c-9"):
        fake_run(tmp_path / run_id)
        assert run_folder(tmp_path, run_id) == tmp_path / run_id


def make_runs_dir(root: Path) -> Path:
    fake_run(root / GOOD)
    truncate(fake_run(root / BAD_IMAGE) / "result.png")
    (fake_run(root / BAD_METRICS) / "metrics.json").write_text("[]")
    fake_run(root / PARTIAL)
    return root


def test_scan_runs_lists_readable_runs_and_says_which_folders_it_left_out(tmp_path):
    from ui.service.runs import list_runs, scan_runs

    root = make_runs_dir(tmp_path)
    for name, damage in (("20260105-trunc-metrics", "truncate"), ("20260106-no-metrics", "unlink")):
        getattr(fake_run(root / name) / "metrics.json", damage)() if damage == "unlink" else truncate(
            fake_run(root / name) / "metrics.json"
        )
    (root / "bad name").mkdir()
    (root / "stray.txt").write_text("x")
    listing = scan_runs(root)
    assert [r.id for r in listing.rows] == [BAD_IMAGE, GOOD]
    assert listing.rows[1].metrics.psnr_final == 24.0 and listing.rows[1].source == "cat.png"
    reasons = dict(listing.skipped)
    assert list(reasons) == ["bad name", "20260106-no-metrics", "20260105-trunc-metrics", BAD_METRICS]
    assert reasons[BAD_METRICS] == "metrics.json is not a JSON object (it holds a list)."
    assert reasons["20260106-no-metrics"] == "metrics.json is missing."
    assert reasons["20260105-trunc-metrics"].startswith("metrics.json is truncated")
    assert list_runs(root) == listing.rows


def test_load_view_raises_the_specific_error_and_reports_what_it_tolerated(tmp_path):
    from ui.service.runs import load_view

    root = make_runs_dir(tmp_path)
    with pytest.raises(RunFolderError, match=r"result\.png could not be decoded") as err:
        load_view(root / BAD_IMAGE)
    assert str(tmp_path) not in str(err.value)
    with pytest.raises(RunFolderError, match=r"metrics\.json is not a JSON object"):
        load_view(root / BAD_METRICS)

    good = root / GOOD
    assert load_view(good).info["notes"] == []
    history = good / "history.csv"
    history.write_bytes(history.read_bytes()[:-9])
    (good / "snapshots" / "00002.png").write_bytes(b"not a png")
    v = load_view(good)
    assert [r.iteration for r in v.history[""]] == [1, 2]
    assert [i for i, _ in v.snapshots[""]] == [1]
    assert v.info["notes"] == [
        "history.csv is truncated at line 4 (a row cut off mid-write); that partial row is left out.",
        "1 snapshot image(s) could not be decoded and are left out: snapshots/00002.png.",
    ]


def test_an_impedance_target_name_cannot_lead_out_of_the_folder(tmp_path):
    import json

    from ui.service.runs import load_view

    run = fake_run(tmp_path / "runs" / "imp")
    fake_run(tmp_path / "secret")
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "task": "impedance", "targets": {"../../secret": {}}}))
    with pytest.raises(RunFolderError, match="names a target '../../secret' that is not a folder name"):
        load_view(run)


# The page -----------------------------------------------------------------------------------------------------


@pytest.fixture
def runs(app_env, monkeypatch):
    monkeypatch.setenv("DIP_PUBLIC_RUNS", "1")  # a gallery server: every run may be seen by everyone
    return make_runs_dir(app_env)


def open_runs(run=None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    if run is not None:
        at.query_params["run"] = run
    at.switch_page(PAGES["runs"]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def messages(at) -> list[str]:
    return [text(m.value) for kind in (at.error, at.warning, at.caption, at.info) for m in kind]


SKIPPED = (
    f"1 run folder could not be read and is not listed: {BAD_METRICS} (metrics.json is not a JSON object (it "
    "holds a list))"
)


def test_the_default_view_falls_back_to_the_newest_run_that_opens(runs):
    at = open_runs()
    assert at.dataframe[0].value["run"].tolist() == [BAD_IMAGE, GOOD]  # nothing of the [] folder or temporary
    assert SKIPPED in messages(at), messages(at)
    assert (
        f"Run {BAD_IMAGE} could not be read: result.png could not be decoded (a truncated, corrupt or "
        f"oversized image file). Showing {GOOD}, the newest run that opens."
    ) in [text(w.value) for w in at.warning]
    assert at.selectbox(key="runs.pick").value == GOOD and at.query_params["run"] == GOOD
    assert any(m.label == "PSNR output" for m in at.metric)
    assert not any("Traceback" in m or str(runs) in m for m in messages(at))

    at.selectbox(key="runs.pick").set_value(BAD_IMAGE).run()  # picking the damaged one: its reason, no traceback
    assert not at.exception
    assert [text(e.value) for e in at.error] == [
        f"Run {BAD_IMAGE} could not be read: result.png could not be decoded (a truncated, corrupt or oversized "
        "image file)."
    ]
    assert not at.metric


NOT_FOUND = (
    "There is no saved run you can open named {} (the link may be wrong, the run may have been removed, or "
    "it belongs to another browser: its owner can make a share link)."
)


@pytest.mark.parametrize(
    "run_id,kind,message",
    [
        (
            BAD_METRICS,
            "error",
            f"Run {BAD_METRICS} could not be read: metrics.json is not a JSON object (it holds a list).",
        ),
        (
            BAD_IMAGE,
            "error",
            f"Run {BAD_IMAGE} could not be read: result.png could not be decoded (a truncated, "
            "corrupt or oversized image file).",
        ),
        ("nope", "warning", NOT_FOUND.format("nope")),
        (PARTIAL, "warning", NOT_FOUND.format(PARTIAL)),
        ("../" + GOOD, "warning", NOT_FOUND.format("../" + GOOD)),
    ],
)
def test_a_link_to_a_run_that_does_not_open_says_why_and_shows_no_other_run(runs, run_id, kind, message):
    at = open_runs(run_id)
    assert message in [text(m.value) for m in getattr(at, kind)], messages(at)
    listed = run_id == BAD_IMAGE  # in the table: picked, and its reason shown where the run would be
    assert at.selectbox(key="runs.pick").value == (run_id if listed else None)
    assert not at.metric  # not the newest run in its place
    assert at.query_params["run"] == run_id  # a reload asks again
    assert GOOD in at.dataframe[0].value["run"].tolist()  # the good run is still there to pick
    at.selectbox(key="runs.pick").set_value(GOOD).run()
    assert not at.exception and any(m.label == "PSNR output" for m in at.metric)


def test_a_link_to_a_good_run_opens_it(runs):
    at = open_runs(GOOD)
    assert at.selectbox(key="runs.pick").value == GOOD and not at.error
    assert "Denoising · cat.png · lab-denoise" in [text(h.value) for h in at.subheader]


def test_ids_and_names_from_links_and_folders_render_as_text(runs):
    import json

    evil = "[click](https://evil.example) ![x](https://evil.example/p.png) :red[boom] $x$"
    at = open_runs(evil)
    shown = [w.value for w in at.warning]
    assert [text(w) for w in shown] == [NOT_FOUND.format(evil)]
    assert "](" not in shown[0] and ":red[" not in shown[0] and "\\$" in shown[0]

    metrics = json.loads((runs / GOOD / "metrics.json").read_text())
    (runs / GOOD / "metrics.json").write_text(json.dumps({**metrics, "source": "[a](https://evil.example).png"}))
    at = open_runs(GOOD)
    assert "Denoising · [a](https://evil.example).png · lab-denoise" in [text(h.value) for h in at.subheader]
    assert not any("](" in h.value for h in at.subheader)


def test_a_truncated_history_opens_with_a_warning(runs):
    history = runs / GOOD / "history.csv"
    history.write_bytes(history.read_bytes()[:-9])
    at = open_runs(GOOD)
    assert "history.csv is truncated at line 4 (a row cut off mid-write); that partial row is left out." in [
        text(w.value) for w in at.warning
    ]
    assert any(m.label == "PSNR output" for m in at.metric)


def test_only_damaged_folders_is_not_a_crash(app_env, monkeypatch):
    monkeypatch.setenv("DIP_PUBLIC_RUNS", "1")  # an ownerless folder is listed (and named when damaged) only there
    (fake_run(app_env / BAD_METRICS) / "metrics.json").write_text("[]")
    at = open_runs()
    assert SKIPPED in messages(at) and "No runs yet: start one from an experiment page." in messages(at)


# What tells runs apart -----------------------------------------------------------------------------------------


def settings_run(folder: Path, task: str, config: dict, **metrics) -> Path:
    """A run folder of ``task`` written as the app writes it, with its config.json settings."""
    run = fake_run(folder)
    base = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**base, "task": task, "preset": f"lab-{task}", **metrics}))
    (run / "config.json").write_text(
        json.dumps(
            {
                "task": task,
                "sigma_255": 25.0,
                "factor": 4,
                "mask_kind": "text",
                "keep_fraction": 0.5,
                "fit": {"iterations": 1800},
                **config,
            }
        )
    )
    return run


CREATED = "2026-03-04 17:42:09"


def five_runs(root: Path) -> dict[str, Path]:
    """Runs of one image that differ only in their settings, as a grader makes them."""
    app = {"job_id": "j", "created": CREATED, "source": "astronaut.png", "shape": [256, 192, 3]}
    return {
        "sigma": settings_run(
            root / "20260304-174209-denoise-aaaaaa", "denoise", {"sigma_255": 50.0}, iterations=1800, **app
        ),
        "clean": settings_run(
            root / "20260304-174210-denoise-bbbbbb", "denoise", {"sigma_255": 0.0}, iterations=30, **app
        ),
        "sr": settings_run(root / "20260304-174211-sr-cccccc", "sr", {"factor": 8}, iterations=1800, **app),
        "text": settings_run(
            root / "20260304-174212-inpaint-dddddd",
            "inpaint",
            {},
            iterations=1800,
            mask="text",
            kept_fraction=0.8712,
            **app,
        ),
        "drawn": settings_run(
            root / "20260304-174213-inpaint-eeeeee",
            "inpaint",
            {},
            iterations=1800,
            mask="draw",
            kept_fraction=0.93,
            **app,
        ),
        "blank": settings_run(
            root / "20260304-174214-denoise-ffffff",
            "denoise",
            {},
            source=None,
            image=None,
            psnr_final=None,
            blind=True,
            created=CREATED,
        ),
    }


def test_run_setting_names_only_what_applies_to_the_task():
    from dip.core.records import RunMetrics
    from ui.service.runs import run_setting as setting_of

    def run_setting(metrics: dict, config: dict):  # the record of a metrics.json holding ``metrics``
        return setting_of(RunMetrics.from_dict(metrics), config)

    cfg = {"sigma_255": 25.0, "factor": 8, "mask_kind": "bernoulli", "keep_fraction": 0.3}
    assert run_setting({"task": "denoise"}, cfg) == "σ 25"
    assert run_setting({"task": "denoise"}, {**cfg, "sigma_255": 0.0}) == "no noise (σ 0)"
    assert run_setting({"task": "denoise", "blind": True}, cfg) == "own noise (blind)"
    assert run_setting({"task": "sr"}, cfg) == "×8"
    assert run_setting({"task": "impedance"}, cfg) == "noise σ 25"
    # the command line generated the preset's mask; the app records the one the visitor chose
    assert run_setting({"task": "inpaint"}, cfg) == "random pixels · 30% kept"
    assert (
        run_setting({"task": "inpaint", "job_id": "j", "mask": "upload", "kept_fraction": 0.61}, cfg)
        == "uploaded mask · 61% kept"
    )
    assert run_setting({"task": "inpaint", "job_id": "j"}, cfg) == "mask"  # an old app run: the kind is unknown
    assert run_setting({"task": "denoise"}, {}) is None


def test_an_old_inpainting_run_is_listed_with_the_share_of_pixels_its_mask_kept(tmp_path):
    from dip.core.images import save_image
    from ui.service.runs import scan_runs

    run = settings_run(tmp_path / "20260304-174212-inpaint-dddddd", "inpaint", {}, job_id="j")
    mask = np.ones((10, 10, 1), np.float32)
    mask[:4] = 0
    save_image(mask, run / "mask.png")
    assert scan_runs(tmp_path).rows[0].setting == "mask · 60% kept"


def test_the_runs_table_shows_what_tells_runs_apart(app_env, monkeypatch):
    from datetime import datetime

    from ui.service.runs import when

    monkeypatch.setenv("DIP_PUBLIC_RUNS", "1")
    runs = five_runs(app_env)
    at = open_runs()
    table = at.dataframe[0].value
    assert list(table.columns)[:5] == ["started", "image", "task", "setting", "PSNR (dB)"]  # PSNR stays in view
    rows = {r["run"]: r for r in table.to_dict("records")}
    setting = {k: rows[p.name]["setting"] for k, p in runs.items()}
    assert setting == {
        "sigma": "σ 50",
        "clean": "no noise (σ 0)",
        "sr": "×8",
        "text": "text mask · 87% kept",
        "drawn": "drawn mask · 93% kept",
        "blank": "own noise (blind)",
    }
    started = when(datetime(2026, 3, 4, 17, 42, 9))
    assert rows[runs["text"].name]["started"] == started and started.startswith("17:42 Mar 4")
    assert rows[runs["text"].name]["size"] == "192x256" and rows[runs["text"].name]["PSNR (dB)"] == "24.00"
    assert rows[runs["clean"].name]["iterations"] == "30 of 1800"
    blank = rows[runs["blank"].name]
    assert blank["image"] == "–" and blank["PSNR (dB)"] == "–" and blank["size"] == "–"
    assert not [(r, k) for r in rows.values() for k, v in r.items() if v is None or "None" in str(v) or v == "nan"]

    pick = at.selectbox(key="runs.pick")
    label = {k: pick.format_func(p.name) for k, p in runs.items()}
    assert label["text"] == f"astronaut.png · Inpainting · text mask · 87% kept · {started}"
    assert label["sr"] == f"astronaut.png · Super-resolution · ×8 · {started}"
    assert label["blank"] == f"? · Denoising · own noise (blind) · {started}"
    assert set(label.values()) <= set(pick.options) and len(set(pick.options)) == len(pick.options)
    pick.set_value(runs["drawn"].name).run()
    assert not at.exception and at.query_params["run"] == runs["drawn"].name  # the URL keeps the real id


def test_two_runs_that_read_the_same_get_the_end_of_their_id(app_env, monkeypatch):
    monkeypatch.setenv("DIP_PUBLIC_RUNS", "1")
    app = {"job_id": "j", "created": CREATED, "source": "astronaut.png"}
    a = settings_run(app_env / "20260304-174209-sr-aaaaaa", "sr", {}, **app)
    b = settings_run(app_env / "20260304-174209-sr-bbbbbb", "sr", {}, **app)
    pick = open_runs().selectbox(key="runs.pick")
    assert pick.format_func(a.name).endswith("· aaaaaa") and pick.format_func(b.name).endswith("· bbbbbb")


def test_an_inpainting_run_records_the_mask_the_visitor_chose(app, app_env):
    from apphelpers import make_tiny, open_page, wait_until_finished

    open_page(app, "inpaint")
    app.radio(key="inpaint.mask_kind").set_value("box").run()
    make_tiny(app, "inpaint")
    app.button(key="inpaint.run").click().run()
    assert wait_until_finished(app).startswith("Done")
    run = next(p for p in app_env.iterdir() if not p.name.startswith("."))
    metrics = json.loads((run / "metrics.json").read_text())
    mask = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(run / "mask.png")) > 127
    assert metrics["mask"] == "box" and metrics["kept_fraction"] == pytest.approx(mask.mean(), abs=1e-3)
    open_page(app, "runs")
    row = app.dataframe[0].value.to_dict("records")[0]
    assert row["setting"] == f"box mask · {mask.mean():.0%} kept" and row["task"] == "Inpainting"
