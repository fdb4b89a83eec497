"""Finished runs on disk (``runs/<id>/``): list them, and read one back as a JobView for the same panels.

No Streamlit here.
"""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Optional

from dip.core.errors import RunFolderError
from dip.core.fit import StepRecord
from dip.core.images import load_image
from dip.core.impedance import target_slug
from dip.core.presets import DEFAULT_PRESET
from dip.core.records import JobOutcome, RunMetrics
from dip.core.registry import TASKS
from dip.core.runio import check_metrics, read_json_object, read_run, read_run_image
from dip.lab.report import MASK_KINDS, TASK_NAMES, kept_fraction, mask_kind, task_parameters
from ui.service.config import SNAPSHOT_SIDE
from ui.service.imaging import preview
from ui.service.jobs import JobView

TASK_TITLES = TASK_NAMES
MAX_LISTED = 200
MAX_SCANNED = 1000  # folders looked at per listing, readable or not
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""A run id as the URL may name it: a plain folder name, not hidden, at most 100 characters."""


def valid_run_id(run_id: object) -> bool:
    """True when ``run_id`` can name a folder of the runs directory (no path, no hidden name, short)."""
    return isinstance(run_id, str) and RUN_ID.fullmatch(run_id) is not None and ".." not in run_id


def run_folder(runs_dir: Path, run_id: str) -> Optional[Path]:
    """The folder of ``run_id`` if it holds a finished run (metrics.json), else None.

    Ids that are not plain folder names (``valid_run_id``: paths, ``..``, hidden names, over 100 characters,
    characters outside ``[A-Za-z0-9._-]``) are refused before the disk is touched.
    """
    if not valid_run_id(run_id):
        return None
    folder = Path(runs_dir) / run_id
    return folder if (folder / "metrics.json").is_file() else None


@dataclass(frozen=True, kw_only=True)
class RunRow:
    """One listed run: its metrics.json and what tells it from other runs (``describe``)."""

    id: str
    """The folder's name."""
    metrics: RunMetrics
    source: Optional[str]
    """The image it restored (``RunMetrics.source_name``)."""
    setting: Optional[str]
    """Its distinguishing setting in a few words (``run_setting``)."""
    planned: Optional[int]
    """The iterations its settings asked for (config.json); None when not recorded."""
    started: Optional[datetime]
    """When the app accepted it, else the time in its id, else when metrics.json was written."""


class RunListing(NamedTuple):
    """``scan_runs``' answer: the readable runs and the folders left out."""

    rows: list[RunRow]
    """Newest first (``list_runs``' rows)."""
    skipped: list[tuple[str, str]]
    """(folder name, reason) of run folders that could not be read, newest first; the reason names the file
    and what is wrong, e.g. ``("20260101-x", "metrics.json is not a JSON object (it holds a list).")``."""


