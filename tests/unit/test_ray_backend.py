"""Jobs through the Ray backend (``ui.service.ray_backend``) on a local Ray started here, against the in-process
worker: same results, cancel, a killed worker resuming from its checkpoint, a wrong address; and ``reproduce --ray``.

Ray's start costs seconds on 2 cores, so one local instance serves the whole module and the jobs are tiny.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import torch  # noqa: E402

from dip.core.images import load_image  # noqa: E402
from dip.core.presets import get_preset  # noqa: E402
from dip.core.tasks import make_problem, prepare_image  # noqa: E402
from ui.service.backend import make_registry  # noqa: E402
from ui.service.jobs import JobRefused, JobRegistry  # noqa: E402
from ui.service.runners import TaskSpec, run_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def tiny(iterations: int, seed: int = 0):
    return get_preset("lab", "denoise").with_overrides(
        fit={"iterations": iterations, "snapshot_every": 5, "precision": "fp32", "seed": seed},
        net={"channels_down": (8,) * 5},
        input={"channels": 4},
    )


def spec(runs: Path, iterations: int, *, seed: int = 0, checkpoint_every: int = 25) -> TaskSpec:
    runs.mkdir(parents=True, exist_ok=True)  # the app's runs folder exists (every node must see it)
    preset = tiny(iterations, seed)
    image = prepare_image(load_image(ROOT / "sample_images" / "astronaut.png"), preset, max_side=64)
    problem = make_problem(preset, image, seed=seed)
    return TaskSpec(
        "denoise", preset, runs, "astronaut.png", problem=problem, device="cpu", checkpoint_every=checkpoint_every
    )


def finish(job, timeout=180):
    deadline = time.monotonic() + timeout
    while job.status in ("queued", "running"):
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.02)
    return job.view()


def wait(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_wrong_address_refuses_jobs_with_a_clear_message(tmp_path):
    started = time.monotonic()
    registry = make_registry(run_job, address="127.0.0.1:1")
    assert time.monotonic() - started < 1.0  # the app never waits for the cluster
    try:
        wait(lambda: registry.backend.state != "connecting", timeout=15)
        assert registry.backend.state == "unavailable"
        with pytest.raises(JobRefused, match=r"Ray cluster at 127\.0\.0\.1:1 cannot be reached .*new jobs are refused"):
            s = spec(tmp_path, 2)
            registry.submit(s, task="denoise", owner="a", total=s.total)
    finally:
        registry.shutdown()


def test_reproduce_with_a_wrong_address_says_so_in_seconds(tmp_path):
    from dip.core.errors import ConfigError
    from dip.lab.distributed import run_on_ray

    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"Ray cluster at 127\.0\.0\.1:1 cannot be reached"):
        run_on_ray([], {}, tmp_path, None, address="127.0.0.1:1")
    assert time.monotonic() - started < 10


@pytest.fixture(scope="module")
def local_ray():
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def ray_registry(local_ray, monkeypatch):
    monkeypatch.setenv("DIP_RAY_CPUS", "1")  # two places on the 2-CPU local Ray
    registry = make_registry(run_job, address="auto", max_per_owner=1)
    yield registry
    registry.shutdown()
    registry.backend.close()


def test_two_jobs_finish_as_in_process(ray_registry, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the Ray worker (one CPU): float32 sums in the same order
    try:
        local = JobRegistry(run_job)
        expected = [
            finish(local.submit(spec(tmp_path / "local", 6, seed=s), task="denoise", owner=f"{s}", total=6))
            for s in (0, 1)
        ]
        local.shutdown()
    finally:
        torch.set_num_threads(before)
    jobs = [
        ray_registry.submit(spec(tmp_path / "ray", 6, seed=s), task="denoise", owner=f"{s}", total=6) for s in (0, 1)
    ]
    got = [finish(j) for j in jobs]
    assert ray_registry.backend.places == 2
    for e, g in zip(expected, got):
        assert g.status == "done", g.error
        assert g.metrics.psnr_final == e.metrics.psnr_final and g.metrics.psnr_ema == e.metrics.psnr_ema
        assert g.history[""] == e.history[""] and len(g.history[""]) == 6  # every StepRecord, bit for bit
        assert [i for i, _ in g.snapshots[""]] == [5, 6]
        folder = Path(g.run_dir)
        assert folder.parent == tmp_path / "ray" and (folder / "metrics.json").is_file()
        assert len((folder / "history.csv").read_text().splitlines()) == 7


def test_cancel_stops_a_ray_job_within_a_few_iterations(ray_registry, tmp_path):
    s = spec(tmp_path, 10**6)
    job = ray_registry.submit(s, task="denoise", owner="a", total=s.total)
    wait(lambda: job.iteration >= 3)
    at, asked = job.iteration, time.monotonic()
    assert ray_registry.cancel(job.id, owner="b") is False  # only the owner
    assert ray_registry.cancel(job.id, owner="a")
    v = finish(job)
    assert v.status == "cancelled"
    lag = time.monotonic() - asked
    print(f"cancel: {lag:.2f} s, {v.iteration - at} iterations after the request")
    assert lag < 2.0
    assert json.loads((Path(v.run_dir) / "metrics.json").read_text())["status"] == "cancelled"


def test_a_killed_worker_resumes_from_its_checkpoint(ray_registry, tmp_path):
    s = spec(tmp_path, 120, checkpoint_every=10)
    job = ray_registry.submit(s, task="denoise", owner="a", total=s.total)
    backend = ray_registry.backend
    wait(lambda: job.iteration >= 25 and job.id in backend.where)
    os.kill(backend.where[job.id]["pid"], signal.SIGKILL)
    wait(lambda: backend.restarts.get(job.id) == 1)
    v = finish(job)
    assert v.status == "done", v.error
    assert [r.iteration for r in v.history[""]] == list(range(1, 121))  # one row per iteration
    metrics = json.loads((Path(v.run_dir) / "metrics.json").read_text())
    assert metrics["resumed_after_restart"] is True
    assert len((Path(v.run_dir) / "history.csv").read_text().splitlines()) == 121


def test_reproduce_on_ray_writes_the_same_results(local_ray, tmp_path, monkeypatch, capsys):
    from PIL import Image

    from dip.cli.commands import main
    from dip.lab import reproduce

    def shrink(preset):  # defined here, so that Ray ships it to the workers by value
        return preset.with_overrides(
            net={"channels_down": (8, 16, 16), "channels_up": None, "channels_skip": 4}, input={"channels": 4}
        )

    monkeypatch.setattr(reproduce, "adjust_preset", shrink)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("F16_GT.png", "zebra_GT.png"):
        Image.open(ROOT / "sample_images" / "astronaut.png").convert("RGB").resize((64, 64)).save(images / name)
    argv = ["reproduce", "--images", str(images), "--only", "denoise,sr", "--iters-scale", "0.005"]
    argv += ["--max-side", "64", "--precision", "fp32", "--device", "cpu", "--checkpoint-every", "0"]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray task (--ray-cpus 1)
    try:
        assert main([*argv, "--out", str(tmp_path / "seq")]) == 0
    finally:
        torch.set_num_threads(before)
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray", "--ray-cpus", "1"]) == 0
    assert "submitted 2 case(s) to Ray" in capsys.readouterr().out

    def numbers(out):
        cases = json.loads((tmp_path / out / "results.json").read_text())["cases"]
        return [{k: v for k, v in c.items() if k not in ("seconds", "baseline_seconds", "date")} for c in cases]

    seq, on_ray = numbers("seq"), numbers("ray")
    assert [c["preset_name"] for c in on_ray] == ["lab-denoise", "lab-sr"]
    assert on_ray == seq  # every PSNR, iteration and baseline, in the same order
    for case in ("lab-denoise-F16_GT", "lab-sr-zebra_GT"):
        assert (tmp_path / "ray" / "runs" / case / "history.csv").read_text() == (
            tmp_path / "seq" / "runs" / case / "history.csv"
        ).read_text()
        assert (tmp_path / "ray" / "figures" / f"{case}_curves.png").is_file()
