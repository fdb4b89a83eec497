"""A finished run folder made without a fit, for the tests of everything that reads run folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dip.core.fit import FitResult, Snapshot, StepRecord
from dip.core.runio import write_run


def fake_run(folder: Path, *, iters: int = 3, side: int = 16) -> Path:
    """A complete denoising run folder from a made-up FitResult (a few milliseconds, no training)."""
    image = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    history = [StepRecord(i, 0.1 / i, 20.0 + i / 10, 21.0 + i / 10, 21.5, False) for i in range(1, iters + 1)]
    result = FitResult(output=image, ema=image, history=history, best=image, best_iteration=2, iterations_done=iters)
    metrics = {
        "task": "denoise",
        "preset": "lab-denoise",
        "iterations": iters,
        "psnr_observed": 20.0,
        "psnr_final": 24.0,
        "psnr_ema": 24.5,
        "psnr_best": 25.0,
        "best_iteration": 2,
        "seconds": 1.5,
        "device": "cpu",
        "source": "cat.png",
        "status": "done",
    }
    return write_run(
        folder,
        metrics=metrics,
        config={"task": "denoise"},
        result=result,
        degraded=image,
        x_true=image,
        snapshots=[Snapshot(i, image, image) for i in (1, 2)],
    )
