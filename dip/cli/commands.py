"""Command line: ``python -m dip TASK --image PATH [options] --out DIR``, one subcommand per registered task.

Each subcommand maps its flags onto a preset, runs the one fit loop with a progress bar on stderr, and
writes result.png, result_ema.png, observed.png, history.csv, snapshots/ and metrics.json to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

from dip.cli.progress import FitProgress, add_checkpoint_flag
from dip.core import degrade
from dip.core.checkpoint import Checkpoint
from dip.core.errors import DIPError
from dip.core.images import load_image
from dip.core.presets import Preset, get_preset
from dip.core.records import RunMetrics
from dip.core.registry import TASKS, Task, get_task
from dip.core.run import run_problem, run_targets
from dip.core.runio import atomic_folder, holds_only_run_output
from dip.core.tasks import load_for, make_problem, prepare_image, prepare_low_resolution


def _common(p: argparse.ArgumentParser, task: Task) -> None:
    p.add_argument("--image", required=True, help="clean image (ground truth), or with --observed the degraded one")
    p.add_argument(
        "--preset",
        default=task.default_preset,
        help=f"one of {', '.join(q.name for q in task.presets())} (default: %(default)s)",
    )
    p.add_argument("--iters", type=int, help="iterations (default: the preset's)")
    p.add_argument("--seed", type=int, help="seed of weights, input code and degradation (default: the preset's, 0)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the preset's)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    p.add_argument("--max-side", type=int, help="downscale the image first so its longer side is at most PX")
    p.add_argument("--snapshot-every", type=int, help="save a snapshot every K iterations")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="arithmetic precision")
    p.add_argument("--out", required=True, type=Path, help="output folder")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``python -m dip`` parser: one subcommand per registered task (``dip.core.registry``), then the lab's.

    Returns
    -------
    argparse.ArgumentParser
        The parser; the lab's subcommands set ``handler=fn(args) -> int`` on the parsed arguments.
    """
    parser = argparse.ArgumentParser(prog="python -m dip", description="Deep Image Prior experiments.")
    sub = parser.add_subparsers(dest="command", required=True)
    for task in TASKS.values():
        p = sub.add_parser(task.name, help=task.summary)
        _common(p, task)
        task.add_arguments(p)
        if task.observed_input:
            p.add_argument("--observed", action="store_true", help=f"--image is {task.observed_input}")
        add_checkpoint_flag(p, "OUT/checkpoint-TARGET.pt (one per target)" if task.fits > 1 else "OUT/checkpoint.pt")
    # Other subcommands register themselves here (benchmark, reproduction, comparison).
    for register in _extensions():
        register(sub)
    return parser


def _extensions():
    """register(subparsers) functions of modules that add subcommands (each sets ``handler=fn(args) -> int``)."""
    from dip.lab import bench, compare, reproduce

    return [bench.register, reproduce.register, compare.register]


def preset_from_args(args: argparse.Namespace) -> Preset:
    """Return the preset named by --preset with the command-line overrides applied.

    The task's own flags are applied through its ``overrides``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of a task subcommand.

    Returns
    -------
    Preset
        A copy of the named preset with --iters, --seed, --lr, --snapshot-every, --precision and the task's flags
        applied where given.

    Raises
    ------
    ConfigError
        For an unknown preset or one of another task, or an override out of range.
    """
    preset = get_preset(args.preset, args.command)
    fit = {
        k: v
        for k, v in {
            "iterations": args.iters,
            "seed": args.seed,
            "lr": args.lr,
            "snapshot_every": args.snapshot_every,
            "precision": args.precision,
        }.items()
        if v is not None
    }
    task = get_task(args.command).overrides(args)
    return preset.with_overrides(fit=fit, **task)


