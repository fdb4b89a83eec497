"""Write and read a finished run's folder, shared by the command line and the app.

Layout of ``DIR``: result.png, result_ema.png, observed.png (degraded input in the estimate's space),
[ground_truth.png, best.png, blind.png, mask.png], history.csv (one row per iteration), snapshots/NNNNN.png,
metrics.json and config.json (the preset as plain data); optionally baselines.json and baselines/NAME.png
(classical methods, ``write_baselines``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from dip.degrade import keep_known
from dip.fit import FitResult, Snapshot, StepRecord
from dip.images import load_image, save_image

HISTORY_FIELDS = [f.name for f in dataclasses.fields(StepRecord)]


def write_history(records: Iterable[StepRecord], path: Path, *, extra: Optional[dict] = None) -> None:
    """history.csv: one row per record; ``extra`` adds constant columns (e.g. the impedance target)."""
    extra = extra or {}
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*extra, *HISTORY_FIELDS])
        if new:
            writer.writeheader()
        for r in records:
            writer.writerow({**extra, **dataclasses.asdict(r)})


def read_history(path: Path) -> list[dict]:
    """Rows of a history.csv with numbers parsed (empty cells become None)."""
    def parse(v: str):
        if v in ("", "None"):
            return None
        if v in ("True", "False"):
            return v == "True"
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_snapshots(snapshots: Iterable[Snapshot], folder: Path) -> None:
    """snapshots/NNNNN.png (current output) for each snapshot."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in snapshots:
        save_image(s.image, folder / f"{s.iteration:05d}.png")


def write_run(folder: str | Path, *, metrics: dict, config: dict, result: FitResult, degraded: np.ndarray,
              x_true: Optional[np.ndarray] = None, mask: Optional[np.ndarray] = None,
              snapshots: Iterable[Snapshot] = ()) -> Path:
    """Write everything a finished run produced; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_image(result.output, folder / "result.png")
    save_image(result.ema, folder / "result_ema.png")
    save_image(degraded, folder / "observed.png")
    if mask is not None:  # inpainting: the user's image with only its holes filled in
        save_image(keep_known(result.output, degraded, mask), folder / "result_known_kept.png")
    optional = {"ground_truth.png": x_true, "best.png": result.best, "blind.png": result.blind,
                "mask.png": None if mask is None else mask[..., None]}
    for name, image in optional.items():
        if image is not None:
            save_image(image, folder / name)
    (folder / "history.csv").unlink(missing_ok=True)
    write_history(result.history, folder / "history.csv")
    write_snapshots(snapshots, folder / "snapshots")
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "config.json", config)
    return folder


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")


def _jsonable(o):
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def preset_as_dict(preset) -> dict:
    """A preset as plain JSON-ready data (config.json)."""
    return json.loads(json.dumps(dataclasses.asdict(preset), default=_jsonable))


def read_run(folder: str | Path) -> dict:
    """A run folder as a dict: metrics, config, history rows, and the images that exist (float arrays)."""
    folder = Path(folder)
    out = {"folder": folder, "metrics": json.loads((folder / "metrics.json").read_text()),
           "config": json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {},
           "history": read_history(folder / "history.csv") if (folder / "history.csv").exists() else [],
           "images": {}}
    for p in sorted(folder.glob("*.png")):
        out["images"][p.stem] = load_image(p, mode="keep")
    out["snapshots"] = sorted((folder / "snapshots").glob("*.png")) if (folder / "snapshots").exists() else []
    out["baselines"] = read_baselines(folder)
    return out


BASELINES_VERSION = 1


def write_baselines(folder: str | Path, baselines: Iterable, *, border_psnr: Optional[dict] = None) -> Path:
    """Write ``baselines.json`` (and ``baselines/NAME.png`` for records that carry an image) into a run folder.

    Parameters
    ----------
    baselines : ``dip.baselines.Baseline`` objects, or dicts with at least ``name`` and ``psnr``.
    border_psnr : optional {name: PSNR with the image border excluded} (F16).

    The file is ``{"version": 1, "baselines": [{"name": "nlm", "label": "Non-local means", "psnr": 31.05,
    "seconds": 0.8, "settings": "h = 0.6 sigma, ...", "image": "baselines/nlm.png"}, ...]}``; ``psnr`` is None
    without ground truth, ``image`` is absent when no image was given, ``psnr_border_excluded`` is added
    when ``border_psnr`` has the name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for b in baselines:
        rec = dict(b.as_record()) if hasattr(b, "as_record") else {k: v for k, v in dict(b).items() if k != "image"}
        image = getattr(b, "image", None)
        if isinstance(image, np.ndarray):
            save_image(image, folder / "baselines" / f"{rec['name']}.png")
            rec["image"] = f"baselines/{rec['name']}.png"
        if border_psnr and rec["name"] in border_psnr:
            rec["psnr_border_excluded"] = border_psnr[rec["name"]]
        records.append(rec)
    path = folder / "baselines.json"
    write_json(path, {"version": BASELINES_VERSION, "baselines": records})
    return path


def read_baselines(folder: str | Path) -> list[dict]:
    """The records of a run folder's ``baselines.json`` (empty list when there is none)."""
    path = Path(folder) / "baselines.json"
    if not path.exists():
        return []
    return list(json.loads(path.read_text()).get("baselines", []))
