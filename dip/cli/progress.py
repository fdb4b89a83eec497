"""Command-line progress of long fits: a tqdm bar on stderr, and the ``--checkpoint-every`` flag that lets a
cut-off run continue (its bar then starts at the checkpoint's iteration)."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from dip.core.fit import Snapshot


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
    p.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=100,
        metavar="N",
        help=f"save the fit's state to {where} every N iterations (0: never); the same command again "
        "continues an interrupted run from it (default %(default)s)",
    )


class FitProgress:
    """One fit's bar on stderr fed by StepRecords, plus the snapshots kept for writing.

    Its state (steps done, snapshots) is saved with the fit's checkpoint (``Checkpoint.extra``), so a continued
    run writes every snapshot and its bar starts where the cut-off one ended. The bar appears at the fit's first
    step, so the progress objects of fits that run one after another can be made up front.
    """

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        self._bar: tqdm | None = None
        self.snapshots: list[Snapshot] = []

    @property
    def bar(self) -> tqdm:
        if self._bar is None:
            self._bar = progress_bar(self.total, self.label, refresh_s=0.5)
        return self._bar

    def step(self, rec) -> None:
        self.bar.update(1)
        post = {"loss": f"{rec.loss:.2e}"}
        if rec.psnr_true is not None:
            post["psnr"] = f"{rec.psnr_true:.2f}"
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def state_dict(self) -> dict:
        return {"steps": self.bar.n, "snapshots": [s.to_state() for s in self.snapshots]}

    def load_state_dict(self, state: dict) -> None:
        self.snapshots[:] = [Snapshot.from_state(s) for s in state["snapshots"]]  # fit appends to this list
        continue_bar(
            self.bar, state["steps"], f"{self.bar.desc}: continuing from the checkpoint at iteration {state['steps']}"
        )
