"""The download bundle of a finished run: what the lab report asks for, in one zip.

``report_zip(folder)`` reads a run folder written by ``dip.runio.write_run`` (or the impedance writer) and
returns the bytes of a zip with:

* ``summary.md``: the final image's PSNR (and EMA, best, blind-stop iterates), run facts, the hyper-parameters
  and the baseline table;
* ``history.csv``: loss (and PSNRs) recorded at every iteration; ``curves.png``: the loss (log scale) and PSNR
  curves drawn from it;
* ``progress_strip.png``: evenly spaced snapshots side by side, labelled with their iteration;
* ``result.png`` and the other images of the folder (EMA, observation, ground truth, best, blind, mask);
* ``metrics.json``, ``config.json`` (the hyper-parameters as data);
* when the folder has ``baselines.json``: it, ``baselines.csv``, ``baselines.md`` and ``baselines/*.png``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Optional, Sequence

from dip.errors import DIPError
from dip.figures import history_curves, png_bytes, progress_strip
from dip.images import load_image
from dip.runio import read_baselines, read_history


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; floats get 2 decimals, None becomes an en dash."""
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
    """Rows (method, PSNR, seconds, settings) with DIP's final output first when ``metrics`` is given."""
    rows = []
    if metrics is not None:
        rows.append(["Deep Image Prior (final)", metrics.get("psnr_final"), metrics.get("seconds"),
                     f"{metrics.get('iterations')} iterations, preset {metrics.get('preset')}"])
        for key, label in (("psnr_ema", "EMA of outputs"), ("psnr_final_known_kept", "final, observed pixels kept"),
                           ("psnr_ema_known_kept", "EMA, observed pixels kept")):
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


def summary_markdown(metrics: dict, config: dict, baselines: list[dict]) -> str:
    """The bundle's summary.md: PSNRs, run facts, hyper-parameters, baselines."""
    def db(v):
        return "–" if v is None else f"{v:.2f} dB"
    lines = [f"# Deep Image Prior run: {metrics.get('task', '?')}, preset {metrics.get('preset', '?')}", ""]
    rows = [["final image", db(metrics.get("psnr_final")), metrics.get("iterations")],
            ["moving average (EMA)", db(metrics.get("psnr_ema")), None],
            ["best iterate (needs ground truth)", db(metrics.get("psnr_best")), metrics.get("best_iteration")],
            ["best, no ground truth (ES-WMV)" + PICK_STATE.get(metrics.get("blind_confirmed"), ""),
             db(metrics.get("psnr_blind")), metrics.get("blind_iteration")],
            ["degraded input", db(metrics.get("psnr_observed")), None]]
    for key, label in (("psnr_final_border_excluded", "final, 1-px border excluded"),
                       ("psnr_ema_border_excluded", "EMA, 1-px border excluded"),
                       ("psnr_final_known_kept", "final, observed pixels kept (only holes filled)"),
                       ("psnr_ema_known_kept", "EMA, observed pixels kept (only holes filled)")):
        if metrics.get(key) is not None:
            rows.append([label, db(metrics[key]), None])
    lines += ["PSNR against the ground truth (RGB, data range 1, skimage, full image):", "",
              markdown_table(["image", "PSNR", "iteration"], rows)]
    if isinstance(metrics.get("targets"), dict):  # noise impedance: one fit per target
        sci = (lambda v: None if v is None else f"{v:.3e}")
        rows = [[name, sci(t.get("final_loss")), sci(t.get("min_loss")), t.get("psnr_fit"), t.get("iterations")]
                for name, t in metrics["targets"].items()]
        lines += ["Noise impedance, one fit per target:", "",
                  markdown_table(["target", "final loss", "min loss", "PSNR of fit", "iterations"], rows)]
    facts = [(k, metrics.get(k)) for k in ("iterations", "seconds", "device", "seed", "parameters", "shape")
             if metrics.get(k) is not None]
    lines += ["## Run", "", *[f"- {k}: {v}" for k, v in facts], ""]
    lines += ["## Hyper-parameters", "", *[f"- {k}: {v}" for k, v in _flatten(config)], ""]
    if baselines:
        lines += ["## Baselines", "", markdown_table(["method", "PSNR (dB)", "seconds", "settings"],
                                                     baseline_rows(baselines, metrics))]
    return "\n".join(lines)


def _snapshot_frames(folder: Path) -> list[tuple[str, object]]:
    snaps = sorted((folder / "snapshots").glob("*.png")) if (folder / "snapshots").is_dir() else []
    frames = []
    for p in snaps:
        label = f"it {int(p.stem)}" if p.stem.isdigit() else p.stem
        frames.append((label, load_image(p, mode="rgb")))
    return frames


def report_zip(folder: str | Path) -> bytes:
    """The download bundle of a run folder as zip bytes (see the module docstring for its contents).

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
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("summary.md", summary_markdown(metrics, config, baselines))
        for name in ("metrics.json", "config.json", "history.csv", "baselines.json"):
            if (folder / name).is_file():
                z.write(folder / name, name)
        for p in sorted(folder.glob("*.png")):
            z.write(p, p.name)
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
            z.writestr("baselines.md", markdown_table(["method", "PSNR (dB)", "seconds", "settings"],
                                                      baseline_rows(baselines, metrics)))
            for p in sorted((folder / "baselines").glob("*.png")) if (folder / "baselines").is_dir() else []:
                z.write(p, f"baselines/{p.name}")
    return buf.getvalue()
