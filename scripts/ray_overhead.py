"""What the Ray backend costs per job on this machine: submit -> first iteration seen by the app, and the fit's
seconds per iteration in process and as a Ray task (the difference is the streaming of records), for a small
denoising job (64 px, 8 channels, float32, one thread on both sides).

Usage: .venv/bin/python scripts/ray_overhead.py [--iterations 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import ray
import torch

from dip.core.images import load_image
from dip.core.presets import get_preset
from dip.core.tasks import make_problem, prepare_image
from ui.service.backend import make_registry
from ui.service.jobs import JobRegistry
from ui.service.runners import TaskSpec, run_job

ROOT = Path(__file__).resolve().parents[1]


def spec(runs: Path, iterations: int) -> TaskSpec:
    preset = get_preset("lab", "denoise").with_overrides(
        fit={"iterations": iterations, "snapshot_every": 25, "precision": "fp32"},
        net={"channels_down": (8,) * 5},
        input={"channels": 4},
    )
    image = prepare_image(load_image(ROOT / "sample_images" / "astronaut.png"), preset, max_side=64)
    return TaskSpec("denoise", preset, runs, "astronaut.png", problem=make_problem(preset, image, seed=0), device="cpu")


def one(registry, runs: Path, iterations: int, owner: str) -> tuple[float, float, float]:
    """(submit -> first iteration seen, submit -> done, fit seconds per iteration from metrics.json)."""
    s = spec(runs, iterations)
    t0 = time.perf_counter()
    job = registry.submit(s, task="denoise", owner=owner, total=s.total)
    while job.iteration < 1:
        time.sleep(0.001)
    first = time.perf_counter() - t0
    while job.status in ("queued", "running"):
        time.sleep(0.005)
    total = time.perf_counter() - t0
    assert job.status == "done", job.error
    return first, total, job.view().metrics.seconds / iterations


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    runs = Path(tempfile.mkdtemp(prefix="dip-ray-overhead-"))
    rows = {}
    local = JobRegistry(run_job)
    rows["in process"] = [one(local, runs, args.iterations, f"l{i}") for i in range(args.repeats)]
    local.shutdown()
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    print(f"ray.init (local, 2 CPUs): {time.perf_counter() - t0:.2f} s")
    os.environ["DIP_RAY_CPUS"] = "1"
    registry = make_registry(run_job, address="auto")
    while registry.backend.state == "connecting":
        time.sleep(0.01)
    print(f"backend ready after {time.perf_counter() - t0:.2f} s from ray.init")
    rows["ray"] = [one(registry, runs, args.iterations, f"r{i}") for i in range(args.repeats)]
    registry.shutdown()
    # One batch as a worker sends it every FLUSH_SECONDS: 8 steps and a 64 px snapshot preview, round trip.
    from dip.core.fit import StepRecord
    from ui.service.ray_backend import _Hub

    hub, batch = _Hub.remote(), [("step", "", StepRecord(i, 0.01, 20.0, 21.0, 22.0)) for i in range(8)]
    batch.append(("snapshot", "", (8, torch.zeros(64, 64, 3, dtype=torch.uint8).numpy())))
    ray.get(hub.push.remote("x", batch))
    t0 = time.perf_counter()
    for _ in range(200):
        ray.get(hub.push.remote("x", batch))
        ray.get(hub.drain.remote("x"))
    per_batch = (time.perf_counter() - t0) / 200 * 1000
    print(f"one batch (8 steps + a snapshot): push + drain round trips {per_batch:.2f} ms")
    print(f"{'backend':<11} {'submit->1st it (s), each run':<34} {'fit s/it (median)':>18} {'submit->done':>22}")
    for name, r in rows.items():
        firsts = ", ".join(f"{f:.3f}" for f, _, _ in r)
        print(
            f"{name:<11} {firsts:<34} {statistics.median(x[2] for x in r) * 1000:15.2f} ms"
            f" {statistics.median(x[1] for x in r):20.2f} s"
        )
    ms = [(statistics.median(x[2] for x in rows["ray"]) - statistics.median(x[2] for x in rows["in process"])) * 1000]
    print(f"streaming cost per iteration (ray - in process): {ms[0]:+.2f} ms")
    ray.shutdown()


if __name__ == "__main__":
    main()
