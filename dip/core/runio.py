"""Write and read a finished run's folder, shared by the command line and the app.

Layout of ``DIR``: result.png, result_ema.png, observed.png (degraded input in the estimate's space),
[ground_truth.png, best.png, blind.png, mask.png], history.csv (one row per iteration), snapshots/NNNNN.png,
metrics.json and config.json (the preset as plain data); optionally baselines.json and baselines/NAME.png
(classical methods, ``write_baselines``).

Reading is strict and specific: ``read_run`` raises nothing but ``RunFolderError`` for a damaged folder, its message
naming the run (the folder's name, never a server path), the file and what is wrong. The one damage it tolerates is
the one an interrupted writer leaves in history.csv: a last line cut off mid-row is left out and reported in the
run's ``notes``. Writers go through ``atomic_folder`` so that a crash leaves a hidden ``.NAME.partial-*`` folder
(skipped by listings, removed by ``dip.core.retention``) instead of a half-written run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Optional

import numpy as np

from dip.core.degrade import keep_known
from dip.core.errors import ImageError, RunFolderError
from dip.core.fit import FitResult, Snapshot, StepRecord
from dip.core.images import load_image, save_image

HISTORY_FIELDS = [f.name for f in dataclasses.fields(StepRecord)]


def write_history(records: Iterable[StepRecord], path: Path, *, extra: Optional[dict] = None) -> None:
    """Append records to a history.csv: one row per record, the header first when the file is new.

    Parameters
    ----------
    records : iterable of StepRecord
        The rows, in order.
    path : Path
        The CSV file; appended to when it exists.
    extra : dict or None, optional
        Constant columns put before the record's (e.g. the impedance target).
    """
    extra = extra or {}
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*extra, *HISTORY_FIELDS])
        if new:
            writer.writeheader()
        for r in records:
            writer.writerow({**extra, **dataclasses.asdict(r)})


def read_history(path: Path, *, run_id: str = "") -> list[dict]:
    """Read the rows of a history.csv with numbers parsed (empty cells become None).

    A last line cut off mid-row (no line end, and too few cells or a cell that does not parse) is left out;
    ``read_run`` reports it in its ``notes``.

    Parameters
    ----------
    path : Path
        The CSV file.
    run_id : str, optional
        The run's folder name, for error messages.

    Returns
    -------
    list of dict
        One dict per row, column name to value (int, float, bool, None or str).

    Raises
    ------
    RunFolderError
        For any other damage: a missing or unreadable file, no ``iteration`` column, a bad row before the last.
    """
    return _read_history(Path(path), run_id=run_id)[0]


def _parse_cell(v: str):
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


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cell_problem(column: str, value) -> Optional[str]:
    """Why ``value`` cannot be a StepRecord ``column`` (None when it can, or the column is not one)."""
    if column not in HISTORY_FIELDS:
        return None
    if column == "iteration":
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an iteration number"
    elif column == "backtracked":
        ok, expected = value is None or isinstance(value, bool), "True or False"
    else:
        ok, expected = value is None or _is_number(value), "a number"
    return None if ok else f"column {column} holds {_shorten(value)}, not {expected}"


def _shorten(value, limit: int = 24) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_history(path: Path, *, run_id: str = "", name: str = "history.csv") -> tuple[list[dict], Optional[str]]:
    """(rows, note): the note says what was left out of a history.csv whose writer was cut off, else None."""
    text = _read_text(path, name, run_id)
    if not text:
        return [], None
    cut_off = not text.endswith(("\n", "\r"))  # write_history ends every row with a line end
    reader = csv.reader(io.StringIO(text, newline=""))
    lines: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            lines.append((reader.line_num, cells))
    except csv.Error as err:
        raise RunFolderError(f"{name} is corrupt at line {reader.line_num} ({err}).", run_id=run_id) from None
    if not lines:
        return [], None
    (_, header), body = lines[0], lines[1:]
    if cut_off and not body:
        return [], f"{name} was cut off in its header line, so the run has no iteration history."
    if "iteration" not in header:
        raise RunFolderError(f"{name} has no iteration column (its header is not a history.csv header).", run_id=run_id)
    rows, note = [], None
    for i, (line, cells) in enumerate(body):
        if not cells:
            continue
        row, problem = {}, None
        if len(cells) != len(header):
            problem = f"it has {len(cells)} cells where the header has {len(header)}"
        else:
            for column, cell in zip(header, cells):
                row[column] = _parse_cell(cell)
                problem = problem or _cell_problem(column, row[column])
        if problem is None:
            rows.append(row)
        elif cut_off and i == len(body) - 1:
            note = f"{name} is truncated at line {line} (a row cut off mid-write); that partial row is left out."
        else:
            raise RunFolderError(f"{name} is corrupt at line {line}: {problem}.", run_id=run_id)
    return rows, note


def write_snapshots(snapshots: Iterable[Snapshot], folder: Path) -> None:
    """Write NNNNN.png (the current output, NNNNN the iteration) into ``folder`` for each snapshot.

    Parameters
    ----------
    snapshots : iterable of Snapshot
        The snapshots.
    folder : Path
        The snapshots folder, created if needed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for s in snapshots:
        save_image(s.image, folder / f"{s.iteration:05d}.png")


