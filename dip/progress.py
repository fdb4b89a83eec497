"""Command-line progress of long fits: a tqdm bar on stderr, and the ``--checkpoint-every`` flag that lets a
cut-off run continue (its bar then starts at the checkpoint's iteration)."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm


def progress_bar(total: int, label: str, refresh_s: float = 2.0) -> tqdm:
    """A bar on stderr (stdout stays for results), redrawn at most every ``refresh_s`` seconds."""
    return tqdm(total=total, desc=label, file=sys.stderr, dynamic_ncols=True, mininterval=refresh_s)


def continue_bar(bar: tqdm, done: int, note: str) -> None:
    """Show ``done`` iterations (run by an earlier process) as done, leaving them out of the rate and ETA."""
    bar.n = bar.last_print_n = bar.initial = done
    bar.start_t = bar.last_print_t = bar._time()
    bar.write(note)
    bar.refresh()


def non_negative_int(text: str) -> int:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n}; use 0 (no checkpoints) or a number of iterations, e.g. 100")
    return n


def add_checkpoint_flag(p: argparse.ArgumentParser, where: str) -> None:
    """``--checkpoint-every N`` (default 100, 0: never); ``where`` says where the checkpoint file goes."""
    p.add_argument("--checkpoint-every", type=non_negative_int, default=100, metavar="N",
                   help=f"save the fit's state to {where} every N iterations (0: never); the same command again "
                        "continues an interrupted run from it (default %(default)s)")
