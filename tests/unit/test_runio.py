"""Run folders: a damaged one raises RunFolderError naming the file and the damage (never a server path);
atomic_folder writes a folder whole or not at all; the command line writes through it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import fake_run

from dip.core.errors import DIPError, RunFolderError
from dip.core.runio import atomic_folder, holds_only_run_output, read_baselines, read_history, read_run, write_baselines


@pytest.fixture
def run(tmp_path) -> Path:
    return fake_run(tmp_path / "20260101-120000-denoise-abc123")


def _error(folder: Path) -> RunFolderError:
    with pytest.raises(RunFolderError) as info:
        read_run(folder)
    err = info.value
    assert isinstance(err, DIPError)  # the UI shows DIPError messages as they are
    assert str(folder.parent) not in str(err) and err.run_id == folder.name
    assert str(err) == f"Run {folder.name} could not be read: {err.reason}"
    return err


def test_a_complete_run_reads_back(run):
    data = read_run(run)
    assert data["metrics"]["psnr_final"] == 24.0 and data["config"] == {"task": "denoise"}
    assert [r["iteration"] for r in data["history"]] == [1, 2, 3] and data["notes"] == []
    assert {"result", "result_ema", "observed", "ground_truth", "best"} <= set(data["images"])
    assert len(data["snapshots"]) == 2


def test_extra_files_are_not_errors(run):
    (run / "access.json").write_text('{"owner": "x"}')
    (run / "notes.txt").write_text("anything")
    assert read_run(run)["metrics"]["task"] == "denoise"


def test_truncated_metrics_json(run):
    text = (run / "metrics.json").read_text()
    (run / "metrics.json").write_text(text[: len(text) // 2])
    err = _error(run)
    assert err.reason.startswith("metrics.json ") and "truncated" in err.reason, err.reason


@pytest.mark.parametrize(
    "content,kind", [("[]", "a list"), ('"done"', "a string"), ("42", "a number"), ("null", "null")]
)
def test_metrics_json_that_is_not_an_object(run, content, kind):
    (run / "metrics.json").write_text(content)
    assert _error(run).reason == f"metrics.json is not a JSON object (it holds {kind})."


@pytest.mark.parametrize(
    "content,reason",
    [
        ("", "metrics.json is empty."),
        ("\xff\xfe", None),
        ('{"task": "denoise"} trailing', "metrics.json is not valid JSON"),
        ('{"psnr_final": "24 dB"}', "metrics.json: psnr_final is '24 dB', not a number."),
        ('{"task": 3}', "metrics.json: task is 3, not a string."),
        ('{"targets": ["image"]}', "metrics.json: targets is ['image'], not an object of objects."),
    ],
)
def test_other_damaged_metrics(run, content, reason):
    (run / "metrics.json").write_bytes(content.encode("latin-1"))
    err = _error(run)
    assert err.reason.startswith(reason or "metrics.json is not UTF-8 text"), err.reason


def test_missing_metrics_json(run):
    (run / "metrics.json").unlink()
    assert _error(run).reason == "metrics.json is missing."


def test_missing_folder(tmp_path):
    assert _error(tmp_path / "gone").reason == "there is no such run folder."


def test_config_json_is_optional_but_must_be_an_object(run):
    (run / "config.json").unlink()
    assert read_run(run)["config"] == {}
    (run / "config.json").write_text('"lab"')
    assert _error(run).reason == "config.json is not a JSON object (it holds a string)."


def test_a_history_cut_off_mid_row_keeps_the_complete_rows_and_says_so(run):
    text = (run / "history.csv").read_bytes()
    (run / "history.csv").write_bytes(text[:-9])  # the last row loses its end
    data = read_run(run)
    assert [r["iteration"] for r in data["history"]] == [1, 2]
    assert data["notes"] == [
        "history.csv is truncated at line 4 (a row cut off mid-write); that partial row is left out."
    ]
    assert [r["iteration"] for r in read_history(run / "history.csv")] == [1, 2]


def test_a_history_cut_off_in_a_number_of_the_last_row_is_also_caught(run):
    text = (run / "history.csv").read_text()
    (run / "history.csv").write_text(text.rstrip("\r\n")[:-2])  # "False" -> "Fal": every other cell is whole
    assert len(read_run(run)["history"]) == 2


def test_a_history_cut_off_exactly_at_a_line_end_loses_nothing(run):
    lines = (run / "history.csv").read_bytes().splitlines(keepends=True)
    (run / "history.csv").write_bytes(b"".join(lines[:3]))
    data = read_run(run)
    assert [r["iteration"] for r in data["history"]] == [1, 2] and data["notes"] == []


def test_a_history_cut_off_in_its_header_has_no_rows(run):
    (run / "history.csv").write_text("iteration,lo")
    data = read_run(run)
    assert data["history"] == [] and "cut off in its header" in data["notes"][0]


def test_a_damaged_row_before_the_last_is_an_error(run):
    lines = (run / "history.csv").read_text().splitlines()
    lines[2] = lines[2][:1]
    (run / "history.csv").write_text("\n".join(lines) + "\n")
    assert _error(run).reason.startswith("history.csv is corrupt at line 3: it has 1 cells where the header has")
    lines = (run / "history.csv").read_text().splitlines()
    lines[2] = "2,abc,1,2,3,False"
    (run / "history.csv").write_text("\n".join(lines) + "\n")
    assert _error(run).reason == "history.csv is corrupt at line 3: column loss holds 'abc', not a number."


def test_a_history_with_a_nul_byte_or_no_header(run):
    (run / "history.csv").write_bytes(b"iteration,loss\n1,0.5\n2,\x000.4\n")
    assert _error(run).reason.startswith("history.csv is corrupt at line 3")
    (run / "history.csv").write_text("1,0.5\n2,0.4\n")
    assert _error(run).reason.startswith("history.csv has no iteration column")


@pytest.mark.parametrize("name", ["result.png", "ground_truth.png"])
def test_a_truncated_image(run, name):
    data = (run / name).read_bytes()
    (run / name).write_bytes(data[: len(data) // 2])
    err = _error(run)
    assert err.reason == f"{name} could not be decoded (a truncated, corrupt or oversized image file)."


def test_an_image_that_is_not_an_image(run):
    (run / "result.png").write_text("not a png")
    assert _error(run).reason.startswith("result.png could not be decoded")


def test_baselines_json_damage_is_specific(run):
    write_baselines(run, [{"name": "bicubic", "psnr": 23.1}])
    assert read_baselines(run) == [{"name": "bicubic", "psnr": 23.1}]
    (run / "baselines.json").write_text('{"version": 1, "baselines": {"name": "x"}}')
    assert _error(run).reason == "baselines.json: baselines is not a list of records with a name."
    for image in ("../../secret.png", "/etc/x.png", "baselines/../../x.png", "other/x.png"):
        (run / "baselines.json").write_text(json.dumps({"baselines": [{"name": "nlm", "image": image}]}))
        assert _error(run).reason == "baselines.json: the image of 'nlm' is not in baselines/.", image
    (run / "baselines.json").write_text('{"baselines": [')
    assert _error(run).reason.startswith("baselines.json ")


# atomic_folder ------------------------------------------------------------------------------------------------


def test_atomic_folder_appears_only_when_complete(tmp_path):
    final = tmp_path / "runs" / "r1"
    with atomic_folder(final) as tmp:
        assert tmp.parent == final.parent and tmp.name.startswith(".r1.partial-") and tmp.is_dir()
        assert not final.exists()  # nothing under the final name while it is written
        (tmp / "metrics.json").write_text("{}")
    assert (final / "metrics.json").read_text() == "{}"
    assert [p.name for p in final.parent.iterdir()] == ["r1"]  # no temporary left


def test_atomic_folder_leaves_nothing_when_the_writer_fails(tmp_path):
    final = tmp_path / "r1"
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_folder(final) as tmp:
            (tmp / "result.png").write_bytes(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_atomic_folder_replaces_an_existing_folder_whole(tmp_path):
    final = fake_run(tmp_path / "r1")
    (final / "snapshots" / "00099.png").write_bytes(b"stale")
    with atomic_folder(final) as tmp:
        fake_run(tmp)
    assert sorted(p.name for p in (final / "snapshots").iterdir()) == ["00001.png", "00002.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["r1"]
    assert read_run(final)["metrics"]["task"] == "denoise"


def test_atomic_folder_keeps_the_existing_folder_when_the_writer_fails(tmp_path):
    final = fake_run(tmp_path / "r1")
    before = sorted(p.name for p in final.rglob("*"))
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(final):
            raise KeyboardInterrupt
    assert sorted(p.name for p in final.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["r1"]


def test_holds_only_run_output(tmp_path):
    assert holds_only_run_output(tmp_path / "new")
    run = fake_run(tmp_path / "r1")
    (run / "checkpoint.pt").write_bytes(b"x")
    assert holds_only_run_output(run)
    (run / "image").mkdir()
    assert not holds_only_run_output(run) and holds_only_run_output(run, also=["image"])
    (run / "my_photo.png").write_bytes(b"x")
    assert not holds_only_run_output(run, also=["image"])


def test_the_command_line_replaces_its_own_earlier_run_but_not_a_folder_holding_other_files(tmp_path):
    from dip.cli.commands import main

    sample = str(Path(__file__).resolve().parents[2] / "sample_images" / "coffee.png")
    args = ["denoise", "--image", sample, "--max-side", "96", "--iters", "2", "--snapshot-every", "1"]
    out = fake_run(tmp_path / "out")
    (out / "snapshots" / "00099.png").write_bytes(b"stale")  # from an earlier run with other settings
    assert main(args + ["--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["00001.png", "00002.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(args + ["--out", str(mine)]) == 0
    assert (mine / "notes.txt").read_text() == "keep me" and (mine / "metrics.json").is_file()
