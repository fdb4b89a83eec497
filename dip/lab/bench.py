"""``python -m dip bench``: time, FLOPs and memory of one iteration of each lab configuration.

A case times the engine's own iteration (``dip.core.fit.FitStep``: z perturbation, forward, loss, backward, Adam
step) with the engine's defaults against a plain reference: the same net with ``torch.nn``'s own layers (the ones
``dip.core.layers`` rewrites, see ``as_plain_pytorch``) and the same code, in eager float32, NCHW.
Both run in the same process with the same allocator, one reference iteration then one engine iteration
(then the other way round), so both see the same machine load; the ratio is the median of the per-pair
ratios. The glibc allocator tuning that ``fit`` applies on CPU helps both sides, so ``--allocator-check``
measures it separately, in fresh processes with and without it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dip.core.device import (
    autocast_dtype,
    cpu_supports_bf16,
    describe_device,
    pick_device,
    precision_name,
    synchronize,
    tune_allocator,
    tune_threads,
)
from dip.core.errors import ConfigError
from dip.core.fit import FitConfig, FitStep, uses_channels_last
from dip.core.layers import as_plain_pytorch
from dip.core.models import make_input_code
from dip.core.presets import get_preset
from dip.core.registry import get_task
from dip.core.tasks import build_net

CONFIGS = {"impedance": "lab-impedance", "denoise": "lab-denoise", "sr": "lab-sr"}


@dataclass(frozen=True)
class Timing:
    """One variant of a case.

    Attributes
    ----------
    seconds : float
        Median of ``times``, s per iteration.
    times : tuple of float
        Each timed iteration, s.
    gflops : float
        GFLOP/s = FLOPs per iteration / seconds.
    peak_memory_mib : float or None
        Peak tensor memory of one iteration, MiB (None when not measured, or on MPS).
    """

    seconds: float
    times: tuple
    gflops: float
    peak_memory_mib: Optional[float]


@dataclass(frozen=True)
class Case:
    """A configuration at one size: FLOPs per iteration (forward + backward) and the timed variants.

    Attributes
    ----------
    config : str
        A ``CONFIGS`` key.
    size : int
        Side of the square RGB image, px.
    flops : int
        FLOPs of one iteration, forward + backward.
    precision : str
        What the engine computes in: "fp32", "bf16" or "fp16".
    channels_last : bool
        Whether the engine runs NHWC.
    engine, reference : Timing or None
        The timed variants (None when not run).
    ratio : float or None
        Median over alternating pairs of engine seconds / reference seconds (below 1: the engine is faster).
    conv_gflops : float or None
        GFLOP/s of ``conv_run`` in the engine's precision and layout, median of runs interleaved with the
        engine's iterations (None when not measured): what the engine's GFLOP/s is read against, from the same
        minutes, since a shared machine's speed drifts by tens of per cent within minutes.
    """

    config: str
    size: int
    flops: int
    precision: str
    channels_last: bool
    engine: Optional[Timing]
    reference: Optional[Timing]
    ratio: Optional[float]
    conv_gflops: Optional[float] = None


def reference_config(fit: FitConfig) -> FitConfig:
    """Make the plain reference of ``fit``: the same settings in eager float32 with NCHW tensors."""
    return replace(fit, precision="fp32", channels_last=False)


def make_step(config: str, size: int, dev: torch.device, *, reference: bool = False) -> FitStep:
    """Build the iteration of lab configuration ``config`` on a ``size`` x ``size`` RGB image.

    The observation is random: no part of the iteration's cost depends on the image content.

    Parameters
    ----------
    config : str
        A ``CONFIGS`` key: "impedance", "denoise" or "sr".
    size : int
        Image side in px, at least the network's ``min_side``.
    dev : torch.device
        Device to run on.
    reference : bool, optional
        Build the plain reference instead of the engine: the net's ``torch.nn`` layers
        (``dip.core.layers.as_plain_pytorch``) in ``reference_config``'s settings. Default False.

    Returns
    -------
    FitStep

    Raises
    ------
    ConfigError
        If ``config`` is unknown or ``size`` too small for its network.
    """
    if config not in CONFIGS:
        raise ConfigError(f"unknown benchmark configuration {config!r}; choose from {', '.join(CONFIGS)}.")
    preset = get_preset(CONFIGS[config])
    if size < preset.net.min_side:
        raise ConfigError(
            f"size {size} px is too small for the {config} network; use at least {preset.net.min_side} px."
        )
    gen = torch.Generator().manual_seed(0)
    z = make_input_code(preset.input, size, size, generator=gen)
    op = get_task(preset.task).operator(preset, None)
    y = torch.rand(1, 3, *op.output_size(size, size), generator=gen)
    if reference:
        return FitStep(as_plain_pytorch(build_net(preset, 3)), z, y, op, reference_config(preset.fit), dev)
    return FitStep(build_net(preset, 3), z, y, op, preset.fit, dev)


def count_flops(run: Callable[[], object]) -> int:
    """Count the FLOPs of one call of ``run`` (forward and backward) by ``torch.utils.flop_counter``."""
    with FlopCounterMode(display=False) as counter:
        run()
    return int(counter.get_total_flops())


def peak_memory_mib(step: FitStep) -> Optional[float]:
    """Measure the peak tensor memory of one iteration: what persists (weights, Adam state, z, y) plus its peak.

    CUDA reads its allocator's peak; on CPU the profiler's allocation trace gives it (None on MPS).

    Parameters
    ----------
    step : FitStep
        The iteration; it is run once (from the unperturbed z, gradients freed first).

    Returns
    -------
    float or None
        MiB; None on MPS.
    """
    dev = step.dev
    step.optimizer.zero_grad(set_to_none=True)  # free last iteration's gradients before measuring
    step.z_in = step.z
    if dev.type == "cuda":
        synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        step()
        synchronize(dev)
        return torch.cuda.max_memory_allocated(dev) / 2**20
    if dev.type != "cpu":
        return None
    tensors = [step.z, step.y, *step.net.parameters(), *step.net.buffers()]
    tensors += [t for state in step.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
    persistent = sum(t.numel() * t.element_size() for t in tensors)
    return (persistent + _cpu_iteration_peak(step)) / 2**20


def _cpu_iteration_peak(step: FitStep) -> int:
    """Highest running total of bytes allocated during one iteration, from the profiler's memory events."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = [e["args"] for e in json.loads(trace.read_text())["traceEvents"] if e.get("name") == "[memory]"]
    if not events:
        return 0
    start = events[0]["Total Allocated"] - events[0]["Bytes"]
    return max(0, max(e["Total Allocated"] for e in events) - start)


