"""results.md of ``python -m dip reproduce``: goals, one table per case, noise impedance, stopping gaps.

Reference values quoted here come from REFERENCE.md §8 (official code with the lab preset, classical
baselines measured with the notebooks' protocol) and the paper.
"""

from __future__ import annotations

import os
import platform
from typing import Optional

import torch

from dip.core.registry import TASKS
from dip.core.stopping import pick_confirmed
from dip.lab.report import markdown_table

TITLES = {**{name: task.title for name, task in TASKS.items()}, "stopping": "Stopping study"}
INPUT_LABEL = {"denoise": "noisy input", "sr": "input (LR image, bicubic view)", "inpaint": "input (holes = 0)"}

# (label, group, preset names, image, key, goal, reference)
GOALS = [
    (
        "F16 σ=25, EMA output",
        "denoise",
        ("lab-denoise", "f16"),
        "F16_GT.png",
        "psnr_ema",
        31.0,
        "official code, lab preset, 1800 it: 32.13 EMA / 30.12 raw; NLM 31.04, CBM3D 32.82",
    ),
    (
        "F16 σ=25, final output",
        "denoise",
        ("lab-denoise", "f16"),
        "F16_GT.png",
        "psnr_final",
        30.0,
        "grader threshold > 30",
    ),
    (
        "zebra ×4, final output",
        "sr",
        ("lab-sr", "zebra-x4"),
        "zebra_GT.png",
        "psnr_final",
        24.0,
        "bicubic 23.10, Lanczos 23.56; grader threshold > 23",
    ),
    (
        "Barbara 50 % pixels, final output",
        "inpaint",
        ("barbara",),
        "barbara.png",
        "psnr_final",
        32.2,
        "paper Table 1: 32.22; biharmonic 26.80",
    ),
]

# (PSNR key, iteration key) of the two ground-truth-free picks: ES-WMV (the fit's own) and ES-EMV (side detector)
BLIND_PICKS = (("psnr_blind", "blind_iteration"), ("psnr_blind_emv", "blind_iteration_emv"))


