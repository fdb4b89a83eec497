"""Command-line progress of long fits: a tqdm bar on stderr, and the ``--checkpoint-every`` flag.

The flag lets a cut-off run continue (its bar then starts at the checkpoint's iteration).
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from dip.core.fit import Snapshot


def progress_bar(total: int, label: str, refresh_s: float = 2.0, *, done: int = 0) -> tqdm:
    """Make a bar on stderr (stdout stays for results), redrawn at most every ``refresh_s`` seconds.

    Parameters
    ----------
    total : int
        Iterations of the whole fit.
    label : str
        Text before the bar.
    refresh_s : float, optional
        Shortest time between redraws, in seconds.
    done : int, optional
        Iterations already run by an earlier process: shown as done and left out of the rate and ETA
        (tqdm's ``initial``).

    Returns
    -------
    tqdm
        The bar, already drawn.
    """
    return tqdm(total=total, initial=done, desc=label, file=sys.stderr, dynamic_ncols=True, mininterval=refresh_s)


def continue_bar(old: tqdm | None, total: int, label: str, done: int, *, refresh_s: float = 2.0) -> tqdm:
    """Replace a fit's bar by one that continues from a checkpoint at iteration ``done``.

    Parameters
    ----------
    old : tqdm or None
        The fit's bar so far, closed here; None when it has not been drawn yet.
    total, label, refresh_s
        As for ``progress_bar``.
    done : int
        The checkpoint's iteration: shown as done and left out of the rate and ETA.

    Returns
    -------
    tqdm
        A new bar at ``done`` of ``total``, after a note on stderr that the run continues from the checkpoint.
    """
    if old is not None:
        old.close()
    tqdm.write(f"{label}: continuing from the checkpoint at iteration {done}", file=sys.stderr)
    return progress_bar(total, label, refresh_s, done=done)


def non_negative_int(text: str) -> int:
    """Parse an argparse value that must be a whole number >= 0 (``--checkpoint-every``).

    Parameters
    ----------
    text : str
        The command-line value.

    Returns
    -------
    int
        The number, >= 0.

    Raises
    ------
    argparse.ArgumentTypeError
        If the number is negative (the message suggests 0 or e.g. 100).
    ValueError
        If ``text`` is not a whole number (argparse reports it as an invalid value).
    """
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n}; use 0 (no checkpoints) or a number of iterations, e.g. 100")
    return n


def add_checkpoint_flag(p: argparse.ArgumentParser, where: str) -> None:
    """Add ``--checkpoint-every N`` (default 100, 0: never) to a subcommand's parser.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    where : str
        Where the checkpoint file goes, for the flag's help text.
    """
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

    Parameters
    ----------
    total : int
        Iterations of the whole fit.
    label : str
        Text before the bar.

    Attributes
    ----------
    snapshots : list of Snapshot
        The fit's snapshots, in order (the fit's ``on_snapshot`` appends to this list).
    refresh_s : float
        Shortest time between redraws of the bar, in seconds (0.5).
    """

    refresh_s = 0.5

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        self._bar: tqdm | None = None
        self.snapshots: list[Snapshot] = []

    @property
    def bar(self) -> tqdm:
        """The bar, drawn on first use."""
        if self._bar is None:
            self._bar = progress_bar(self.total, self.label, refresh_s=self.refresh_s)
        return self._bar

    def step(self, rec) -> None:
        """Advance the bar by one iteration and show its loss (and PSNR against the ground truth, if any).

        Parameters
        ----------
        rec : StepRecord
            The iteration's metrics.
        """
        self.bar.update(1)
        post = {"loss": f"{rec.loss:.2e}"}
        if rec.psnr_true is not None:
            post["psnr"] = f"{rec.psnr_true:.2f}"
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        """Close the bar, if it was drawn."""
        if self._bar is not None:
            self._bar.close()

    def state_dict(self) -> dict:
        """Return the state saved with the fit's checkpoint.

        Returns
        -------
        dict
            ``{"steps": iterations done, "snapshots": [Snapshot.to_state(), ...]}``.
        """
        return {"steps": self.bar.n, "snapshots": [s.to_state() for s in self.snapshots]}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict``'s state: the snapshots, and a bar that continues from the checkpoint.

        Parameters
        ----------
        state : dict
            As returned by ``state_dict``.
        """
        self.snapshots[:] = [Snapshot.from_state(s) for s in state["snapshots"]]  # fit appends to this list
        self._bar = continue_bar(self._bar, self.total, self.label, state["steps"], refresh_s=self.refresh_s)
