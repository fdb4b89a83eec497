"""The real job runner on a tiny problem: progress, the run folder (same layout as the CLI), reading it back."""

from __future__ import annotations

import time

import numpy as np
import pytest
from apphelpers import ROOT

from dip.core.images import load_image
from dip.core.presets import get_preset
from dip.core.tasks import make_problem, prepare_image
from ui.service.jobs import JobRegistry
from ui.service.runners import TaskSpec, run_job
from ui.service.runs import list_runs, load_view


def tiny(task: str):
    return get_preset("lab", task).with_overrides(
        fit={"iterations": 4, "snapshot_every": 2}, net={"channels_down": (8,) * 5}, input={"channels": 4}
    )


def image64(preset):
    return prepare_image(load_image(ROOT / "sample_images" / "astronaut.png"), preset, max_side=64)


@pytest.fixture
def registry():
    reg = JobRegistry(run_job)
    yield reg
    reg.shutdown()


def finish(job, timeout=120):
    deadline = time.monotonic() + timeout
    while job.status in ("queued", "running"):
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.05)
    return job.view()


@pytest.mark.parametrize("task", ["denoise", "sr", "inpaint"])
def test_task_run_writes_the_run_folder_and_reads_back(registry, tmp_path, task):
    preset = tiny(task)
    problem = make_problem(preset, image64(preset), seed=0)
    spec = TaskSpec(task, preset, tmp_path, "chelsea.png", problem=problem, device="cpu")
    v = finish(registry.submit(spec, task=task, owner="t", total=spec.total))
    assert v.status == "done", v.error
    folder = tmp_path / v.id
    for name in (
        "result.png",
        "result_ema.png",
        "observed.png",
        "ground_truth.png",
        "history.csv",
        "metrics.json",
        "config.json",
        "snapshots/00002.png",
        "snapshots/00004.png",
    ):
        assert (folder / name).is_file(), name
    assert [i for i, _ in v.snapshots[""]] == [2, 4] and len(v.history[""]) == 4
    disk = load_view(folder)
    assert disk.status == "done" and len(disk.history[""]) == 4 and [i for i, _ in disk.snapshots[""]] == [2, 4]
    assert disk.metrics.psnr_final == pytest.approx(v.metrics.psnr_final)
    names = {"denoise": {"nlm", "tv"}, "sr": {"nearest", "bicubic", "lanczos"}, "inpaint": {"biharmonic"}}[task]
    assert names <= {b["name"] for b in disk.outcome.baselines}  # classical methods, via dip.core.runio
    assert all(b["psnr"] > 5 for b in disk.outcome.baselines) and names <= set(disk.outcome.images)
    assert list_runs(tmp_path)[0].id == v.id
    holes_filled = folder / "result_known_kept.png"  # inpainting keeps the user's pixels in one download
    assert holes_filled.is_file() == (task == "inpaint") and ("result_known_kept" in disk.outcome.images) == (
        task == "inpaint"
    )
    if task == "inpaint":
        known = problem.mask == 1
        kept, observed = load_image(holes_filled), load_image(folder / "observed.png")
        assert np.array_equal(kept[known], observed[known])
        assert not np.array_equal(kept[~known], observed[~known])  # the holes are filled, not left black


def test_impedance_run_writes_one_folder_per_target(registry, tmp_path):
    preset = tiny("impedance").with_overrides(net={"channels_down": (4, 4, 4, 8, 8)})
    spec = TaskSpec("impedance", preset, tmp_path, "chelsea.png", image=image64(preset), device="cpu")
    v = finish(registry.submit(spec, task="impedance", owner="t", total=spec.total))
    assert v.status == "done", v.error
    assert v.iteration == 16 and list(v.history) == ["image", "image + noise", "shuffled pixels", "noise"]
    folder = tmp_path / v.id
    assert (folder / "shuffled_pixels" / "snapshots" / "00004.png").is_file()
    disk = load_view(folder)
    assert list(disk.history) == list(v.history) and len(disk.snapshots["noise"]) == 2


def test_cancelled_run_keeps_its_partial_result(registry, tmp_path):
    preset = tiny("denoise").with_overrides(fit={"iterations": 10**6})
    problem = make_problem(preset, image64(preset), seed=0)
    spec = TaskSpec("denoise", preset, tmp_path, "x", problem=problem, device="cpu")
    job = registry.submit(spec, task="denoise", owner="t", total=spec.total)
    while job.iteration < 3:
        time.sleep(0.02)
    registry.cancel(job.id)
    v = finish(job)
    assert v.status == "cancelled"
    assert load_view(tmp_path / v.id).status == "cancelled"


def test_a_failing_run_leaves_an_error_record(registry, tmp_path):
    preset = tiny("denoise")
    bad = make_problem(preset, image64(preset), seed=0)
    bad.op = None  # the worker hits an AttributeError inside the engine
    spec = TaskSpec("denoise", preset, tmp_path, "x", problem=bad, device="cpu")
    v = finish(registry.submit(spec, task="denoise", owner="t", total=spec.total))
    assert v.status == "error" and v.error
    assert list_runs(tmp_path)[0].metrics.status == "error"


