"""Finished runs on disk (``runs/<id>/``): list them, and read one back as a JobView for the same panels.

No Streamlit here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from dip.fit import StepRecord
from dip.images import load_image
from dip.impedance import target_slug
from dip.runio import read_run
from ui.config import SNAPSHOT_SIDE
from ui.imaging import preview
from ui.jobs import JobView

TASK_TITLES = {"impedance": "Noise impedance", "denoise": "Denoising", "sr": "Super-resolution",
               "inpaint": "Inpainting"}
MAX_LISTED = 200


def run_folder(runs_dir: Path, run_id: str) -> Optional[Path]:
    """The folder of ``run_id`` if it holds a finished run (metrics.json), else None."""
    if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
        return None
    folder = Path(runs_dir) / run_id
    return folder if (folder / "metrics.json").is_file() else None


def list_runs(runs_dir: Path) -> list[dict]:
    """Newest first: one dict per run folder with its id and metrics.json (unreadable folders are skipped)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    rows = []
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True):
        try:
            metrics = json.loads((folder / "metrics.json").read_text())
        except (OSError, ValueError):
            continue
        rows.append({"id": folder.name, **metrics, "source": source_name(metrics)})
        if len(rows) >= MAX_LISTED:
            break
    return rows


def source_name(metrics: dict) -> Optional[str]:
    """The image a run restored: the app records the upload's name, ``dip reproduce`` its case's image, so its
    run folders (docs/runs/) open here too."""
    return metrics.get("source") or metrics.get("image")


def _records(rows: list[dict]) -> dict[str, list]:
    series: dict[str, list] = {}
    fields = StepRecord.__dataclass_fields__
    for row in rows:
        rec = StepRecord(**{k: row.get(k) for k in fields if k in row})
        series.setdefault(row.get("target") or "", []).append(rec)
    return series


def _snapshots(folder: Path) -> list:
    paths = sorted((folder / "snapshots").glob("*.png")) if (folder / "snapshots").is_dir() else []
    return [(int(p.stem), preview(load_image(p, mode="rgb"), SNAPSHOT_SIDE)) for p in paths if p.stem.isdigit()]


def load_view(folder: Path) -> JobView:
    """A finished run folder as a JobView: status, history, snapshots and images."""
    run = read_run(folder)
    metrics = run["metrics"]
    history = _records(run["history"])
    images = {k: preview(v) for k, v in run["images"].items()}
    snapshots = {"": _snapshots(folder)} if metrics.get("task") != "impedance" else {}
    for name, target in (metrics.get("targets") or {}).items():
        sub = folder / target_slug(name)
        snapshots[name] = _snapshots(sub)
        for kind in ("target", "result"):
            if (sub / f"{kind}.png").is_file():
                images[f"{kind}:{name}"] = preview(load_image(sub / f"{kind}.png", mode="rgb"))
    status = metrics.get("status") or ("cancelled" if metrics.get("cancelled") else "done")
    done = sum(len(v) for v in history.values())
    finished = os.path.getmtime(folder / "metrics.json")
    info = {"source": source_name(metrics), "preset": metrics.get("preset"), "blind": metrics.get("blind"),
            "psnr_degraded": metrics.get("psnr_observed"), "images": {}}
    for rec in run.get("baselines", []):
        if rec.get("image") and (folder / rec["image"]).is_file():
            images[rec["name"]] = preview(load_image(folder / rec["image"], mode="rgb"))
    outcome = {"metrics": metrics, "run_dir": str(folder), "images": images, "baselines": run.get("baselines", [])}
    return JobView(folder.name, metrics.get("task", "?"), status, done, done, history, snapshots, info, outcome,
                   metrics.get("error"), finished, None, finished, None)
