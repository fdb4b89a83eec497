"""App settings read from the environment once per call (tests may change them with monkeypatch.setenv).

DIP_RUNS_DIR     where finished runs are written (default: ``runs/`` in the repository root)
DIP_MAX_SIDE     default working size, longest side in px (default 256); every page lets the user change it
DIP_MAX_PIXELS   largest upload accepted before the app offers to downscale it (default: dip.core.images.MAX_PIXELS)
DIP_MAX_QUEUE    most jobs queued or running at once, all users together (default 5)
DIP_DEVICE       "auto" (default), "cuda", "mps" or "cpu"
DIP_POLL_SECONDS how often a page refreshes a running job (default 1.0)
DIP_CPU_BUDGET_MIN  on a CPU, offer a smaller working size when a run would take longer (default 5 minutes)

A public server (one share link, many graders): who sees what, and the hard limits every job is checked against
when it is queued (defaults from ``dip.core.limits.Limits.for_device``: a 2-core CPU / one GPU).
DIP_PUBLIC_RUNS        1: a classroom gallery, every run is listed for everyone (default 0: a visitor sees their
                       own runs, runs of the bundled sample images, and runs shared with them by link)
DIP_MAX_JOBS_PER_OWNER jobs one browser may have queued or running (default 1)
DIP_MAX_TFLOP          compute budget of one job in TFLOP (CPU 400: lab denoising at 256 px is 207; GPU 10000)
DIP_MAX_WORKING_SIDE   largest working size, px (CPU 512, GPU 1024)
DIP_MAX_CHANNELS       widest network layer (CPU 256, GPU 512)
DIP_MAX_SNAPSHOTS      snapshots stored per fit (CPU 200, GPU 400)
DIP_MAX_JOB_MINUTES    wall-clock limit of one job; it is stopped there and its result saved (CPU 180, GPU 60)
DIP_CHECKPOINT_EVERY   iterations between a job's checkpoints, what a restarted server resumes from (default 25)
DIP_RUNS_MAX_AGE_DAYS  finished runs older than this are deleted, oldest first (default 14)
DIP_RUNS_MAX_MB        the runs folder is kept under this size, oldest runs deleted first (default 2048)

Scaling out (README "Scaling out"; unset: jobs run in this process, one at a time):
DIP_RAY_ADDRESS  run each job as a Ray task on this cluster: ``auto`` (the one started on this machine) or
                 HOST:PORT of its head node
DIP_RAY_CPUS     CPUs one job asks for on a cluster without GPUs (default 2); with GPUs each job asks for one
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from dip.core.images import MAX_PIXELS as ENGINE_MAX_PIXELS
from dip.core.limits import Limits

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_DIR = ROOT / "sample_images"
UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"]
UPLOAD_MB = 50
WORKING_SIZES = (64, 96, 128, 160, 192, 256, 320, 384, 512, 768, 1024)
MAX_SNAPSHOTS = 60  # kept in memory per job (and per impedance target); all are written to disk
SNAPSHOT_SIDE = 256  # longest side of the in-memory snapshot previews
DOWNSCALE_TO = 2048  # an over-large upload is offered a downscale to this longest side


def _env(name: str, default):
    value = os.environ.get(name)
    return type(default)(value) if value not in (None, "") else default


def runs_dir() -> Path:
    return Path(_env("DIP_RUNS_DIR", str(ROOT / "runs")))


def default_max_side() -> int:
    return _env("DIP_MAX_SIDE", 256)


def max_pixels() -> int:
    return _env("DIP_MAX_PIXELS", ENGINE_MAX_PIXELS)


def max_queue() -> int:
    return _env("DIP_MAX_QUEUE", 5)


def device_name() -> str:
    return _env("DIP_DEVICE", "auto")


def poll_seconds() -> float:
    return _env("DIP_POLL_SECONDS", 1.0)


def cpu_budget_minutes() -> float:
    return _env("DIP_CPU_BUDGET_MIN", 5.0)


def public_runs() -> bool:
    return _env("DIP_PUBLIC_RUNS", "0").strip().lower() in ("1", "true", "yes", "on")


def max_jobs_per_owner() -> int:
    return _env("DIP_MAX_JOBS_PER_OWNER", 1)


def limits(device_type: str) -> Limits:
    """The hard limits of one job on this device ("cpu", "cuda", "mps"), each overridable by its variable."""
    base = Limits.for_device(device_type)
    return Limits(
        max_tflop=_env("DIP_MAX_TFLOP", base.max_tflop),
        max_side=_env("DIP_MAX_WORKING_SIDE", base.max_side),
        max_channels=_env("DIP_MAX_CHANNELS", base.max_channels),
        max_snapshots=_env("DIP_MAX_SNAPSHOTS", base.max_snapshots),
        max_minutes=_env("DIP_MAX_JOB_MINUTES", base.max_minutes),
    )


def checkpoint_every() -> int:
    return max(1, _env("DIP_CHECKPOINT_EVERY", 25))


def ray_address() -> str:
    """The Ray cluster jobs run on (``DIP_RAY_ADDRESS``); "" runs them in this process."""
    return _env("DIP_RAY_ADDRESS", "").strip()


def ray_cpus() -> float:
    """CPUs one job asks for on a Ray cluster without GPUs (``DIP_RAY_CPUS``)."""
    return max(0.5, _env("DIP_RAY_CPUS", 2.0))


def runs_max_age_days() -> float:
    return _env("DIP_RUNS_MAX_AGE_DAYS", 14.0)


def runs_max_mb() -> float:
    return _env("DIP_RUNS_MAX_MB", 2048.0)


@functools.lru_cache(maxsize=1)
def app_icon():
    """The favicon: a 64 px crop of a bundled sample image. A ``:material/...:`` page icon made every visitor's
    browser fetch it from a third-party font server."""
    from PIL import Image

    with Image.open(SAMPLES_DIR / "chelsea.png") as im:  # the cat's face (scikit-image sample, public domain)
        return im.convert("RGB").crop((120, 30, 280, 190)).resize((64, 64), Image.Resampling.LANCZOS)
