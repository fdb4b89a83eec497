"""The download bundle of a finished run: what the lab report asks for, in one zip.

``report_zip(folder)`` reads a run folder written by ``dip.core.runio.write_run`` (or the impedance writer) and
returns the bytes of a zip with:

* ``summary.md``: the final image's PSNR (and EMA, best, blind-stop iterates), run facts, the hyper-parameters
  and the baseline table;
* ``history.csv``: loss (and PSNRs) recorded at every iteration; ``curves.png``: the loss (log scale) and PSNR
  curves drawn from it;
* ``progress_strip.png``: evenly spaced snapshots side by side, labelled with their iteration;
* ``result.png`` and the other images of the folder (EMA, observation, ground truth, best, blind, mask);
* noise impedance: each target's final fit and the target itself, ``fit_<target>.png`` and ``target_<target>.png``
  (e.g. ``fit_image_plus_noise.png``);
* ``metrics.json``, ``config.json`` (the hyper-parameters as data);
* when the folder has ``baselines.json``: it, ``baselines.csv``, ``baselines.md`` and ``baselines/*.png``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from dip.core.errors import DIPError
from dip.core.images import load_image
from dip.core.impedance import target_slug
from dip.core.registry import TASKS
from dip.core.runio import read_baselines, read_history
from dip.lab.figures import history_curves, png_bytes, progress_strip


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Format a GitHub markdown table; floats get 2 decimals, None becomes an en dash.

    Parameters
    ----------
    headers : sequence of str
        Column titles.
    rows : sequence of sequence
        Cells; "|" in a cell is escaped.

    Returns
    -------
    str
        The table, ending with a newline.
    """

    def cell(v):
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def baseline_rows(records: list[dict], metrics: Optional[dict] = None) -> list[list]:
    """Make the baseline table's rows (method, PSNR, seconds, settings).

    Parameters
    ----------
    records : list of dict
        Baseline records (``read_baselines``).
    metrics : dict or None, optional
        The run's metrics.json; when given, DIP's final output comes first, then its EMA and known-pixels-kept
        PSNRs where recorded.

    Returns
    -------
    list of list
        One row per method; PSNR in dB and seconds may be None.
    """
    rows = []
    if metrics is not None:
        rows.append(
            [
                "Deep Image Prior (final)",
                metrics.get("psnr_final"),
                metrics.get("seconds"),
                f"{metrics.get('iterations')} iterations, preset {metrics.get('preset')}",
            ]
        )
        for key, label in (
            ("psnr_ema", "EMA of outputs"),
            ("psnr_final_known_kept", "final, observed pixels kept"),
            ("psnr_ema_known_kept", "EMA, observed pixels kept"),
        ):
            if metrics.get(key) is not None:
                rows.append([f"Deep Image Prior ({label})", metrics[key], metrics.get("seconds"), ""])
    rows += [[r.get("label", r["name"]), r.get("psnr"), r.get("seconds"), r.get("settings", "")] for r in records]
    return rows


