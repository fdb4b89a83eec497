"""The run sequence, written once.

Fit the problem, write the run folder, compare with the task's classical methods, drop the checkpoint. The command
line, ``reproduce`` and the app's worker all call ``run_problem``; they differ only in what they watch (a progress
bar, a side detector, a live page) and what they add to ``metrics.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from dip.core.checkpoint import Checkpoint
from dip.core.fit import FitResult, Snapshot, StepRecord
from dip.core.impedance import ImpedanceResult, remove_checkpoints, run_impedance, write_impedance_run
from dip.core.metrics import psnr
from dip.core.presets import Preset
from dip.core.records import RunMetrics
from dip.core.registry import get_task
from dip.core.runio import preset_as_dict, write_baselines, write_run
from dip.core.tasks import Problem, solve, summarize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutput:
    """What ``run_problem`` produced: the ``metrics.json`` record, the fit, the classical baselines and the folder.

    Attributes
    ----------
    metrics : RunMetrics
        The record written to ``metrics.json``.
    result : FitResult
        The fit.
    baselines : list of Baseline
        The classical methods' results (empty when not run, or when one failed).
    folder : Path
        The run folder.
    baselines_border_excluded : dict of str to float
        Each baseline's PSNR with ``border`` pixels excluded (empty without a border or ground truth).
    """

    metrics: RunMetrics
    result: FitResult
    baselines: list
    folder: Path
    baselines_border_excluded: dict


def run_problem(
    preset: Preset,
    problem: Problem,
    folder: str | Path,
    *,
    device: Optional[str] = None,
    on_step: Optional[Callable[[StepRecord], None]] = None,
    on_snapshot: Optional[Callable[[Snapshot], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    checkpoint: Optional[Checkpoint] = None,
    extra_metrics: Optional[Callable[[FitResult], dict]] = None,
    snapshots: Iterable[Snapshot] = (),
    on_baselines: Optional[Callable[[], None]] = None,
    border: int = 0,
    writing: Optional[AbstractContextManager] = None,
) -> RunOutput:
    """Fit ``preset``'s network to ``problem`` and write the run to ``folder``.

    Parameters
    ----------
    preset : Preset
        The run's settings (``metrics.json`` names it).
    problem : Problem
        Observation, operator and (maybe) ground truth (``dip.core.tasks.make_problem``).
    folder : str or Path
        The run folder (created).
    device : str, optional
        "auto"/None, "cpu", "cuda", "mps".
    on_step, on_snapshot, should_stop : callable, optional
        Passed to the fit loop: each iteration's record, each snapshot, a cancel check.
    checkpoint : Checkpoint, optional
        Resume from it and save into it; removed once the run is written.
    extra_metrics : callable, optional
        ``extra_metrics(result) -> dict`` merged into ``metrics.json`` (what only the caller knows).
    snapshots : iterable of Snapshot
        Snapshots to write with the run (empty when the caller wrote them as they came).
    on_baselines : callable, optional
        Called just before the task's classical methods start (a page says "comparing with classical methods").
        They run after a fit that was not cancelled; a failing method is logged and leaves the written fit alone.
    border : int, optional
        Also report PSNRs with this many border pixels excluded (F16's corrupted frame). Default 0.
    writing : context manager, optional
        Yields the folder to write the fit into (``dip.core.runio.atomic_folder``: written aside, renamed into
        ``folder`` whole); default ``folder`` itself.

    Returns
    -------
    RunOutput
        The metrics, the fit, the baselines and the folder.

    Raises
    ------
    DIPError
        From the fit (``dip.core.tasks.solve``): a problem too small for the network, or a checkpoint of another
        run. A failing classical method raises nothing (see ``on_baselines``).
    """
    folder = Path(folder)
    result = solve(
        preset, problem, device=device, on_step=on_step, on_snapshot=on_snapshot, should_stop=should_stop,
        checkpoint=checkpoint,
    )  # fmt: skip
    extra = {"resumed_from": result.resumed_from} if result.resumed_from else {}
    if extra_metrics is not None:
        extra.update(extra_metrics(result))
    metrics = RunMetrics.from_dict({**summarize(preset, problem, result, border=border).to_dict(), **extra})
    with writing if writing is not None else nullcontext(folder) as target:
        write_run(
            target,
            metrics=metrics.to_dict(),
            config=preset_as_dict(preset),
            result=result,
            degraded=problem.degraded,
            x_true=problem.x_true,
            mask=problem.mask,
            snapshots=snapshots,
        )
    found, border_psnr = [], {}
    if not result.cancelled:
        if on_baselines is not None:
            on_baselines()
        try:
            found = get_task(problem.task).baselines(preset, problem)
            if border and problem.x_true is not None:
                border_psnr = {b.name: psnr(problem.x_true, b.image, border=border) for b in found}
            write_baselines(folder, found, border_psnr=border_psnr)
        except Exception:  # a failing classical method must not lose the fit, which is already on disk
            log.exception("the classical baselines of %s failed", folder.name)
            found, border_psnr = [], {}
    if checkpoint is not None:
        checkpoint.path.unlink(missing_ok=True)  # the run is written; running it again starts afresh
    return RunOutput(metrics, result, found, folder, border_psnr)


def run_targets(
    preset: Preset,
    image: np.ndarray,
    folder: str | Path,
    *,
    device: Optional[str] = None,
    on_step: Optional[Callable[[str, StepRecord], None]] = None,
    on_snapshot: Optional[Callable[[str, Snapshot], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    checkpoints: Optional[dict[str, Checkpoint]] = None,
    extra_metrics: Optional[Callable[[ImpedanceResult], dict]] = None,
    snapshots: Optional[dict[str, list[Snapshot]]] = None,
    writing: Optional[AbstractContextManager] = None,
) -> tuple[RunMetrics, ImpedanceResult]:
    """Run a task that fits several targets (noise impedance): fit each, write the run, drop the checkpoints.

    Parameters
    ----------
    preset : Preset
        The run's settings.
    image : ndarray
        float32 (H, W, C) in [0, 1], the natural image the targets are made from (``dip.core.impedance``).
    folder : str or Path
        The run folder.
    device : str, optional
        "auto"/None, "cpu", "cuda", "mps".
    on_step, on_snapshot : callable, optional
        ``(target name, record)`` callbacks of every fit.
    should_stop : callable, optional
        Cancel check of the fit loop.
    checkpoints : dict of str to Checkpoint, optional
        One per target (``dip.core.impedance.target_checkpoints``); removed once the run is written.
    extra_metrics : callable, optional
        ``extra_metrics(result) -> dict`` merged into ``metrics.json``.
    snapshots : dict of str to list of Snapshot, optional
        Each target's snapshots to write (None when the caller wrote them as they came).
    writing : context manager, optional
        Yields the folder to write into (``dip.core.runio.atomic_folder``); default ``folder`` itself.

    Returns
    -------
    tuple of (RunMetrics, ImpedanceResult)
        The ``metrics.json`` record as written (``targets`` holds each target's losses), and the fits.
    """
    checkpoints = checkpoints or {}
    res = run_impedance(
        preset, image, device=device, on_step=on_step, on_snapshot=on_snapshot, should_stop=should_stop,
        checkpoints=checkpoints,
    )  # fmt: skip
    extra = extra_metrics(res) if extra_metrics is not None else None
    with writing if writing is not None else nullcontext(Path(folder)) as target:
        metrics = write_impedance_run(target, preset, res, snapshots=snapshots, extra=extra)
    remove_checkpoints(checkpoints)  # the run is written; running it again starts afresh
    return RunMetrics.from_dict(metrics), res