def test_the_worker_uses_every_cpu_unless_told(monkeypatch):
    import torch

    from dip.core.device import available_cpus
    from ui.service.runners import configure_torch

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("DIP_THREADS", raising=False)
        torch.set_num_threads(1)
        configure_torch()
        assert torch.get_num_threads() == available_cpus()
        monkeypatch.setenv("DIP_THREADS", "1")
        configure_torch()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


class ServerDied(BaseException):
    """Stands for the process being killed: nothing in the runner catches it, as nothing runs after a kill -9."""


def test_a_job_cut_off_by_the_servers_death_resumes_from_its_checkpoint(tmp_path):
    from ui.service.jobs import Job
    from ui.service.runners import pending_folder, persist, recover

    preset = tiny("denoise").with_overrides(fit={"iterations": 8, "snapshot_every": 2})
    problem = make_problem(preset, image64(preset), seed=0)
    reference = JobRegistry(run_job)
    try:
        whole = finish(
            reference.submit(
                TaskSpec("denoise", preset, tmp_path / "ref", "x.png", problem=problem, device="cpu"),
                task="denoise",
                owner="t",
                total=8,
            )
        )
    finally:
        reference.shutdown()

    spec = TaskSpec("denoise", preset, tmp_path, "my photo.png", problem=problem, device="cpu", checkpoint_every=3)
    job = Job("20261201-120000-denoise-abcdef", "denoise", spec, owner="alice", total=8, info={"source": "x"})
    persist(job)  # what the registry does as it accepts a job
    step = job.add_step

    def dies_after_seven(record, series=""):
        step(record, series)
        if job.iteration == 7:
            raise ServerDied

    job.add_step = dies_after_seven
    with pytest.raises(ServerDied):
        run_job(job)
    pending = pending_folder(tmp_path, job.id)
    assert (pending / "checkpoint.pt").is_file() and not (tmp_path / job.id).exists()  # no half-written run

    registry = JobRegistry(run_job)  # the next server process
    try:
        assert recover(registry, tmp_path) == [job.id]
        v = finish(registry.get(job.id))
    finally:
        registry.shutdown()
    assert (v.status, v.owner, v.resumed) == ("done", "alice", True)
    assert [r.iteration for r in v.history[""]] == list(range(1, 9))  # one row per iteration, none twice
    assert [i for i, _ in v.snapshots[""]] == [2, 4, 6, 8]
    assert v.metrics.psnr_final == pytest.approx(whole.metrics.psnr_final, abs=1e-6)
    assert v.metrics.resumed_after_restart is True
    assert not pending.exists() and (tmp_path / job.id / "metrics.json").is_file()
    assert '"owner": "alice"' in (tmp_path / job.id / "access.json").read_text()


def test_recovery_skips_a_damaged_pending_job_and_resumes_the_others(tmp_path, caplog):
    from ui.service.jobs import Job
    from ui.service.runners import INCOMPLETE, persist, recover

    broken = tmp_path / INCOMPLETE / "20261201-110000-denoise-000000"
    broken.mkdir(parents=True)
    (broken / "job.json").write_text('{"task": "denoise", "pres')
    preset = tiny("denoise")
    spec = TaskSpec("denoise", preset, tmp_path, "x.png", problem=make_problem(preset, image64(preset)), device="cpu")
    persist(Job("20261201-120000-denoise-abcdef", "denoise", spec, owner="bob", total=4))
    registry = JobRegistry(run_job)
    try:
        assert recover(registry, tmp_path) == ["20261201-120000-denoise-abcdef"]
        assert finish(registry.get("20261201-120000-denoise-abcdef")).status == "done"
    finally:
        registry.shutdown()
    assert "not resuming 20261201-110000-denoise-000000" in caplog.text


def test_a_quick_networks_speed_is_not_taken_from_one_busy_moment(monkeypatch):
    """One iteration stalled by another program on the same cores (a browser drawing a page) must not set the
    estimate of a network whose iterations take milliseconds: it made one page's estimate 10x too long."""
    from ui.service import runners

    real_fit = runners.fit

    def fit_with_a_stall(*args, on_step, **kwargs):
        steps = []

        def step(record):
            steps.append(record)
            if len(steps) == 2:  # the machine busy elsewhere for a moment
                time.sleep(0.3)
            on_step(record)

        return real_fit(*args, on_step=step, **kwargs)

    monkeypatch.setattr(runners, "fit", fit_with_a_stall)
    timing = runners.measure_iteration(get_preset("quick-impedance"), 64, 64, 3)
    assert timing.per_iteration < 0.1, timing  # the stall alone would make the mean of two iterations >= 0.15 s