def run_task(args: argparse.Namespace) -> RunMetrics:
    """Run a single-image task: load, degrade, fit, write, compare (``dip.core.run.run_problem``).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of a task subcommand (``--image``, ``--out``, ``--observed``, ``--mask``, ...).

    Returns
    -------
    RunMetrics
        The run's metrics, as written to ``--out``/metrics.json.

    Raises
    ------
    DIPError
        For an unusable image, mask or setting (``main`` prints the message).
    """
    preset = preset_from_args(args)
    task = get_task(preset.task)
    observed = getattr(args, "observed", False)
    image = load_image(args.image, mode="grey" if preset.grey else "rgb")
    if observed and task.output_scale(preset) > 1:
        image = prepare_low_resolution(image, preset, max_side=args.max_side)
    else:
        image = prepare_image(image, preset, max_side=args.max_side)
    mask = None
    if task.needs_mask and args.mask is not None:
        mask = degrade.load_mask(args.mask, height=image.shape[0], width=image.shape[1])
    problem = make_problem(preset, image, observed=observed, mask=mask, seed=preset.fit.seed)
    progress = FitProgress(preset.fit.iterations, preset.task)
    checkpoint = (
        Checkpoint(args.out / "checkpoint.pt", args.checkpoint_every, extra=progress) if args.checkpoint_every else None
    )
    try:
        out = run_problem(
            preset,
            problem,
            args.out,
            device=args.device,
            on_step=progress.step,
            on_snapshot=progress.snapshots.append,
            checkpoint=checkpoint,
            extra_metrics=lambda result: {"image": Path(args.image).name},
            snapshots=progress.snapshots,
            on_baselines=progress.close,
            writing=_output_folder(args.out),
        )
    finally:
        progress.close()
    return out.metrics


def run_impedance_cmd(args: argparse.Namespace) -> RunMetrics:
    """Run impedance: fit the four targets; per-target folders plus a combined history.csv and metrics.json.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of the impedance subcommand.

    Returns
    -------
    RunMetrics
        The combined metrics.json record.

    Raises
    ------
    DIPError
        For an unusable image or setting (``main`` prints the message).
    """
    from dip.core.impedance import TARGETS, target_checkpoints, target_slug

    preset = preset_from_args(args)
    image = load_for(preset, args.image, max_side=args.max_side)
    bars = {name: FitProgress(preset.fit.iterations, name) for name in TARGETS}
    checkpoints = target_checkpoints(args.out, args.checkpoint_every, extras=bars) if args.checkpoint_every else {}
    try:
        metrics, _ = run_targets(
            preset,
            image,
            args.out,
            device=args.device,
            on_step=lambda name, rec: bars[name].step(rec),
            on_snapshot=lambda name, snap: bars[name].snapshots.append(snap),
            checkpoints=checkpoints,
            extra_metrics=lambda res: {"image": Path(args.image).name},
            snapshots={n: b.snapshots for n, b in bars.items()},  # filled in place as the fits go
            writing=_output_folder(args.out, also=[target_slug(name) for name in TARGETS]),
        )
    finally:
        for b in bars.values():
            b.close()
    return metrics


def _output_folder(out: Path, also=()):
    """Return where to write the run, as a context manager giving the folder.

    Through ``atomic_folder(out)`` when ``out`` is new or holds only an earlier run's files and checkpoints (a crash
    then leaves no half-written run, and a rerun replaces the old one whole); otherwise ``out`` itself, written in
    place as before, so that nothing else kept there is deleted.
    """
    return atomic_folder(out) if holds_only_run_output(out, also=also) else nullcontext(Path(out))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``python -m dip``: parse the arguments, run the subcommand, print a one-line summary.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments without the program name; None (default) reads ``sys.argv``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 for an error a user can fix (``DIPError``, its message printed on stderr),
        or a lab subcommand's own status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    try:
        if handler is not None:
            return handler(args)
        metrics = run_impedance_cmd(args) if get_task(args.command).fits > 1 else run_task(args)
    except DIPError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = {k: getattr(metrics, k) for k in ("psnr_observed", "psnr_final", "psnr_ema", "psnr_best", "seconds")}
    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
    print(f"wrote {args.out}")
    return 0
