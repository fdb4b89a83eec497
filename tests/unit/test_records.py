"""dip.core.records: metrics.json and a job's outcome as typed records that give back exactly what they read."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from fakes import fake_run

from dip.cli.commands import main
from dip.core.errors import RunFolderError
from dip.core.records import FIELDS, SUMMARY_KEYS, JobOutcome, RunMetrics

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = str(ROOT / "sample_images" / "coffee.png")


def same(record: RunMetrics, data: dict) -> None:
    """``record`` writes ``data`` back: the same keys in the same order, the same values, the same JSON."""
    out = record.to_dict()
    assert out == data and list(out) == list(data)
    assert json.dumps(out) == json.dumps(data)


# What today's writers write --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,task",
    [
        (["denoise", "--sigma", "25"], "denoise"),
        (["denoise", "--observed"], "denoise"),  # blind: PSNRs null
        (["inpaint", "--mask-kind", "box"], "inpaint"),  # the *_known_kept PSNRs
        (["impedance"], "impedance"),  # write_impedance_run: targets, no precision
    ],
)
def test_the_command_lines_metrics_read_back_exactly(tmp_path, args, task):
    out = tmp_path / "run"
    assert main([*args, "--image", SAMPLE, "--max-side", "96", "--iters", "3", "--out", str(out)]) == 0
    data = json.loads((out / "metrics.json").read_text())
    m = RunMetrics.from_dict(data)
    same(m, data)
    assert m.extra == {} and m.invalid == {}  # every key a writer writes is a field
    assert (m.task, m.iterations, m.image, m.source_name) == (task, 3, "coffee.png", "coffee.png")
    assert isinstance(m.shape, tuple) and len(m.shape) == 3 and m.device == "cpu" and m.run_status == "done"
    if task == "impedance":
        assert set(m.targets) == {"image", "image + noise", "shuffled pixels", "noise"} and m.precision is None
        assert "precision" not in m.to_dict()  # absent stays absent
    elif "--observed" in args:
        assert m.psnr_final is None and "psnr_final" in m.to_dict()  # null stays null
    else:
        assert m.psnr_final > m.psnr_observed - 10 and m.es_window == 100 and m.cancelled is False
    if task == "inpaint":
        assert m.psnr_final_known_kept is not None and m.psnr_ema_known_kept is not None


def test_the_apps_metrics_read_back_exactly(tmp_path, image64):
    """The app's runner (summarize + _base_metrics + blind/status) and its error record (_write_error)."""
    import time

    from dip.core.presets import get_preset
    from dip.core.tasks import make_problem
    from ui.service.jobs import JobRegistry
    from ui.service.runners import TaskSpec, run_job

    preset = get_preset("lab", "inpaint").with_overrides(
        fit={"iterations": 3, "snapshot_every": 2}, net={"channels_down": (8,) * 5}, input={"channels": 4}
    )
    registry = JobRegistry(run_job)
    try:
        problem = make_problem(preset, image64, seed=0)
        spec = TaskSpec("inpaint", preset, tmp_path, "cat.png", problem=problem, device="cpu")
        good = registry.submit(spec, task="inpaint", owner="t", total=3, info={"mask": "box"})
        while good.status in ("queued", "running"):
            time.sleep(0.05)
        bad = make_problem(preset, image64, seed=0)
        bad.op = None  # the engine fails inside the fit
        failed = registry.submit(
            TaskSpec("inpaint", preset, tmp_path, "cat.png", problem=bad, device="cpu"),
            task="inpaint",
            owner="t",
            total=3,
        )
        while failed.status in ("queued", "running"):
            time.sleep(0.05)
    finally:
        registry.shutdown()
    v = good.view()
    assert v.status == "done", v.error
    assert isinstance(v.outcome, JobOutcome) and v.run_dir == str(tmp_path / v.id)  # the runner's dict, converted
    data = json.loads((tmp_path / v.id / "metrics.json").read_text())
    same(RunMetrics.from_dict(data), data)
    assert v.metrics == RunMetrics.from_dict(data)  # what the job hands the page is what the folder holds
    m = v.metrics
    assert (m.job_id, m.source, m.mask, m.status, m.blind) == (v.id, "cat.png", "box", "done", False)
    assert 0 < m.kept_fraction < 1 and m.extra == {} and isinstance(m.created, str)
    assert {b["name"] for b in v.outcome.baselines} >= {"biharmonic"} and "result" in v.outcome.images

    error = json.loads((tmp_path / failed.id / "metrics.json").read_text())
    e = RunMetrics.from_dict(error)
    same(e, error)
    assert (e.status, e.run_status, e.task, e.iterations) == ("error", "error", "inpaint", None)
    assert e.error == "internal error (AttributeError)" and "iterations" not in e.to_dict()


def test_a_reproduce_record_keeps_its_own_keys():
    """dip reproduce adds the ES-EMV pick and border-excluded PSNRs (fields) and a marker (kept in extra)."""
    data = {
        "task": "denoise",
        "psnr_final": 30.1,
        "psnr_blind_emv": 29.5,
        "blind_iteration_emv": 1200,
        "es_window": 100,
        "image": "F16_GT.png",
        "emv_side_detector": True,
        "psnr_observed_border_excluded": 20.2,
        "psnr_blind_emv_border_excluded": None,
    }
    m = RunMetrics.from_dict(data)
    same(m, data)
    assert (m.psnr_blind_emv, m.blind_iteration_emv, m.psnr_observed_border_excluded) == (29.5, 1200, 20.2)
    assert m.extra == {"emv_side_detector": True}