def _baselines_csv(records: list[dict]) -> str:
    buf = io.StringIO()
    fields = ["name", "label", "psnr", "psnr_border_excluded", "seconds", "settings", "image"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow(r)
    return buf.getvalue()


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


# Whether the ES-WMV pick was confirmed: the run went on for the detector's patience with no lower variance after it.
PICK_STATE = {True: ", confirmed", False: ", provisional: the run ended before the detector's patience ran out"}

TASK_NAMES = {name: task.title for name, task in TASKS.items()}  # dip.core.registry: one title per task
MASK_KINDS = {
    "text": "text mask",
    "box": "box mask",
    "bernoulli": "random pixels",
    "upload": "uploaded mask",
    "draw": "drawn mask",
    "alpha": "transparency mask",
    "file": "mask file",
}
"""An inpainting mask's kind, as the app records it (metrics.json ``mask``) or a preset names it (``mask_kind``)."""
TASK_KEYS = (
    "name",
    "task",
    "description",
    "source",
    "sample",
    "sigma_255",
    "factor",
    "mask_kind",
    "keep_fraction",
    "params",
)
"""config.json keys that are not hyper-parameters of the fit: the preset's names, and the task settings that
``task_settings`` lists for the tasks they apply to."""


def mask_kind(metrics: dict, config: dict) -> Optional[str]:
    """Tell the kind of mask an inpainting run used (a ``MASK_KINDS`` key), or None when it is not known.

    The app records the mask the visitor chose in metrics.json (``mask``). A command-line run (no ``job_id``)
    generated its preset's ``mask_kind`` (config.json; "file" for the notebook presets' mask files). An app run
    from before the app recorded its mask always passed its own mask, so its preset's kind says nothing: None.

    Parameters
    ----------
    metrics, config : dict
        The run's metrics.json and config.json.

    Returns
    -------
    str or None
    """
    kind = metrics.get("mask")
    if isinstance(kind, str) and kind:
        return kind
    if "job_id" not in metrics and isinstance(config.get("mask_kind"), str):
        return config["mask_kind"]
    return None


def kept_fraction(metrics: dict, config: dict) -> Optional[float]:
    """Tell the fraction of known pixels of an inpainting run's mask.

    Parameters
    ----------
    metrics, config : dict
        The run's metrics.json and config.json.

    Returns
    -------
    float or None
        In [0, 1]: measured (metrics ``kept_fraction``), else a command-line Bernoulli mask's setting, else None.
    """
    kept = metrics.get("kept_fraction")
    if isinstance(kept, (int, float)):
        return float(kept)
    if (
        mask_kind(metrics, config) == "bernoulli"
        and "job_id" not in metrics
        and isinstance(config.get("keep_fraction"), (int, float))
    ):
        return float(config["keep_fraction"])
    return None


def iterations_text(metrics: dict, config: dict) -> Optional[str]:
    """Describe the iterations actually run, e.g. "30", "30 of 1800 (stopped early)"; impedance: per target.

    Parameters
    ----------
    metrics, config : dict
        The run's metrics.json and config.json (its ``fit.iterations`` is the plan).

    Returns
    -------
    str or None
        None when metrics.json does not record them.
    """
    planned = (config.get("fit") or {}).get("iterations") if isinstance(config.get("fit"), dict) else None
    targets = metrics.get("targets")
    if isinstance(targets, dict) and targets:  # noise impedance: metrics' ``iterations`` is the plan per target
        done = sorted({t.get("iterations") for t in targets.values() if isinstance(t, dict)} - {None})
        if not done:
            return None
        text = str(done[0]) if len(done) == 1 else f"{done[0]}–{done[-1]}"
        return text + " per target" + (f" (of {planned} planned)" if planned and done != [planned] else "")
    done = metrics.get("iterations")
    if done is None:
        return None
    return f"{done} of {planned} (stopped early)" if planned and planned != done else str(done)


def working_size(metrics: dict) -> Optional[str]:
    """Describe the working image's size from metrics ``shape`` (H, W[, C]), e.g. "256x192 px" (None if absent)."""
    shape = metrics.get("shape")
    if isinstance(shape, (list, tuple)) and len(shape) >= 2 and all(isinstance(v, int) for v in shape[:2]):
        return f"{shape[1]}x{shape[0]} px"
    return None


def _number(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def task_parameters(task: str, config: dict) -> list[tuple[str, float]]:
    """Read a registered task's own numeric parameters from a run's config.json.

    Parameters
    ----------
    task : str
        A task name of ``dip.core.registry``.
    config : dict
        The run's config.json: a preset's fields, with the settings of later tasks under ``params``.

    Returns
    -------
    list of tuple of (str, float)
        (name, value) of each of ``Task.parameters`` that the file holds as a number, e.g. [("quality", 10)].
    """
    params = config.get("params") if isinstance(config.get("params"), dict) else {}
    out = []
    for name in TASKS[task].parameters if task in TASKS else ():
        value = params.get(name, config.get(name))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((name, value))
    return out


def task_settings(metrics: dict, config: dict) -> list[tuple[str, str]]:
    """List the settings that distinguish runs of this task, only those that apply to it.

    Parameters
    ----------
    metrics, config : dict
        The run's metrics.json and config.json.

    Returns
    -------
    list of tuple of (str, str)
        (name, value): noise σ in 0-255 units (denoising, impedance), factor (super-resolution), mask and pixels
        kept (inpainting).
    """
    task, out = metrics.get("task") or config.get("task"), []
    sigma = config.get("sigma_255")
    if task == "denoise":
        if metrics.get("blind"):
            out.append(("noise", "the image's own (no ground truth)"))
        elif isinstance(sigma, (int, float)):
            out.append(("noise σ", "0 (no noise added)" if sigma == 0 else f"{_number(sigma)} (0–255 scale)"))
    elif task == "impedance" and isinstance(sigma, (int, float)):
        out.append(("noise σ of the noisy targets", f"{_number(sigma)} (0–255 scale)"))
    elif task == "sr" and config.get("factor") is not None:
        out.append(("upscaling factor", f"×{_number(config['factor'])}"))
    elif task == "inpaint":
        kind = mask_kind(metrics, config)
        out.append(("mask", MASK_KINDS.get(kind, kind) if kind else "not recorded"))
        kept = kept_fraction(metrics, config)
        if kept is not None:
            out.append(("pixels kept", f"{kept:.0%}"))
    elif task in TASKS:  # a task registered later: its own parameters, as config.json holds them
        out += [(name, _number(value)) for name, value in task_parameters(task, config)]
    return out


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~$:])")  # a file name in summary.md reads as text


