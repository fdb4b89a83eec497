"""Resumable fits: the fit loop's whole state in one file, written every ``every`` iterations.

A full-size run takes hours on a CPU (kate inpainting 3.8 h on 2 cores in float32, Barbara's 11000 iterations
~12 h), longer than a process may live. With a ``Checkpoint`` the loop saves the weights, Adam's moments, the
input-noise generator, the EMA, the best iterates, the stopping detectors and the history; a later ``fit`` with
the same problem and settings continues from there and ends with the same result as an uninterrupted run.

The file is written beside the target and then renamed over it, so a process killed mid-write leaves the
previous checkpoint intact. It holds only tensors and plain data, and is read with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

import torch

from dip.core.errors import ConfigError

FORMAT_VERSION = 1
# Settings that change only what is reported or how often, not the trajectory: a checkpoint stays valid.
_NOT_TRAJECTORY = ("snapshot_every", "sync_every", "stop_at_blind")


class Stateful(Protocol):
    """What a checkpoint can save and restore: an object with ``state_dict`` and ``load_state_dict``."""

    def state_dict(self) -> dict:
        """Return the state to save: tensors and plain data only."""
        ...

    def load_state_dict(self, state: dict) -> None:
        """Restore the state ``state_dict`` returned."""
        ...


@dataclass(frozen=True)
class Checkpoint:
    """Where and how often a fit saves its state.

    Parameters
    ----------
    path : Path or str
        The checkpoint file (stored as a ``Path``).
    every : int, optional
        Iterations between saves, >= 1. Default 100.
    extra : Stateful or None, optional
        The caller's own state that must resume with the fit (e.g. a side detector fed from snapshots);
        its ``state_dict()`` may hold tensors and plain data only.

    Raises
    ------
    ConfigError
        If ``every`` < 1.
    """

    path: Path
    every: int = 100
    extra: Optional[Stateful] = None

    def __post_init__(self):
        """Validate ``every`` and make ``path`` a ``Path``."""
        if self.every < 1:
            raise ConfigError(f"checkpoint every={self.every}; need at least 1 iteration (e.g. 100).")
        object.__setattr__(self, "path", Path(self.path))


def fingerprint(config, parameters: int, z: torch.Tensor, y: torch.Tensor) -> dict:
    """Identify a trajectory: the fit settings, the network size and the input and observation.

    Parameters
    ----------
    config : FitConfig
        The fit settings; those that do not change the trajectory (snapshot_every, sync_every,
        stop_at_blind) are left out.
    parameters : int
        Trainable parameters of the network.
    z, y : Tensor
        Input code and observation, summarised by shape, sum and sum of squares.

    Returns
    -------
    dict
        Plain data, equal for two runs that follow the same trajectory.
    """
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_TRAJECTORY}
    data = {
        name: [list(t.shape), float(t.double().sum()), float(t.double().square().sum())]
        for name, t in (("z", z), ("y", y))
    }
    return {"version": FORMAT_VERSION, "settings": settings, "parameters": parameters, **data}


def save(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    path : Path
        The checkpoint file; missing parent folders are created.
    state : dict
        Tensors and plain data only.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path, expected: dict, device: torch.device) -> Optional[dict]:
    """Load the saved state, or None when there is no checkpoint.

    Parameters
    ----------
    path : Path
        The checkpoint file.
    expected : dict
        This run's ``fingerprint``.
    device : torch.device
        Where the tensors are loaded.

    Returns
    -------
    dict or None
        The state ``save`` wrote, None when ``path`` is not a file.

    Raises
    ------
    ConfigError
        When the checkpoint belongs to another run (settings, network, input or observation differ; the message
        names them) or cannot be read.
    """
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file; torch's own message is pages of pickle advice
        raise ConfigError(
            f"{path} is not a readable fit checkpoint ({type(err).__name__}); delete it to start again."
        ) from None
    saved = state.get("fingerprint", {})
    if saved != expected:
        keys = sorted(k for k in set(saved) | set(expected) if saved.get(k) != expected.get(k))
        if "settings" in keys:
            keys += [
                f"settings.{k}"
                for k in sorted(expected["settings"])
                if saved.get("settings", {}).get(k) != expected["settings"][k]
            ]
        raise ConfigError(
            f"{path} was written by a different run ({', '.join(keys)} differ); delete it to start "
            "again, or write this run elsewhere."
        )
    return state


def saved_progress(path: Path) -> Optional[tuple[int, list]]:
    """Read the progress of the checkpoint at ``path``: what a resumed job shows before its fit continues.

    Parameters
    ----------
    path : Path or str
        The checkpoint file.

    Returns
    -------
    tuple of (int, list) or None
        (iteration, history rows), or None when there is no checkpoint or it is unreadable (the fit itself
        reports that when it loads it).
    """
    if not Path(path).is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["iteration"]), list(state["history"])
    except Exception:  # the fit itself reports an unreadable checkpoint when it loads it
        return None
