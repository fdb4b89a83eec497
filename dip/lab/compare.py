"""Compare two runs of one case iteration by iteration, e.g. bf16 autocast against float32.

``python -m dip compare RUN_A RUN_B [--every K]`` reads both run folders' history.csv (written by the command
line, the app and ``reproduce``) and prints, every K iterations that both runs reached, the PSNR of the output
and of its moving average (EMA) in each run and the difference B - A, then the largest |difference| and the
difference at the last common iteration. Runs of the same preset and seed follow the same trajectory whatever
their total length (Adam at a constant learning rate), so a shorter run is compared on its iterations.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dip.core.errors import DIPError
from dip.core.runio import read_history
from dip.lab.report import markdown_table

MEASURES = {"psnr_true": "output", "psnr_ema_true": "EMA"}


def compare_histories(a: list[dict], b: list[dict], every: int = 100) -> dict:
    """Compare the PSNR of two runs every ``every`` iterations (and at the last common one): B - A.

    Parameters
    ----------
    a, b : list of dict
        history.csv rows of runs A and B (``read_history``); only rows with ``psnr_true`` count.
    every : int, optional
        Table row every this many iterations, >= 1. Default 100.

    Returns
    -------
    dict
        ``rows`` (per picked iteration: ``psnr_true_a``, ``psnr_true_b``, ``psnr_ema_true_a``, ...; PSNR in dB),
        ``last_common`` (iteration), ``at_last`` and ``max_abs_difference`` (by measure, in dB, over all common
        iterations), ``common_iterations`` (count).

    Raises
    ------
    DIPError
        When ``every`` < 1, or the runs share no iteration with a PSNR (no ground truth, or empty histories).
    """
    if every < 1:
        raise DIPError(f"--every must be at least 1, got {every}.")
    by_it = [{r["iteration"]: r for r in rows if r.get("psnr_true") is not None} for rows in (a, b)]
    common = sorted(set(by_it[0]) & set(by_it[1]))
    if not common:
        raise DIPError(
            "the two runs have no iteration with a PSNR in common: both need a ground truth "
            "(history.csv column psnr_true) and at least one iteration."
        )
    picked = [i for i in common if i % every == 0]
    if picked[-1:] != common[-1:]:
        picked.append(common[-1])
    rows = [
        {"iteration": i, **{f"{k}_{side}": by_it[n][i].get(k) for k in MEASURES for n, side in enumerate("ab")}}
        for i in picked
    ]

    def diff(i, k):
        va, vb = by_it[0][i].get(k), by_it[1][i].get(k)
        return None if va is None or vb is None else vb - va

    max_abs = {k: max((abs(d) for d in (diff(i, k) for i in common) if d is not None), default=None) for k in MEASURES}
    return {
        "rows": rows,
        "last_common": common[-1],
        "at_last": {k: diff(common[-1], k) for k in MEASURES},
        "max_abs_difference": max_abs,
        "common_iterations": len(common),
    }


def run_label(folder: Path) -> str:
    """Label a run: the folder's name with the precision its config asked for (auto, fp32, bf16, fp16).

    Parameters
    ----------
    folder : Path
        The run folder.

    Returns
    -------
    str
        E.g. "lab-denoise-F16_GT (bf16)"; the name alone when config.json is missing or has no precision.
    """
    try:
        precision = json.loads((folder / "config.json").read_text())["fit"]["precision"]
    except (OSError, KeyError, ValueError):
        return folder.name
    return f"{folder.name} ({precision})"


def compare_runs(folder_a: str | Path, folder_b: str | Path, every: int = 100) -> dict:
    """Compare two run folders: ``compare_histories`` of their history.csv, with their labels.

    Parameters
    ----------
    folder_a, folder_b : str or Path
        Run folders A and B.
    every : int, optional
        Table row every this many iterations. Default 100.

    Returns
    -------
    dict
        ``compare_histories``'s dict plus ``a`` and ``b``, the labels (``run_label``).

    Raises
    ------
    DIPError
        When a folder has no history.csv, or as ``compare_histories``.
    """
    folders = [Path(folder_a), Path(folder_b)]
    for f in folders:
        if not (f / "history.csv").is_file():
            raise DIPError(
                f"{f} is not a run folder (no history.csv): pass folders written by a run, "
                "e.g. OUT/runs/lab-denoise-F16_GT of `python -m dip reproduce`."
            )
    out = compare_histories(read_history(folders[0] / "history.csv"), read_history(folders[1] / "history.csv"), every)
    out["a"], out["b"] = (run_label(f) for f in folders)
    return out


def comparison_markdown(c: dict) -> str:
    """Format a comparison as a markdown table plus two summary lines.

    Parameters
    ----------
    c : dict
        As ``compare_runs`` returns it.

    Returns
    -------
    str
        Markdown ending with a newline; PSNR in dB with 2 decimals, an en dash where a value is missing.
    """

    def db(v, sign=False):
        return "–" if v is None else (f"{v:+.2f}" if sign else f"{v:.2f}")

    headers = ["iteration"] + [f"{label} {side}" for label in MEASURES.values() for side in ("A", "B", "B - A")]
    rows = []
    for r in c["rows"]:
        row = [r["iteration"]]
        for k in MEASURES:
            va, vb = r[f"{k}_a"], r[f"{k}_b"]
            row += [db(va), db(vb), db(None if va is None or vb is None else vb - va, sign=True)]
        rows.append(row)
    lines = [
        f"A = {c['a']}, B = {c['b']}; PSNR in dB (RGB, data range 1, full image).",
        "",
        markdown_table(headers, rows),
        f"Largest |B - A| over all {c['common_iterations']} common iterations: "
        + ", ".join(f"{label} {db(c['max_abs_difference'][k])} dB" for k, label in MEASURES.items()),
        f"At the last common iteration ({c['last_common']}): "
        + ", ".join(f"{label} {db(c['at_last'][k], sign=True)} dB" for k, label in MEASURES.items()),
    ]
    return "\n".join(lines) + "\n"


def register(subparsers) -> None:
    """Add ``compare`` to the ``python -m dip`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of the ``python -m dip`` parser.
    """
    p = subparsers.add_parser("compare", help="PSNR of two runs of one case side by side, iteration by iteration")
    p.add_argument("run_a", type=Path, help="run folder A (has history.csv), e.g. the float32 run")
    p.add_argument("run_b", type=Path, help="run folder B, e.g. the bf16 run")
    p.add_argument("--every", type=int, default=100, help="table row every K iterations (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON instead of markdown")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Run the ``compare`` subcommand: print the comparison (markdown, or JSON with ``--json``) to stdout.

    Parameters
    ----------
    args : argparse.Namespace
        ``run_a``, ``run_b``, ``every`` and ``json``.

    Returns
    -------
    int
        Exit status 0.

    Raises
    ------
    DIPError
        As ``compare_runs``.
    """
    c = compare_runs(args.run_a, args.run_b, args.every)
    print(json.dumps(c, indent=2) if args.json else comparison_markdown(c), end="")
    return 0