def write_run(
    folder: str | Path,
    *,
    metrics: dict,
    config: dict,
    result: FitResult,
    degraded: np.ndarray,
    x_true: Optional[np.ndarray] = None,
    mask: Optional[np.ndarray] = None,
    snapshots: Iterable[Snapshot] = (),
) -> Path:
    """Write everything a finished run produced (the layout of the module docstring).

    Parameters
    ----------
    folder : str or Path
        The run folder, created if needed; an existing history.csv is replaced.
    metrics : dict
        Written as metrics.json.
    config : dict
        Written as config.json (the preset as plain data, ``preset_as_dict``).
    result : FitResult
        Its images (float32 (H, W, C) in [0, 1]) and history.
    degraded : ndarray
        The observation in the estimate's space, saved as observed.png.
    x_true : ndarray or None, optional
        Ground truth, saved as ground_truth.png.
    mask : ndarray or None, optional
        Inpainting mask (H, W), 1 = known; saved as mask.png, with result_known_kept.png (``keep_known``).
    snapshots : iterable of Snapshot, optional
        Written to snapshots/.

    Returns
    -------
    Path
        The folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_image(result.output, folder / "result.png")
    save_image(result.ema, folder / "result_ema.png")
    save_image(degraded, folder / "observed.png")
    if mask is not None:  # inpainting: the user's image with only its holes filled in
        save_image(keep_known(result.output, degraded, mask), folder / "result_known_kept.png")
    optional = {
        "ground_truth.png": x_true,
        "best.png": result.best,
        "blind.png": result.blind,
        "mask.png": None if mask is None else mask[..., None],
    }
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
    """Write ``data`` as indented JSON; dataclasses, numpy scalars, tuples and sets are converted.

    Parameters
    ----------
    path : Path
        The file, replaced if it exists.
    data : dict
        JSON-ready data, or values of the types above.

    Raises
    ------
    TypeError
        For a value of another type.
    """
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
    """Convert a preset to plain JSON-ready data (config.json).

    Parameters
    ----------
    preset : Preset
        Any dataclass of settings.

    Returns
    -------
    dict
        Nested dicts, lists, strings, numbers, booleans and None.
    """
    return json.loads(json.dumps(dataclasses.asdict(preset), default=_jsonable))


def read_run(folder: str | Path) -> dict:
    """Read a run folder: metrics, config, history rows, and the images that exist (float arrays).

    Parameters
    ----------
    folder : str or Path
        The run folder; its name is the run id in messages.

    Returns
    -------
    dict
        ``folder`` (Path), ``metrics`` and ``config`` (dicts, config {} when absent), ``history`` (rows of
        ``read_history``), ``images`` (for every top-level PNG, its stem to a float32 (H, W, C) array in [0, 1],
        C = 1 for greyscale files), ``snapshots`` (paths, not decoded), ``baselines`` (``read_baselines``) and
        ``notes``: what was tolerated (a history.csv cut off in its last row), as sentences. Extra files are
        ignored.

    Raises
    ------
    RunFolderError
        The folder is missing; metrics.json is missing, not JSON or not a JSON object, or a value the app shows
        has the wrong type; config.json or baselines.json is damaged; history.csv is damaged before its last
        line; a top-level PNG does not decode.
    """
    folder = Path(folder)
    run_id = folder.name
    if not folder.is_dir():
        raise RunFolderError("there is no such run folder.", run_id=run_id)
    metrics = read_json_object(folder / "metrics.json", run_id=run_id)
    check_metrics(metrics, run_id=run_id)
    config = read_json_object(folder / "config.json", run_id=run_id, required=False) or {}
    history, note = (
        _read_history(folder / "history.csv", run_id=run_id) if (folder / "history.csv").exists() else ([], None)
    )
    out = {
        "folder": folder,
        "metrics": metrics,
        "config": config,
        "history": history,
        "images": {},
        "notes": [note] if note else [],
    }
    for p in sorted(folder.glob("*.png")):
        if p.is_file():
            out["images"][p.stem] = read_run_image(folder, p.name, mode="keep")
    out["snapshots"] = sorted((folder / "snapshots").glob("*.png")) if (folder / "snapshots").is_dir() else []
    out["baselines"] = read_baselines(folder)
    return out


def _read_text(path: Path, name: str, run_id: str) -> str:
    """Read a file of a run folder as text; ``name`` is how messages call it (never the server path)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunFolderError(f"{name} is missing.", run_id=run_id) from None
    except IsADirectoryError:
        raise RunFolderError(f"{name} is a folder, not a file.", run_id=run_id) from None
    except OSError as err:
        raise RunFolderError(
            f"{name} could not be read ({err.strerror or type(err).__name__}).", run_id=run_id
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RunFolderError(f"{name} is not UTF-8 text (bad byte at offset {err.start}).", run_id=run_id) from None


_JSON_KINDS = {
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def read_json_object(path: Path, *, run_id: str = "", required: bool = True) -> Optional[dict]:
    """Read a JSON file of a run folder that must hold an object.

    Parameters
    ----------
    path : Path
        The file; messages name it by its file name only.
    run_id : str, optional
        The run's folder name, for error messages.
    required : bool, optional
        If False, a missing file gives None instead of an error. Default True.

    Returns
    -------
    dict or None
        The object; None when the file is absent and not ``required``.

    Raises
    ------
    RunFolderError
        Naming the file: missing, unreadable, empty, not valid JSON (a truncated file ends mid-value), or valid
        JSON that is not an object (``[]``, a string, a number).
    """
    path, name = Path(path), Path(path).name
    if not required and not path.exists():
        return None
    text = _read_text(path, name, run_id)
    if not text.strip():
        raise RunFolderError(f"{name} is empty.", run_id=run_id)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        at_end = err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string")  # ran out of text
        end = (
            f"is truncated (it ends at line {err.lineno} before the JSON is complete)"
            if at_end
            else f"is not valid JSON ({err.msg}, line {err.lineno}, column {err.colno})"
        )
        raise RunFolderError(f"{name} {end}.", run_id=run_id) from None
    except RecursionError:
        raise RunFolderError(f"{name} nests too deeply to be read.", run_id=run_id) from None
    if not isinstance(data, dict):
        raise RunFolderError(
            f"{name} is not a JSON object (it holds {_JSON_KINDS.get(type(data), 'something else')}).", run_id=run_id
        )
    return data


_NUMBER_KEYS = ("seconds", "iterations", "best_iteration", "blind_iteration", "parameters")
_TEXT_KEYS = ("task", "status", "preset", "source", "image", "device", "precision", "error")


def check_metrics(metrics: dict, *, run_id: str = "") -> None:
    """Raise ``RunFolderError`` when a metrics.json value the app shows has the wrong type.

    PSNRs (``psnr_*``) and counts must be numbers or null, names strings or null, ``targets`` (impedance) an
    object of objects. Other keys are not checked.

    Parameters
    ----------
    metrics : dict
        The parsed metrics.json.
    run_id : str, optional
        The run's folder name, for error messages.

    Raises
    ------
    RunFolderError
        Naming the first key with a wrong type.
    """

    def fail(key, value, expected):
        raise RunFolderError(f"metrics.json: {key} is {_shorten(value)}, not {expected}.", run_id=run_id)

    for key, value in metrics.items():
        if (key.startswith("psnr_") or key in _NUMBER_KEYS) and value is not None and not _is_number(value):
            fail(key, value, "a number")
        if key in _TEXT_KEYS and value is not None and not isinstance(value, str):
            fail(key, value, "a string")
    targets = metrics.get("targets")
    if targets is not None and not (isinstance(targets, dict) and all(isinstance(t, dict) for t in targets.values())):
        fail("targets", targets, "an object of objects")


def read_run_image(folder: str | Path, name: str, *, mode: str = "rgb") -> np.ndarray:
    """Read the image ``name`` of a run folder.

    Parameters
    ----------
    folder : str or Path
        The run folder.
    name : str
        A POSIX path relative to the run folder, e.g. "result.png" or "baselines/nlm.png".
    mode : {"rgb", "keep", "grey"}, optional
        As ``load_image``. Default "rgb".

    Returns
    -------
    ndarray
        float32 (H, W, C) in [0, 1].

    Raises
    ------
    RunFolderError
        Naming the image when it is missing, outside the folder, or does not decode.
    """
    folder = Path(folder)
    run_id = folder.name
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or "\\" in name:
        raise RunFolderError(f"{_shorten(name, 60)} is not a file inside the run folder.", run_id=run_id)
    path = folder.joinpath(*rel.parts)
    if not path.is_file():
        raise RunFolderError(f"{name} is missing.", run_id=run_id)
    try:
        return load_image(path, mode=mode)
    except ImageError:  # its message holds the server path: say it again without
        raise RunFolderError(
            f"{name} could not be decoded (a truncated, corrupt or oversized image file).", run_id=run_id
        ) from None


BASELINES_VERSION = 1


def write_baselines(folder: str | Path, baselines: Iterable, *, border_psnr: Optional[dict] = None) -> Path:
    """Write ``baselines.json`` (and ``baselines/NAME.png`` for records that carry an image) into a run folder.

    Parameters
    ----------
    folder : str or Path
        The run folder, created if needed.
    baselines : iterable
        ``dip.core.baselines.Baseline`` objects, or dicts with at least ``name`` and ``psnr``.
    border_psnr : dict or None, optional
        {name: PSNR in dB with the image border excluded} (F16).

    Returns
    -------
    Path
        The baselines.json file.

    Notes
    -----
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
    """Read the records of a run folder's ``baselines.json``.

    Parameters
    ----------
    folder : str or Path
        The run folder.

    Returns
    -------
    list of dict
        The records (see ``write_baselines``); empty when there is no baselines.json.

    Raises
    ------
    RunFolderError
        When the file is damaged, a record is not an object with a ``name``, or a record's ``image`` is not a
        path inside the folder's ``baselines/``.
    """
    folder = Path(folder)
    data = read_json_object(folder / "baselines.json", run_id=folder.name, required=False)
    if data is None:
        return []
    records = data.get("baselines", [])
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("name"), str) for r in records
    ):
        raise RunFolderError("baselines.json: baselines is not a list of records with a name.", run_id=folder.name)
    for r in records:
        image = r.get("image")
        if image is not None and not (isinstance(image, str) and _inside(image, "baselines")):
            raise RunFolderError(
                f"baselines.json: the image of {_shorten(r['name'])} is not in baselines/.", run_id=folder.name
            )
    return list(records)


def _inside(name: str, top: str) -> bool:
    rel = PurePosixPath(name)
    return (
        not rel.is_absolute()
        and "\\" not in name
        and ".." not in rel.parts
        and len(rel.parts) >= 2
        and rel.parts[0] == top
    )


RUN_FILES = frozenset(
    {
        "result.png",
        "result_ema.png",
        "observed.png",
        "ground_truth.png",
        "best.png",
        "blind.png",
        "mask.png",
        "result_known_kept.png",
        "blind_emv.png",
        "history.csv",
        "metrics.json",
        "config.json",
        "baselines.json",
        "snapshots",
        "baselines",
    }
)
"""Names a run writes into its folder (``write_run``, ``write_baselines``, the impedance and reproduce writers)."""


def holds_only_run_output(folder: str | Path, *, also: Iterable[str] = ()) -> bool:
    """Tell whether ``atomic_folder`` may replace ``folder`` without deleting anything a person put there.

    Parameters
    ----------
    folder : str or Path
        The run folder.
    also : iterable of str, optional
        Further entry names allowed.

    Returns
    -------
    bool
        True when ``folder`` does not exist or holds nothing but ``RUN_FILES``, ``checkpoint*.pt`` and the names
        in ``also``; False for a file or a symbolic link.
    """
    folder = Path(folder)
    if not folder.exists():
        return True
    if not folder.is_dir() or folder.is_symlink():
        return False
    allowed = RUN_FILES | set(also)
    return all(p.name in allowed or (p.name.startswith("checkpoint") and p.suffix == ".pt") for p in folder.iterdir())


PARTIAL_MARK = ".partial-"
"""Hidden temporaries of ``atomic_folder`` are named ``.<name>.partial-<random>`` (``dip.core.retention`` knows it)."""


@contextmanager
def atomic_folder(final: str | Path) -> Iterator[Path]:
    """Write a folder completely or not at all.

    An existing ``final`` (a resumed or repeated run) is replaced: it is first renamed to a hidden
    ``.<name>.partial-old-<random>`` sibling, removed once the new folder is in place, and put back if that
    rename fails. Readers thus see the old folder or the new one, never a mix; at worst (a crash between the
    two renames) the old one is left hidden for ``dip.core.retention`` to remove. The parent is created if needed.

    Parameters
    ----------
    final : str or Path
        The folder to write; its name must not be empty.

    Yields
    ------
    Path
        A new hidden sibling ``.<name>.partial-<random>`` to write into, which becomes ``final`` when the block
        ends without an exception and is removed when it raises.

    Raises
    ------
    ValueError
        If ``final`` has no name (e.g. "/").

    Examples
    --------
    >>> with atomic_folder(runs / run_id) as tmp:      # doctest: +SKIP
    ...     write_run(tmp, metrics=..., ...)
    """
    final = Path(os.path.abspath(final))
    if not final.name:
        raise ValueError(f"atomic_folder needs a folder with a name, not {final}")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(final)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists() or final.is_symlink():
        old = final.parent / f".{final.name}{PARTIAL_MARK}old-{secrets.token_hex(4)}"
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _new_sibling(final: Path) -> Path:
    for _ in range(100):
        path = final.parent / f".{final.name}{PARTIAL_MARK}{secrets.token_hex(4)}"
        try:
            path.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0o700
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary name beside {final.name}")