def time_alternating(
    runs: dict[str, Callable[[], object]], dev: torch.device, *, warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Time each run, interleaved A B, B A, A B, ... so that a change in machine load hits all alike.

    Parameters
    ----------
    runs : dict of str to callable
        What to time, by name.
    dev : torch.device
        Synchronised after each call, so a GPU's queued work is counted.
    warmup : int
        Untimed rounds first.
    repeats : int
        Timed calls of each run.

    Returns
    -------
    dict of str to list of float
        Seconds of each timed call, by name.
    """
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    synchronize(dev)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            runs[name]()
            synchronize(dev)
            times[name].append(time.perf_counter() - start)
    return times


def run_case(
    config: str,
    size: int,
    dev: torch.device,
    *,
    warmup: int = 2,
    repeats: int = 5,
    variant: str = "both",
    memory: bool = True,
    conv: bool = False,
) -> Case:
    """Benchmark one configuration at one size.

    Parameters
    ----------
    config : str
        A ``CONFIGS`` key.
    size : int
        Image side in px.
    dev : torch.device
        Device to run on.
    warmup : int, optional
        Untimed iterations per variant first. Default 2.
    repeats : int, optional
        Timed iterations per variant. Default 5.
    variant : {"both", "engine", "reference"}, optional
        What to time; "both" alternates them and gives the ratio. Default "both".
    memory : bool, optional
        Measure the peak memory. Default True.
    conv : bool, optional
        Also time ``conv_run`` in the engine's precision and layout, interleaved with the variants, for
        ``Case.conv_gflops``. Default False.

    Returns
    -------
    Case

    Raises
    ------
    ConfigError
        If ``variant``, ``config`` or ``size`` is not valid.
    """
    if variant not in ("both", "engine", "reference"):
        raise ConfigError(f"variant={variant!r}; choose both, engine or reference.")
    names = ["reference", "engine"] if variant == "both" else [variant]
    steps = {name: make_step(config, size, dev, reference=name == "reference") for name in names}
    flops = count_flops(steps[names[0]])  # the same arithmetic in every precision
    peaks = {name: peak_memory_mib(step) if memory else None for name, step in steps.items()}
    fit = get_preset(CONFIGS[config]).fit
    runs, conv_flops = dict(steps), None
    if conv and "engine" in steps:
        runs["conv"] = conv_run(dev, precision=fit.precision, channels_last=uses_channels_last(fit, dev))
        conv_flops = count_flops(runs["conv"])
    times = time_alternating(runs, dev, warmup=warmup, repeats=repeats)
    conv_times = times.pop("conv", None)
    timing = {
        name: Timing(statistics.median(t), tuple(t), flops / statistics.median(t) / 1e9, peaks[name])
        for name, t in times.items()
    }
    ratio = None
    if variant == "both":
        ratio = statistics.median(e / r for e, r in zip(times["engine"], times["reference"]))
    return Case(
        config,
        size,
        flops,
        precision_name(fit.precision, dev),
        uses_channels_last(fit, dev),
        timing.get("engine"),
        timing.get("reference"),
        ratio,
        conv_flops / statistics.median(conv_times) / 1e9 if conv_times else None,
    )


def conv_run(
    dev: torch.device, *, precision: str = "fp32", channels_last: bool = False, size: int = 256, channels: int = 128
) -> Callable[[], None]:
    """Build one forward + backward pass of a 3x3, ``channels``-to-``channels`` convolution on a ``size``^2 map.

    Parameters
    ----------
    dev : torch.device
        Device to run on.
    precision : {"fp32", "bf16", "fp16", "auto"}, optional
        Autocast setting. Default "fp32".
    channels_last : bool, optional
        NHWC tensors. Default False.
    size, channels : int, optional
        Side of the feature map (px) and input and output channels. Defaults 256 and 128.

    Returns
    -------
    callable
        Runs the pass; ``count_flops`` gives its FLOPs.
    """
    mem = torch.channels_last if channels_last else torch.contiguous_format
    conv = nn.Conv2d(channels, channels, 3, padding=1).to(dev, memory_format=mem)
    x = torch.randn(1, channels, size, size, device=dev).contiguous(memory_format=mem).requires_grad_()
    amp = autocast_dtype(precision, dev)

    def run():
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            out = conv(x)
        out.backward(torch.ones_like(out))

    return run


def conv_throughput(
    dev: torch.device,
    *,
    precision: str = "fp32",
    channels_last: bool = False,
    size: int = 256,
    channels: int = 128,
    warmup: int = 1,
    repeats: int = 10,
) -> float:
    """Measure the GFLOP/s of a 3x3, ``channels``-to-``channels`` convolution on a ``size``^2 map, forward + backward.

    The machine's speed at the work that dominates the net, to read the achieved GFLOP/s against. The best
    of ``repeats`` runs: what the hardware can do (other load only ever slows a run down).

    Parameters
    ----------
    dev : torch.device
        Device to run on.
    precision, channels_last, size, channels
        As ``conv_run`` (defaults "fp32", NCHW, 256 px, 128 channels).
    warmup, repeats : int, optional
        Untimed and timed runs. Defaults 1 and 10.

    Returns
    -------
    float
        GFLOP/s of the best run.
    """
    run = conv_run(dev, precision=precision, channels_last=channels_last, size=size, channels=channels)
    flops = count_flops(run)
    times = time_alternating({"conv": run}, dev, warmup=warmup, repeats=repeats)["conv"]
    return flops / min(times) / 1e9


def machine_info(dev: torch.device) -> dict:
    """Describe what the numbers were measured on: date, device, CPU model and bf16 support, threads, torch."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "device": describe_device(dev),
        "cpu": cpu,
        "cpu_bf16": cpu_supports_bf16(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def run_bench(
    configs: list[str],
    sizes: list[int],
    dev: torch.device,
    *,
    warmup: int = 2,
    repeats: int = 5,
    variant: str = "both",
    memory: bool = True,
    conv: bool = True,
    log: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Benchmark every configuration at every size, plus the machine's conv throughput.

    Parameters
    ----------
    configs : list of str
        ``CONFIGS`` keys.
    sizes : list of int
        Image sides in px.
    dev : torch.device
        Device to run on.
    warmup, repeats, variant, memory
        As ``run_case``.
    conv : bool, optional
        Measure ``conv_throughput`` in float32 NCHW and, where it differs, in the engine's precision and
        layout, and time that convolution between each case's iterations (``Case.conv_gflops``). Default True.
    log : callable, optional
        Called with a progress line before each measurement.

    Returns
    -------
    dict
        JSON-ready: ``machine`` (``machine_info``), ``conv_gflops`` (by label) and ``cases`` (``Case`` as dicts).
    """
    report = {"machine": machine_info(dev), "conv_gflops": {}, "cases": []}
    if conv:
        engine = get_preset(CONFIGS["denoise"]).fit
        computes, nhwc = precision_name(engine.precision, dev), uses_channels_last(engine, dev)
        variants = {"fp32 NCHW": ("fp32", False)}
        if (computes, nhwc) != ("fp32", False):  # else the engine's conv is the row above
            variants[f"engine ({computes}, {'NHWC' if nhwc else 'NCHW'})"] = (engine.precision, nhwc)
        for label, (precision, cl) in variants.items():
            log(f"conv throughput, {label}")
            report["conv_gflops"][label] = conv_throughput(dev, precision=precision, channels_last=cl)
    for size in sizes:
        for config in configs:
            log(f"{config} at {size}x{size}: warm-up {warmup}, {repeats} timed iterations per variant")
            case = run_case(
                config, size, dev, warmup=warmup, repeats=repeats, variant=variant, memory=memory, conv=conv
            )
            report["cases"].append(asdict(case))
    return report


def allocator_check(
    config: str,
    size: int,
    *,
    rounds: int = 3,
    warmup: int = 1,
    repeats: int = 2,
    log: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Measure the effect of ``tune_allocator`` on CPU in fresh processes (it cannot be undone in one).

    Each round runs three processes in turn: the reference with glibc's default allocator, the reference
    tuned, the engine tuned.

    Parameters
    ----------
    config : str
        A ``CONFIGS`` key.
    size : int
        Image side in px.
    rounds : int, optional
        Rounds of three processes. Default 3.
    warmup, repeats : int, optional
        Untimed and timed iterations per process. Defaults 1 and 2.
    log : callable, optional
        Called with a progress line before each process.

    Returns
    -------
    dict
        ``seconds`` (the median seconds of each variant), ``times`` (all of them), ``allocator_ratio`` (tuned /
        default reference) and ``engine_vs_default_reference``, with ``config`` and ``size``.

    Raises
    ------
    subprocess.CalledProcessError
        If a benchmark process fails.
    """
    variants = {
        "reference, glibc defaults": ["--variant", "reference", "--default-allocator"],
        "reference, tuned allocator": ["--variant", "reference"],
        "engine, tuned allocator": ["--variant", "engine"],
    }
    times = {name: [] for name in variants}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    for r in range(rounds):
        for name, flags in variants.items():
            log(f"allocator check {config} {size}x{size}, round {r + 1}/{rounds}: {name}")
            cmd = [
                sys.executable,
                "-m",
                "dip",
                "bench",
                "--json",
                "--no-conv",
                "--no-memory",
                "--configs",
                config,
                "--sizes",
                str(size),
                "--warmup",
                str(warmup),
                "--repeats",
                str(repeats),
                "--device",
                "cpu",
                "--threads",
                str(torch.get_num_threads()),
                *flags,
            ]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            case = json.loads(out)["cases"][0]
            times[name] += case["engine" if "engine" in name else "reference"]["times"]
    med = {name: statistics.median(t) for name, t in times.items()}
    default, tuned, engine = med.values()
    return {
        "config": config,
        "size": size,
        "seconds": med,
        "times": times,
        "allocator_ratio": tuned / default,
        "engine_vs_default_reference": engine / default,
    }


def format_report(report: dict) -> str:
    """Format a ``run_bench`` report (and its allocator check, when present) as markdown tables.

    Parameters
    ----------
    report : dict
        As ``run_bench`` returns it, optionally with ``allocator_check`` (a list of ``allocator_check`` dicts)
        and ``machine.allocator``.

    Returns
    -------
    str
        Markdown: seconds per iteration, GFLOP/iter, GFLOP/s and peak MiB per case.
    """
    m = report["machine"]
    lines = [
        f"{m['date']} · {m['device']} · {m['cpu']}{' (bf16)' if m.get('cpu_bf16') else ''} · torch {m['torch']}"
        f" · allocator {m.get('allocator', 'tuned')}",
        "",
    ]
    if report["conv_gflops"]:
        conv = " · ".join(f"{k}: {v:.0f} GFLOP/s" for k, v in report["conv_gflops"].items())
        lines += [f"3x3 conv, 128 channels, 256x256, forward + backward, best of 10: {conv}", ""]
    engine_conv = list(report["conv_gflops"].values())[-1] if report["conv_gflops"] else None
    lines += [
        "| config | size | GFLOP/iter | reference s/iter | engine s/iter | engine / reference | speed-up "
        "| engine GFLOP/s (% of conv, same minutes) | peak MiB reference / engine |",
        "|" + "---|" * 9,
    ]
    for c in report["cases"]:
        ref, eng = c["reference"] or {}, c["engine"] or {}
        case_conv = c.get("conv_gflops") or engine_conv  # the conv timed between this case's iterations, if it was
        share = f" ({100 * eng['gflops'] / case_conv:.0f} % of {case_conv:.0f})" if eng and case_conv else ""
        lines.append(
            " | ".join(
                [
                    f"| {c['config']}",
                    f"{c['size']}²",
                    f"{c['flops'] / 1e9:.0f}",
                    _num(ref.get("seconds")),
                    _num(eng.get("seconds")) + f" ({c['precision']}{', NHWC' if c['channels_last'] else ''})",
                    _num(c["ratio"]),
                    _num(1 / c["ratio"] if c["ratio"] else None, "×"),
                    (f"{eng['gflops']:.0f}" + share) if eng else "–",
                    f"{_num(ref.get('peak_memory_mib'), fmt='.0f')} / {_num(eng.get('peak_memory_mib'), fmt='.0f')} |",
                ]
            )
        )
    for a in report.get("allocator_check", []):
        if a == report["allocator_check"][0]:
            lines += [
                "",
                "| config | size | reference, glibc defaults | reference, tuned allocator "
                "| engine, tuned allocator | tuned / default | engine / default reference |",
                "|" + "---|" * 7,
            ]
        s = list(a["seconds"].values())
        lines.append(
            f"| {a['config']} | {a['size']}² | {s[0]:.2f} s | {s[1]:.2f} s | {s[2]:.2f} s "
            f"| {a['allocator_ratio']:.2f} | {a['engine_vs_default_reference']:.2f} |"
        )
    return "\n".join(lines)


def _num(value: Optional[float], suffix: str = "", fmt: str = ".2f") -> str:
    return "–" if value is None else f"{value:{fmt}}{suffix}"


def _parse_list(text: str, name: str, parse: Callable = str) -> list:
    try:
        return [parse(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{name} {text!r}: expected comma-separated values such as 256,512.") from None


def run_cli(args: argparse.Namespace) -> int:
    """Run the ``bench`` subcommand: print the tables (or JSON) to stdout, progress to stderr.

    Parameters
    ----------
    args : argparse.Namespace
        The options ``register`` defines.

    Returns
    -------
    int
        Exit status 0.

    Raises
    ------
    ConfigError
        For invalid options (repeats < 1, negative warm-up, a list that does not parse, unknown configuration).
    """
    if args.repeats < 1 or args.warmup < 0:
        raise ConfigError(
            f"--repeats {args.repeats} --warmup {args.warmup}: need at least 1 timed iteration and no negative warm-up."
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        tune_threads()
    dev = pick_device(args.device)
    if dev.type == "cpu" and not args.default_allocator:
        tune_allocator()  # as fit() does; before the first large allocation
    configs, sizes = _parse_list(args.configs, "configs"), _parse_list(args.sizes, "sizes", int)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    report = run_bench(
        configs,
        sizes,
        dev,
        warmup=args.warmup,
        repeats=args.repeats,
        variant=args.variant,
        memory=not args.no_memory,
        conv=not args.no_conv,
        log=log,
    )
    report["machine"]["allocator"] = "glibc defaults" if args.default_allocator or dev.type != "cpu" else "tuned"
    if args.allocator_check and dev.type == "cpu":
        report["allocator_check"] = [allocator_check(c, s, log=log) for s in sizes for c in configs]
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def register(subparsers) -> None:
    """Add the ``bench`` subcommand to ``python -m dip``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``python -m dip`` parser.
    """
    p = subparsers.add_parser("bench", help="seconds, FLOPs and memory per iteration against float32 NCHW")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--sizes", default="256,512", help="comma-separated image sides in px (default: %(default)s)")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, from %(default)s")
    p.add_argument("--repeats", type=int, default=5, help="timed iterations per variant; the median is reported")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations per variant first (default 2)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core this process may use)")
    p.add_argument(
        "--allocator-check",
        action="store_true",
        help="also time the reference with glibc's default allocator, in fresh processes (CPU)",
    )
    p.add_argument(
        "--variant",
        choices=["both", "engine", "reference"],
        default="both",
        help="time both alternately (default), or only one",
    )
    p.add_argument("--default-allocator", action="store_true", help="leave glibc's allocator untuned")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--no-conv", action="store_true", help="skip the conv throughput measurement")
    p.set_defaults(handler=run_cli)