def summary_markdown(metrics: dict, config: dict, baselines: list[dict]) -> str:
    """Write the bundle's summary.md: PSNRs, run facts, the task's settings, hyper-parameters, baselines.

    Parameters
    ----------
    metrics, config : dict
        The run's metrics.json and config.json.
    baselines : list of dict
        Baseline records (``read_baselines``); the table is left out when empty.

    Returns
    -------
    str
        Markdown; PSNRs in dB against the ground truth.
    """

    def db(v):
        if v is None:
            return "–"
        return f"{v:.2f} dB" if math.isfinite(v) else "∞ (identical to the ground truth)"

    task = metrics.get("task") or config.get("task")
    lines = [f"# Deep Image Prior run: {TASK_NAMES.get(task, task or '?')}, preset {metrics.get('preset', '?')}", ""]
    rows = [
        ["final image", db(metrics.get("psnr_final")), metrics.get("iterations")],
        ["moving average (EMA)", db(metrics.get("psnr_ema")), None],
        ["best iterate (needs ground truth)", db(metrics.get("psnr_best")), metrics.get("best_iteration")],
        [
            "best, no ground truth (ES-WMV)" + PICK_STATE.get(metrics.get("blind_confirmed"), ""),
            db(metrics.get("psnr_blind")),
            metrics.get("blind_iteration"),
        ],
        ["bicubic-upsampled input" if task == "sr" else "degraded input", db(metrics.get("psnr_observed")), None],
    ]
    for key, label in (
        ("psnr_final_border_excluded", "final, 1-px border excluded"),
        ("psnr_ema_border_excluded", "EMA, 1-px border excluded"),
        ("psnr_final_known_kept", "final, observed pixels kept (only holes filled)"),
        ("psnr_ema_known_kept", "EMA, observed pixels kept (only holes filled)"),
    ):
        if metrics.get(key) is not None:
            rows.append([label, db(metrics[key]), None])
    lines += [
        "PSNR against the ground truth (RGB, data range 1, skimage, full image):",
        "",
        markdown_table(["image", "PSNR", "iteration"], rows),
    ]
    if isinstance(metrics.get("targets"), dict):  # noise impedance: one fit per target
        sci = lambda v: None if v is None else f"{v:.3e}"
        rows = [
            [
                name,
                sci(t.get("final_loss")),
                sci(t.get("min_loss")),
                t.get("psnr_fit"),
                t.get("iterations"),
                f"fit_{target_slug(name)}.png",
            ]
            for name, t in metrics["targets"].items()
            if isinstance(t, dict)
        ]
        lines += [
            "Noise impedance, one fit per target:",
            "",
            markdown_table(["target", "final loss", "min loss", "PSNR of fit", "iterations", "final fit"], rows),
        ]
    image = metrics.get("source") or metrics.get("image")
    settings = [
        ("image", None if image is None else _MD_SPECIAL.sub(r"\\\1", str(image))),
        ("task", TASK_NAMES.get(task, task or "?")),
        ("preset", metrics.get("preset") or config.get("name")),
        *task_settings(metrics, config),
        ("working size", working_size(metrics)),
        ("iterations", iterations_text(metrics, config)),
    ]
    lines += ["## Settings", "", *[f"- {k}: {v}" for k, v in settings if v is not None], ""]
    facts = [(k, metrics.get(k)) for k in ("seconds", "device", "seed", "parameters") if metrics.get(k) is not None]
    lines += ["## Run", "", *[f"- {k}: {v}" for k, v in facts], ""]
    fit_iterations = iterations_text(metrics, config)
    hyper = [
        (k, fit_iterations if k == "fit.iterations" else v)
        for k, v in _flatten(config)
        if k not in TASK_KEYS and not (k == "fit.iterations" and fit_iterations is None)
    ]
    lines += ["## Hyper-parameters", "", *[f"- {k}: {v}" for k, v in hyper], ""]
    if baselines:
        lines += [
            "## Baselines",
            "",
            markdown_table(["method", "PSNR (dB)", "seconds", "settings"], baseline_rows(baselines, metrics)),
        ]
    return "\n".join(lines)