def machine_info(device: Optional[str] = None) -> dict:
    """Describe the machine: CPU model, core count, GPU name, the device the fits run on, torch and Python versions.

    Parameters
    ----------
    device : str, optional
        The device asked for ("auto"/None, "cpu", "cuda", "mps"); an unavailable one is reported, not raised.

    Returns
    -------
    dict
        ``cpu`` (model, and whether it has native bf16), ``cores``, ``gpu`` (None without CUDA), ``device``,
        ``torch``, ``python`` and ``platform``: strings, ``cores`` an int (None when unknown).
    """
    from dip.core.device import cpu_supports_bf16, describe_device, pick_device

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        dev = describe_device(pick_device(device))
    except Exception as err:  # an unavailable device is reported by the run itself
        dev = f"unavailable ({err})"
    # "auto" precision means bf16 only on CPUs with native bf16, so the CPU decides the arithmetic of a run.
    cpu = (cpu or "unknown") + (" · native bf16" if cpu_supports_bf16() else " · no native bf16")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "device": dev,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _f(v, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _goal_rows(cases: list[dict]) -> list[list]:
    rows = []
    for label, group, presets, image, key, goal, ref in GOALS:
        for c in cases:
            if c["group"] == group and c.get("preset_name") in presets and c["image"] == image:
                v = c.get(key)
                met = "–" if v is None else ("yes" if v >= goal else "no")
                rows.append([f"{label} ({c['preset_name']})", _f(v), f"≥ {goal}", met, ref])
    for c in cases:
        if c["task"] == "impedance":
            for key, how, ref in (
                ("fig2_order_holds", "by MSE", "paper Fig. 2 (plots the MSE)"),
                ("fig2_order_holds_relative", "by MSE / variance", "stricter than the paper"),
            ):
                holds = c[key]
                rows.append(
                    [
                        f"Fig. 2 ordering {how} ({c['image']})",
                        "holds" if holds else "does not hold",
                        "image fastest, noise slowest",
                        "yes" if holds else "no",
                        ref,
                    ]
                )
    picks = [(_gap(c, psnr_key), _confirmed(c, it_key)) for c in cases for psnr_key, it_key in BLIND_PICKS]
    picks = [(gap, confirmed) for gap, confirmed in picks if gap is not None]
    if picks:
        worst = max(gap for gap, _ in picks)
        confirmed = sum(bool(confirmed) for _, confirmed in picks)
        rows.append(
            [
                "blind stop vs oracle, worst gap (WMV and EMV)",
                _f(worst),
                "≤ 0.5",
                "yes" if worst <= 0.5 else "no",
                f"Wang et al. (ES-WMV); picks confirmed before the run ended: {confirmed} of {len(picks)}",
            ]
        )
    return rows


def _confirmed(c: dict, iteration_key: str) -> Optional[bool]:
    """Whether the detector's patience ran out before the run ended, from the record.

    Computed because the ES-EMV side detector's state is not recorded, and records written before
    ``blind_confirmed`` existed lack it.
    """
    pick, patience = c.get(iteration_key), c.get("es_patience")
    if pick is None or patience is None:
        return None
    return pick_confirmed(pick, c["iterations"], patience)


def _gap(c: dict, key: str) -> Optional[float]:
    if c.get("psnr_best") is None or c.get(key) is None:
        return None
    return c["psnr_best"] - c[key]


def _case_section(c: dict) -> list[str]:
    border = "psnr_final_border_excluded" in c
    what = {"denoise": f"σ = {c.get('sigma_255')}", "sr": f"×{c.get('factor')}", "inpaint": ""}.get(c["task"], "")
    h, w = c["shape"][:2]
    lines = [
        f"### {TITLES.get(c['group'], c['group'])}: {c['image']}, preset {c['preset_name']} ({c['preset']})",
        "",
        f"{what + ', ' if what else ''}{w}×{h} px, {c['iterations']} iterations, seed {c['seed']}, "
        f"{c['device']}{' ' + c['precision'] if c.get('precision') else ''}, {_f(c['seconds'], 1)} s "
        f"({_f(c['seconds'] / max(1, c['iterations']), 2)} s per iteration; ES window {c.get('es_window')}, "
        f"patience {c.get('es_patience')})",
        "",
    ]
    headers = ["method", "PSNR (dB)"] + (["1-px border excluded"] if border else []) + ["iteration", "seconds"]

    def row(label, key, it=None, seconds=None):
        return (
            [label, _f(c.get(key))]
            + ([_f(c.get(f"{key}_border_excluded"))] if border else [])
            + ["–" if it is None else it, "–" if seconds is None else _f(seconds, 1)]
        )

    rows = [
        row(INPUT_LABEL.get(c["task"], "input"), "psnr_observed"),
        row("DIP final output", "psnr_final", c["iterations"], c["seconds"]),
        row("DIP moving average (EMA 0.99)", "psnr_ema", c["iterations"]),
        *(
            [
                row("DIP final output, observed pixels kept", "psnr_final_known_kept", c["iterations"]),
                row("DIP moving average, observed pixels kept", "psnr_ema_known_kept", c["iterations"]),
            ]
            if "psnr_final_known_kept" in c
            else []
        ),
        row("DIP best iterate (oracle: needs ground truth)", "psnr_best", c.get("best_iteration")),
        row("DIP best, no ground truth: ES-WMV", "psnr_blind", c.get("blind_iteration")),
        row("DIP best, no ground truth: ES-EMV", "psnr_blind_emv", c.get("blind_iteration_emv")),
    ]
    excl = c.get("baselines_border_excluded", {})
    for name, value in c.get("baselines", {}).items():
        rows.append(
            [c.get("baseline_labels", {}).get(name, name), _f(value)]
            + ([_f(excl.get(name))] if border else [])
            + ["–", _f(c.get("baseline_seconds", {}).get(name), 2)]
        )
    lines += [markdown_table(headers, rows)] + _case_notes(c)
    figs = c.get("figures", {})
    lines += [
        f"![progress]({figs['progress']})" if "progress" in figs else "",
        f"![curves]({figs['curves']})" if "curves" in figs else "",
        "",
    ]
    return lines


def _case_notes(c: dict) -> list[str]:
    """Why rows of one case compare the way they do (what a reader would otherwise take for a bug)."""
    notes = []
    final_gap = _gap(c, "psnr_final")
    if c.get("final_input") == "clean":
        notes.append(
            "The final output is the network on its unperturbed input z (as the official inpainting "
            "notebook); the best iterate, the ES picks and the moving average come from the fit's outputs, "
            "whose input is perturbed every iteration, so the final output can score above the best iterate."
        )
    elif final_gap is not None and final_gap < 0:
        notes.append(
            "The final output is one more forward pass after the last update (on the last perturbed input, "
            "as the official notebooks); the best iterate and the ES picks are chosen among the outputs "
            "before each update, so the final output can score slightly above them."
        )
    if "psnr_final_known_kept" in c:
        notes.append(
            '"Observed pixels kept": the output with the known pixels put back, only the holes filled in. '
            "The network re-draws every pixel (the known ones only approximately), while classical "
            "inpainting keeps them, so these rows are the ones to compare with the baselines."
        )
    if c.get("note"):
        notes.append(c["note"])
    return [n + "\n" for n in notes]


def _impedance_section(c: dict) -> list[str]:
    its = list(c["relative_loss_at"])
    h, w = c["shape"][:2]
    lines = [
        f"### Noise impedance (Fig. 2): {c['image']}, preset {c['preset_name']}",
        "",
        f"{w}×{h} px, {c['iterations']} iterations per target, seed {c['seed']}, {c['device']}, "
        f"{_f(c['seconds'], 1)} s. Loss = MSE; in brackets MSE / variance of the target (the fraction still "
        "unexplained, 1 = nothing fitted yet).",
        "",
    ]
    rows = [
        [name] + [f"{c['loss_at'][it][name]:.2e} ({c['relative_loss_at'][it][name]:.3g})" for it in its]
        for name in c["relative_loss_at"][its[-1]]
    ]
    lines += [markdown_table(["target"] + [f"iteration {it}" for it in its], rows), ""]
    for measure, label in (("mse", "MSE, what the paper plots"), ("relative", "MSE / variance")):
        f = c["fig2"][measure]
        lines += [f"By {label}:", ""]
        lines += [f"- order at iteration {it} (lowest first): {', '.join(o)}" for it, o in f["order_at"].items()]
        lines += [
            "- order by mean over the run (fastest fit first): "
            + ", ".join(f"{n} ({f['mean_loss'][n]:.3g})" for n in f["speed_order"]),
            f"- the paper's ordering (natural image fastest, noise slowest) "
            f"{'holds' if f['holds'] else 'does NOT hold'} by the mean and at the last iteration",
            "",
        ]
    figs = c.get("figures", {})
    lines += [
        f"![curves]({figs['curves']})" if "curves" in figs else "",
        f"![targets and fits]({figs['progress']})" if "progress" in figs else "",
        "",
    ]
    return lines


def _stopping_section(cases: list[dict]) -> list[str]:
    rows, yes_no = [], {True: "yes", False: "no", None: "–"}
    for c in cases:
        if c.get("psnr_best") is None or c.get("psnr_blind") is None:
            continue
        rows.append(
            [
                f"{c['preset_name']} on {c['image']}",
                f"{_f(c['psnr_best'])} ({c['best_iteration']})",
                f"{_f(c['psnr_blind'])} ({c['blind_iteration']})",
                _f(_gap(c, "psnr_blind")),
                yes_no[_confirmed(c, "blind_iteration")],
                f"{_f(c.get('psnr_blind_emv'))} ({c.get('blind_iteration_emv')})",
                _f(_gap(c, "psnr_blind_emv")),
                yes_no[_confirmed(c, "blind_iteration_emv")],
                _f(c["psnr_final"]),
            ]
        )
    if not rows:
        return []
    return [
        "## Stopping without ground truth",
        "",
        "Oracle = the iterate of highest PSNR (needs the ground truth). ES-WMV: windowed moving variance "
        "of the outputs; ES-EMV: exponential moving variance (α = 0.1); both return the iterate of least "
        'variance (Wang et al., "Early Stopping for Deep Image Prior"). Goal: gap ≤ 0.5 dB. Confirmed: no '
        "lower variance came in the `patience` iterations after the pick before the run ended, i.e. the "
        "detector saw the fit turn; an unconfirmed pick is provisional (the fit may still have been improving, "
        "and the final output may be the better choice).",
        "",
        markdown_table(
            ["case", "oracle best (it)", "ES-WMV (it)", "gap", "confirmed", "ES-EMV (it)", "gap", "confirmed", "final"],
            rows,
        ),
    ]


def _commands(results: dict) -> list[str]:
    """One line per invocation that wrote into this folder (full-size cases run a few at a time)."""
    calls = results.get("invocations") or [{"date": results["date"], "command": results["command"]}]
    if len(calls) == 1:
        return [f"- command: `{calls[0]['command']}`"]
    return ["- commands (each kept the cases of the earlier ones that it did not run again):"] + [
        f"  - {c['date']}: `{c['command']}`"
        + (f" on {c['device']}" if c.get("device") else "")
        + (f", {c['cpu']}" if c.get("cpu") else "")
        for c in calls
    ]


def render_markdown(results: dict) -> str:
    """Write the whole results.md from a results.json dict.

    Parameters
    ----------
    results : dict
        The results.json object of ``python -m dip reproduce``: ``machine`` (``machine_info``), ``settings``,
        ``cases``, ``date``, ``command`` and optionally ``invocations``.

    Returns
    -------
    str
        The Markdown text, ending with one newline.
    """
    m, s, cases = results["machine"], results["settings"], results["cases"]
    lines = [
        "# Reproduction results",
        "",
        f"- date: {results['date']}",
        f"- machine (of the latest command): {m['cpu']} ({m['cores']} cores)"
        + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"),
        f"- fits ran on: {m['device']}; torch {m['torch']}, Python {m['python']}, {m['platform']}",
        *_commands(results),
        f"- settings: iterations × {s['iters_scale']}, max side {s['max_side'] or 'full size'}, "
        f"seed {s['seed']}, "
        f"precision {s.get('precision', 'auto')} (auto: bf16 autocast where the hardware has it)",
        "- PSNR: RGB (grey for Barbara), data range 1, skimage, full image, as the official notebooks; "
        "F16 also with its corrupted 1-px border excluded.",
        "- seconds include reading every output back for the ES-EMV side detector.",
        "",
    ]
    if s.get("reduced"):
        lines += [
            "> **Reduced run** (fewer iterations and/or downscaled images): a smoke test of the pipeline; "
            "its numbers are not comparable with the reference values.",
            "",
        ]
    goal_rows = _goal_rows(cases)
    if goal_rows:
        lines += ["## Goals", "", markdown_table(["case", "DIP", "goal", "met", "reference"], goal_rows)]
    for group in ("denoise", "sr", "inpaint"):
        group_cases = [c for c in cases if c["group"] == group]
        if group_cases:
            lines += [f"## {TITLES[group]}", ""]
            for c in group_cases:
                lines += _case_section(c)
    for c in cases:
        if c["task"] == "impedance":
            lines += ["## Noise impedance", ""] + _impedance_section(c)
    samples = [c for c in cases if c["group"] == "stopping"]
    if samples:
        lines += ["## Stopping study: sample images (lab denoising preset, σ = 25)", ""]
        for c in samples:
            lines += _case_section(c)
    lines += _stopping_section(cases)
    return "\n".join(lines).rstrip() + "\n"