def scan_runs(runs_dir: Path) -> RunListing:
    """The runs directory's run folders, newest (largest name) first, at most ``MAX_LISTED`` rows.

    Hidden folders (``.NAME``: the temporaries of ``dip.core.runio.atomic_folder``) and plain files are passed over
    silently; a folder whose name is not a run id or whose metrics.json is missing, damaged or not an object is
    in ``skipped`` with the reason. Only metrics.json is read here: damage elsewhere (images, history) shows when
    the run is opened (``load_view``). Other files in a folder (e.g. access.json) are not looked at.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return RunListing([], [])
    rows, skipped = [], []
    folders = sorted(
        (p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir()), key=lambda p: p.name, reverse=True
    )
    for folder in folders[:MAX_SCANNED]:
        if not valid_run_id(folder.name):
            skipped.append((folder.name, "its name is not a valid run id (letters, digits, '.', '_', '-')."))
            continue
        try:
            data = read_json_object(folder / "metrics.json", run_id=folder.name)
            check_metrics(data, run_id=folder.name)
        except RunFolderError as err:
            skipped.append((folder.name, err.reason))
            continue
        rows.append(describe(folder, RunMetrics.from_dict(data, run_id=folder.name)))
        if len(rows) >= MAX_LISTED:
            break
    return RunListing(rows, skipped)


def describe(folder: Path, metrics: RunMetrics) -> RunRow:
    """The listing's row of a run folder: its metrics and what tells it from others of its task, read from the
    folder (``RunRow``). A missing or damaged config.json only leaves the setting shorter: the run is still
    listed."""
    try:
        config = read_json_object(folder / "config.json", run_id=folder.name, required=False) or {}
    except (RunFolderError, OSError):
        config = {}
    measured, mask = metrics, folder / "mask.png"
    if metrics.task == "inpaint" and kept_fraction(metrics.to_dict(), config) is None and mask.is_file():
        try:  # an app run from before the app recorded its mask: measure the mask it saved
            measured = replace(metrics, kept_fraction=_kept(str(mask), mask.stat().st_mtime_ns))
        except Exception:  # a damaged mask shows when the run is opened, not here
            pass
    fit = config.get("fit") if isinstance(config.get("fit"), dict) else {}
    planned = fit.get("iterations")
    return RunRow(
        id=folder.name,
        metrics=metrics,
        source=metrics.source_name,
        setting=run_setting(measured, config),
        planned=planned if isinstance(planned, int) and not isinstance(planned, bool) else None,
        started=_started(folder, metrics),
    )


@functools.lru_cache(maxsize=512)
def _kept(path: str, mtime_ns: int) -> float:
    return round(float((load_image(path, mode="grey") > 0.5).mean()), 4)


def run_setting(metrics: RunMetrics, config: dict) -> Optional[str]:
    """A run's distinguishing setting in a few words, only what applies to its task: "σ 25", "no noise",
    "own noise (blind)" (denoising), "×4" (super-resolution), "text mask · 87% kept" (inpainting), "noise σ 25"
    (impedance); None when the run records none."""
    task, sigma = metrics.task, config.get("sigma_255")
    number = lambda v: f"{v:g}"
    if task == "denoise":
        if metrics.blind:
            return "own noise (blind)"
        if isinstance(sigma, (int, float)):
            return "no noise (σ 0)" if sigma == 0 else f"σ {number(sigma)}"
    elif task == "impedance" and isinstance(sigma, (int, float)):
        return f"noise σ {number(sigma)}"
    elif task == "sr" and isinstance(config.get("factor"), (int, float)):
        return f"×{number(config['factor'])}"
    elif task == "inpaint":
        as_dict = metrics.to_dict()  # dip.lab.report reads the file's dict (it also tells app runs by job_id)
        kind, kept = mask_kind(as_dict, config), kept_fraction(as_dict, config)
        parts = [MASK_KINDS.get(kind, str(kind)) if kind else "mask"]
        if kept is not None:
            parts.append(f"{kept:.0%} kept")
        return " · ".join(parts)
    elif task in TASKS:  # a task registered later: its own parameters, as config.json holds them
        shown = [f"{name} {number(value)}" for name, value in task_parameters(task, config)]
        return " · ".join(shown) or None
    return None


_ID_TIME = re.compile(r"(\d{8})(?:-(\d{6}))?")


def _started(folder: Path, metrics: RunMetrics) -> Optional[datetime]:
    created = metrics.created
    if created is not None:
        try:
            return datetime.strptime(created, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
    m = _ID_TIME.match(folder.name)
    if m:
        try:
            return datetime.strptime(m.group(1) + (m.group(2) or ""), "%Y%m%d%H%M%S" if m.group(2) else "%Y%m%d")
        except ValueError:
            pass
    try:
        return datetime.fromtimestamp((folder / "metrics.json").stat().st_mtime)
    except OSError:
        return None


def when(started: Optional[datetime], now: Optional[float] = None) -> str:
    """A run's start as people say it: "17:42 Dec 1" ("Dec 1 2025" in another year; "–" when unknown)."""
    if started is None:
        return "–"
    year = datetime.fromtimestamp(now if now is not None else time.time()).year
    text = f"{started:%H:%M} {started:%b} {started.day}"
    return text + (f" {started.year}" if started.year != year else "")


def task_title(metrics: RunMetrics) -> str:
    """The task's name, and the preset's when it is not the task's lab default: "Denoising", "Denoising (f16)"."""
    task, preset = metrics.task, metrics.preset
    title = TASK_TITLES.get(task) or str(task or "?")
    return title if not preset or preset == DEFAULT_PRESET.get(task) else f"{title} ({preset})"