def _snapshot_frames(folder: Path) -> list[tuple[str, object]]:
    snaps = sorted((folder / "snapshots").glob("*.png")) if (folder / "snapshots").is_dir() else []
    frames = []
    for p in snaps:
        label = f"it {int(p.stem)}" if p.stem.isdigit() else p.stem
        frames.append((label, load_image(p, mode="rgb")))
    return frames


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def impedance_fits(folder: str | Path, metrics: dict) -> dict[str, Path]:
    """Find a noise impedance run's target folders by target name.

    Parameters
    ----------
    folder : str or Path
        The run folder.
    metrics : dict
        Its metrics.json; ``targets`` names the targets.

    Returns
    -------
    dict of str to Path
        In the run's order; ``<slug>/`` holds ``result.png``, the final fit, and ``target.png``. Names whose folder
        name is not a plain name are left out (the name comes from the file and must not lead out of the folder).
        Empty for other runs.
    """
    targets = metrics.get("targets")
    if not isinstance(targets, dict):
        return {}
    out = {}
    for name in targets:
        slug = target_slug(str(name))
        if _PLAIN_NAME.fullmatch(slug) and ".." not in slug and (Path(folder) / slug).is_dir():
            out[str(name)] = Path(folder) / slug
    return out


def report_zip(folder: str | Path) -> bytes:
    """Build the download bundle of a run folder (see the module docstring for its contents).

    Parameters
    ----------
    folder : str or Path
        A finished run folder.

    Returns
    -------
    bytes
        The zip file.

    Raises
    ------
    DIPError
        When ``folder`` is not a run folder (no metrics.json).
    """
    folder = Path(folder)
    if not (folder / "metrics.json").is_file():
        raise DIPError(f"{folder} is not a finished run folder (no metrics.json); finish or re-run the job first.")
    metrics = json.loads((folder / "metrics.json").read_text())
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    baselines = read_baselines(folder)
    summary = dict(metrics)
    if metrics.get("task") == "inpaint" and kept_fraction(metrics, config) is None and (folder / "mask.png").is_file():
        summary["kept_fraction"] = float((load_image(folder / "mask.png", mode="grey") > 0.5).mean())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("summary.md", summary_markdown(summary, config, baselines))
        for name in ("metrics.json", "config.json", "history.csv", "baselines.json"):
            if (folder / name).is_file():
                z.write(folder / name, name)
        for p in sorted(folder.glob("*.png")):
            z.write(p, p.name)
        for sub in impedance_fits(folder, metrics).values():
            for kind in ("fit", "target"):
                path = sub / ("result.png" if kind == "fit" else "target.png")
                if path.is_file():
                    z.write(path, f"{kind}_{sub.name}.png")
        if (folder / "history.csv").is_file():
            rows = read_history(folder / "history.csv")
            if rows:
                markers = {"best": metrics.get("best_iteration"), "blind": metrics.get("blind_iteration")}
                z.writestr("curves.png", png_bytes(history_curves(rows, markers=markers)))
        frames = _snapshot_frames(folder)
        if frames:
            z.writestr("progress_strip.png", png_bytes(progress_strip(frames)))
        if baselines:
            z.writestr("baselines.csv", _baselines_csv(baselines))
            z.writestr(
                "baselines.md",
                markdown_table(["method", "PSNR (dB)", "seconds", "settings"], baseline_rows(baselines, metrics)),
            )
            for p in sorted((folder / "baselines").glob("*.png")) if (folder / "baselines").is_dir() else []:
                z.write(p, f"baselines/{p.name}")
    return buf.getvalue()
