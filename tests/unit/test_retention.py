"""prune_runs: old run folders go, then the oldest finished ones until the total fits; protected runs, hidden
entries and unfinished folders are kept (except stale atomic_folder temporaries)."""

from __future__ import annotations

import os
from pathlib import Path

from dip.core.retention import MB, prune_runs

NOW = 1_800_000_000.0
DAY = 86400.0


def fake_run(root: Path, name: str, *, age_days: float, kb: int = 1, finished: bool = True) -> Path:
    """A folder of ``kb`` KiB whose folder and files were all last changed ``age_days`` before NOW."""
    folder = root / name
    (folder / "snapshots").mkdir(parents=True)
    (folder / "result.png").write_bytes(b"x" * 1024 * kb)
    if finished:
        (folder / "metrics.json").write_text("{}")
    t = NOW - age_days * DAY
    for p in [*folder.rglob("*"), folder]:
        os.utime(p, (t, t))
    return folder


def names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_old_runs_go_and_recent_ones_stay(tmp_path):
    for name, age in (("a-old", 40), ("b-recent", 2), ("c-older", 90)):
        fake_run(tmp_path, name, age_days=age)
    removed = prune_runs(tmp_path, max_age_days=30, max_total_mb=100, now=NOW)
    assert removed == ["c-older", "a-old"]  # oldest first
    assert names(tmp_path) == ["b-recent"]


def test_a_recent_change_anywhere_at_the_top_makes_a_folder_young(tmp_path):
    folder = fake_run(tmp_path, "r", age_days=40)
    os.utime(folder / "metrics.json", (NOW - DAY, NOW - DAY))
    assert prune_runs(tmp_path, max_age_days=30, max_total_mb=100, now=NOW) == []


def test_the_oldest_finished_runs_go_until_the_total_fits(tmp_path):
    for i, name in enumerate(["r1", "r2", "r3", "r4"]):  # 400 KiB each, r1 the oldest
        fake_run(tmp_path, name, age_days=10 - i, kb=400)
    removed = prune_runs(tmp_path, max_age_days=365, max_total_mb=1.0, now=NOW)
    assert removed == ["r1", "r2"]  # 1600 KiB -> 800 KiB <= 1 MiB
    assert names(tmp_path) == ["r3", "r4"]


def test_protected_runs_are_kept_but_still_count(tmp_path):
    fake_run(tmp_path, "running", age_days=50, kb=900)
    fake_run(tmp_path, "r-old", age_days=5, kb=100)
    fake_run(tmp_path, "r-new", age_days=1, kb=100)
    removed = prune_runs(tmp_path, max_age_days=30, max_total_mb=1.0, protect={"running"}, now=NOW)
    assert removed == ["r-old"]  # 1100 KiB -> 1000 KiB; "running" is older than the age limit but protected
    assert names(tmp_path) == ["r-new", "running"]


def test_unfinished_folders_go_only_by_age(tmp_path):
    fake_run(tmp_path, "writing", age_days=0.1, kb=2000, finished=False)
    fake_run(tmp_path, "abandoned", age_days=40, finished=False)
    fake_run(tmp_path, "done", age_days=3, kb=10)
    removed = prune_runs(tmp_path, max_age_days=30, max_total_mb=1.0, now=NOW)
    assert removed == ["abandoned", "done"]  # still too big, but an unfinished folder is never removed for room
    assert names(tmp_path) == ["writing"]


def test_hidden_entries_stay_except_stale_temporaries(tmp_path):
    fake_run(tmp_path, ".r1.partial-0a1b2c3d", age_days=2)  # a writer died two days ago
    fake_run(tmp_path, ".r2.partial-0a1b2c3d", age_days=0.5)  # maybe still being written
    fake_run(tmp_path, ".r3.partial-old-00ff00ff", age_days=3)  # an old folder left aside by a crash
    fake_run(tmp_path, ".cache", age_days=400)
    (tmp_path / ".DS_Store").write_text("x")
    removed = prune_runs(tmp_path, max_age_days=1, max_total_mb=0, now=NOW)
    assert removed == []
    assert names(tmp_path) == [".DS_Store", ".cache", ".r2.partial-0a1b2c3d"]


def test_no_limits_remove_nothing_and_a_missing_root_is_fine(tmp_path):
    fake_run(tmp_path, "r", age_days=5000, kb=5000)
    assert prune_runs(tmp_path, max_age_days=float("inf"), max_total_mb=float("inf"), now=NOW) == []
    assert prune_runs(tmp_path / "missing", max_age_days=0, max_total_mb=0) == []


def test_symlinks_are_neither_followed_nor_removed(tmp_path):
    outside = fake_run(tmp_path, "outside", age_days=100, kb=10)
    root = tmp_path / "runs"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    fake_run(root, "r", age_days=100)
    assert prune_runs(root, max_age_days=30, max_total_mb=100, now=NOW) == ["r"]
    assert (root / "link").is_symlink() and (outside / "result.png").is_file()


def test_sizes_are_counted_in_mib(tmp_path):
    fake_run(tmp_path, "a", age_days=2, kb=512)
    fake_run(tmp_path, "b", age_days=1, kb=512)
    total = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert total == MB + 2 * len("{}")
    assert prune_runs(tmp_path, max_age_days=30, max_total_mb=1.0, now=NOW) == ["a"]
    assert prune_runs(tmp_path, max_age_days=30, max_total_mb=1.0, now=NOW) == []