def run_label(row: RunRow) -> str:
    """A listed run in words, "image · task · setting · time": e.g. "astronaut.png · Inpainting · text mask ·
    87% kept · 17:42 Dec 1" (plain text: select boxes and tables do not render Markdown)."""
    parts = [str(row.source or "?"), task_title(row.metrics), row.setting, when(row.started)]
    return " · ".join(str(p) for p in parts if p)


def list_runs(runs_dir: Path) -> list[RunRow]:
    """Newest first: one row per readable run folder (``scan_runs(...).rows``)."""
    return scan_runs(runs_dir).rows


def _records(rows: list[dict]) -> dict[str, list]:
    series: dict[str, list] = {}
    fields = StepRecord.__dataclass_fields__
    for row in rows:
        rec = StepRecord(**{k: row.get(k) for k in fields if k in row})
        series.setdefault(row.get("target") or "", []).append(rec)
    return series


def snapshot_previews(folder: Path, prefix: str = "") -> tuple[list, list[str]]:
    """(iteration, preview) of ``folder``'s snapshots/, and a note when some did not decode (they are left out)."""
    paths = sorted((folder / "snapshots").glob("*.png")) if (folder / "snapshots").is_dir() else []
    out, bad = [], []
    for p in paths:
        if not p.stem.isdigit():
            continue
        try:
            out.append((int(p.stem), preview(read_run_image(folder, f"snapshots/{p.name}"), SNAPSHOT_SIDE)))
        except RunFolderError:
            bad.append(f"{prefix}snapshots/{p.name}")
    notes = (
        [
            f"{len(bad)} snapshot image(s) could not be decoded and are left out: {', '.join(bad[:5])}"
            + ("…" if len(bad) > 5 else ".")
        ]
        if bad
        else []
    )
    return out, notes


def load_view(folder: Path) -> JobView:
    """A finished run folder as a JobView: status, history, snapshots and images.

    ``info["notes"]`` lists what was tolerated (a history.csv cut off in its last row, snapshots that do not
    decode), as sentences.

    Raises
    ------
    RunFolderError
        When the folder cannot be shown (see ``dip.core.runio.read_run``; also an impedance target's images).
    """
    folder = Path(folder)
    run = read_run(folder)
    recorded = RunMetrics.from_dict(run["metrics"], run_id=folder.name)
    metrics = recorded if run["metrics"] else None  # an empty metrics.json records nothing (JobOutcome)
    history = _records(run["history"])
    images = {k: preview(v) for k, v in run["images"].items()}
    notes = list(run["notes"])
    snapshots = {}
    if recorded.task != "impedance":
        snapshots[""], more = snapshot_previews(folder)
        notes += more
    for name in recorded.targets or {}:
        slug = target_slug(name)
        if not valid_run_id(slug):  # the name comes from the file: it must not lead out of the folder
            raise RunFolderError(
                f"metrics.json names a target {name[:40]!r} that is not a folder name.", run_id=folder.name
            )
        sub = folder / slug
        snapshots[name], more = snapshot_previews(sub, f"{slug}/")
        notes += more
        for kind in ("target", "result"):
            if (sub / f"{kind}.png").is_file():
                images[f"{kind}:{name}"] = preview(read_run_image(folder, f"{slug}/{kind}.png"))
    done = sum(len(v) for v in history.values())
    finished = os.path.getmtime(folder / "metrics.json")
    info = {
        "source": recorded.source_name,
        "preset": recorded.preset,
        "blind": recorded.blind,
        "psnr_degraded": recorded.psnr_observed,
        "images": {},
        "notes": notes,
    }
    for rec in run["baselines"]:
        if rec.get("image") and (folder / rec["image"]).is_file():
            images[rec["name"]] = preview(read_run_image(folder, rec["image"]))
    outcome = JobOutcome(metrics=metrics, run_dir=str(folder), images=images, baselines=tuple(run["baselines"]))
    return JobView(
        id=folder.name,
        task=recorded.task or "?",
        status=recorded.run_status,
        iteration=done,
        total=done,
        history=history,
        snapshots=snapshots,
        info=info,
        outcome=outcome,
        error=recorded.error,
        created=finished,
        finished=finished,
    )