def test_a_fake_run_opens_as_typed_records(tmp_path):
    from ui.service.runs import load_view, scan_runs

    folder = fake_run(tmp_path / "20260101-000000-denoise-aaaaaa")
    data = json.loads((folder / "metrics.json").read_text())
    v = load_view(folder)
    same(v.metrics, data)
    assert (v.metrics.psnr_final, v.metrics.best_iteration, v.task, v.status) == (24.0, 2, "denoise", "done")
    assert v.outcome.run_dir == str(folder) and "result" in v.images
    row = scan_runs(tmp_path).rows[0]
    assert row.id == folder.name and row.metrics == v.metrics and row.source == "cat.png"


# Old and damaged folders -----------------------------------------------------------------------------------------


def test_missing_keys_read_as_none():
    m = RunMetrics.from_dict({})
    assert all(getattr(m, name) is None for name in FIELDS) and m.to_dict() == {}
    assert m.run_status == "done" and m.source_name is None
    assert RunMetrics.from_dict({"cancelled": True}).run_status == "cancelled"


def test_a_value_of_the_wrong_type_reads_as_none_and_is_kept():
    data = {
        "task": 5,
        "iterations": "300",
        "best_iteration": True,  # a bool is no count
        "psnr_final": "29.5",
        "seconds": 1.5,
        "cancelled": "no",
        "shape": [64, "x", 3],
        "targets": {"image": 3},
        "blind": 1,
        "created": None,
        "note": {"any": "thing"},
    }
    m = RunMetrics.from_dict(data)
    wrong = ("task", "iterations", "best_iteration", "psnr_final", "cancelled", "shape", "targets", "blind")
    assert all(getattr(m, name) is None for name in wrong) and set(m.invalid) == set(wrong)
    assert m.seconds == 1.5 and m.created is None and m.extra == {"note": {"any": "thing"}}
    same(m, data)  # nothing is lost


def test_numbers_are_kept_as_written():
    data = {"iterations": 300, "seconds": 2, "psnr_observed": math.inf, "psnr_final": np.float64(30.0)}
    m = RunMetrics.from_dict({**data, "parameters": np.int64(7)})
    assert m.seconds == 2 and isinstance(m.seconds, int) and m.psnr_observed == math.inf
    assert m.parameters == 7 and m.psnr_final == 30.0
    assert RunMetrics.from_dict({"iterations": 300.0}).iterations is None  # a count is a whole number


@pytest.mark.parametrize(
    "data,kind", [([], "a list"), ("x", "a string"), (3, "a number"), (None, "null"), (True, "true or false")]
)
def test_something_that_is_not_an_object_is_a_damaged_folder(data, kind):
    with pytest.raises(RunFolderError) as err:
        RunMetrics.from_dict(data, run_id="20260101-x")
    assert err.value.reason == f"metrics.json is not a JSON object (it holds {kind})."
    assert str(err.value).startswith("Run 20260101-x could not be read: ")


# Records made by a writer ----------------------------------------------------------------------------------------


def test_a_constructed_record_writes_what_it_holds():
    m = RunMetrics(task="sr", psnr_final=None, shape=(8, 8, 3), extra={"note": 1})
    assert m.to_dict() == {"task": "sr", "shape": [8, 8, 3], "note": 1}
    full = RunMetrics(task="denoise", psnr_final=None, present=SUMMARY_KEYS)
    assert list(full.to_dict()) == list(SUMMARY_KEYS) and full.to_dict()["psnr_final"] is None
    app = dataclasses.replace(full, job_id="j", status="done")  # later keys follow the summary's
    assert list(app.to_dict())[-2:] == ["status", "job_id"]
    assert RunMetrics(task="x") == RunMetrics.from_dict({"task": "x"})  # equal whatever their key order
    with pytest.raises(ValueError, match="fields"):
        RunMetrics(extra={"task": "x"})


def test_summary_keys_are_what_summarize_writes():
    import inspect

    from dip.core import tasks

    source = inspect.getsource(tasks.summarize)
    assert all(f'"{key}"' in source for key in SUMMARY_KEYS)


# A job's outcome -------------------------------------------------------------------------------------------------


def test_a_runners_dict_becomes_a_job_outcome():
    image = np.zeros((2, 2, 3), np.uint8)
    data = {
        "metrics": {"task": "denoise", "psnr_final": 25.0},
        "cancelled": False,
        "baselines": [{"name": "nlm", "label": "NLM", "psnr": 24.0, "seconds": 0.1, "settings": ""}],
        "images": {"result": image},
        "run_dir": "/runs/x",
    }
    o = JobOutcome.from_dict(data)
    assert o.metrics.psnr_final == 25.0 and o.baselines[0]["name"] == "nlm" and o.images["result"] is image
    assert o.to_dict() == {**data, "images": o.to_dict()["images"]} and o.to_dict()["images"]["result"] is image
    assert JobOutcome.from_dict({"cancelled": True}) == JobOutcome(cancelled=True)
    assert JobOutcome.from_dict({"metrics": {}}).metrics is None  # a run that recorded nothing
    assert JobOutcome.from_dict({"metrics": RunMetrics(task="sr")}).metrics.task == "sr"
    with pytest.raises(RunFolderError):
        JobOutcome.from_dict({"metrics": [1]})
    with pytest.raises(TypeError):
        JobOutcome.from_dict([("metrics", {})])


def test_the_registry_stores_a_job_outcome_whatever_the_runner_returns():
    from ui.service.jobs import as_outcome

    record = JobOutcome(cancelled=True)
    assert as_outcome(record) is record and as_outcome(None) is None
    assert as_outcome({"cancelled": True}) == record
    with pytest.raises(TypeError):
        as_outcome("done")
