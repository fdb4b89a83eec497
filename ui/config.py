"""App settings read from the environment once per call (tests may change them with monkeypatch.setenv).

DIP_RUNS_DIR     where finished runs are written (default: ``runs/`` in the repository root)
DIP_MAX_SIDE     default working size, longest side in px (default 256); every page lets the user change it
DIP_MAX_PIXELS   largest upload accepted before the app offers to downscale it (default: dip.images.MAX_PIXELS)
DIP_MAX_QUEUE    most jobs queued or running at once, all users together (default 5)
DIP_DEVICE       "auto" (default), "cuda", "mps" or "cpu"
DIP_POLL_SECONDS how often a page refreshes a running job (default 1.0)
DIP_CPU_BUDGET_MIN  on a CPU, offer a smaller working size when a run would take longer (default 5 minutes)
"""

from __future__ import annotations

import os
from pathlib import Path

from dip.images import MAX_PIXELS as ENGINE_MAX_PIXELS

ROOT = Path(__file__).resolve().parent.parent
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
