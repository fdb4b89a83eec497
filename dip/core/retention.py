"""Disk retention of a runs directory: drop old run folders, then the oldest until the total fits a budget.

The directory holds one folder per run (``runs/<id>/``, see ``dip.core.runio``) and, while a run is being written, a
hidden temporary ``.<id>.partial-<random>`` (``dip.core.runio.atomic_folder``). Nothing here runs by itself: the app
or an operator's cron job calls ``prune_runs``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Collection
from pathlib import Path
from typing import Optional

from dip.core.runio import PARTIAL_MARK

log = logging.getLogger(__name__)

STALE_PARTIAL_SECONDS = 24 * 3600.0
"""A hidden ``.<id>.partial-*`` temporary untouched this long belongs to a writer that died: it is removed."""

MB = 1024 * 1024


def prune_runs(
    root: str | os.PathLike,
    *,
    max_age_days: float,
    max_total_mb: float,
    protect: Collection[str] = (),
    now: Optional[float] = None,
) -> list[str]:
    """Remove run folders of ``root`` that are too old, then the oldest finished ones until the total size fits.

    Parameters
    ----------
    root : path
        The runs directory. A missing directory is nothing to prune.
    max_age_days : float
        Run folders last changed longer ago than this are removed (``float("inf")``: no age limit).
    max_total_mb : float
        Then finished run folders (those holding metrics.json), oldest first, are removed while everything under
        ``root`` together is larger than this many MiB (``float("inf")``: no size limit).
    protect : collection of str
        Ids (folder names) never removed, e.g. the runs of queued and running jobs.
    now : float, optional
        The current time as a Unix timestamp (default ``time.time()``), for tests.

    Returns
    -------
    list of str
        The ids of the removed run folders, in the order they were removed (age first, then size).

    Notes
    -----
    A folder's age is measured from its last change: the newest modification time of the folder and of the
    entries directly in it (metrics.json is written last). Hidden entries (names starting with ".") are never
    removed, except ``.<id>.partial-*`` temporaries of ``dip.core.runio.atomic_folder`` unchanged for a day
    (``STALE_PARTIAL_SECONDS``), whose writer died; they are not in the returned list. A folder without
    metrics.json (a run still being written, or abandoned) is removed only by age, never to make room. Symbolic
    links are not followed or removed. Sizes are the files' lengths in bytes; a folder that cannot be removed
    completely is logged and still counted.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    now = time.time() if now is None else float(now)
    protect = set(protect)
    for entry in root.iterdir():
        if (
            entry.name.startswith(".")
            and PARTIAL_MARK in entry.name
            and _is_real_dir(entry)
            and now - last_change(entry) > STALE_PARTIAL_SECONDS
        ):
            _remove(entry)

    runs = {
        p.name: p for p in root.iterdir() if not p.name.startswith(".") and p.name not in protect and _is_real_dir(p)
    }
    changed = {name: last_change(p) for name, p in runs.items()}
    removed = []
    for name in sorted(runs, key=lambda n: (changed[n], n)):
        if now - changed[name] > max_age_days * 86400.0 and _remove(runs[name]):
            removed.append(name)

    total = tree_size(root)
    limit = max_total_mb * MB
    finished = [
        n
        for n in sorted(runs, key=lambda n: (changed[n], n))
        if n not in removed and (runs[n] / "metrics.json").is_file()
    ]
    for name in finished:
        if total <= limit:
            break
        size = tree_size(runs[name])
        if _remove(runs[name]):
            removed.append(name)
            total -= size
    return removed


def last_change(folder: Path) -> float:
    """Return the newest modification time (Unix seconds) of ``folder`` and the entries directly in it.

    Parameters
    ----------
    folder : Path
        A run folder; symbolic links in it are not followed, an unreadable listing counts the folder alone.

    Returns
    -------
    float
        Unix timestamp in seconds.
    """
    times = [folder.lstat().st_mtime]
    try:
        times += [p.lstat().st_mtime for p in folder.iterdir()]
    except OSError:
        pass
    return max(times)


def tree_size(path: Path) -> int:
    """Sum the lengths in bytes of the files under ``path`` (symbolic links are not followed).

    Parameters
    ----------
    path : Path
        A folder; files that vanish or cannot be read are skipped.

    Returns
    -------
    int
        Bytes.
    """
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _is_real_dir(p: Path) -> bool:
    return p.is_dir() and not p.is_symlink()


def _remove(folder: Path) -> bool:
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        log.warning("could not remove all of run folder %s", folder.name)
        return False
    log.info("removed run folder %s", folder.name)
    return True
