"""``python -m dip reproduce --ray [ADDRESS]``: one Ray task per case, the records gathered in the cases' order.

Each task runs the same function as the sequential command (``run_restoration`` / ``run_impedance_case``) with the
same options, so a case's numbers do not depend on where it ran (seeded, same precision; on CPUs also the same
thread count, ``--ray-cpus``). The tasks write ``OUT/runs/<case>/`` and ``OUT/figures/`` themselves, so ``--out``
must be the same path on every node (one machine, or a shared file system); ``results.json`` / ``results.md`` are
written here, after each case in order. A task whose worker dies is run again and continues from the case's
checkpoint. Progress: one line per running case every ``PROGRESS_SECONDS`` on stderr.

Ray is imported only inside these functions: a plain install never needs it.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from dip.core.errors import ConfigError, DIPError

PROGRESS_SECONDS = 10.0
CONNECT_SECONDS = 5.0


def check_reachable(address: Optional[str], timeout: float = CONNECT_SECONDS) -> None:
    """Fail fast on a HOST:PORT that does not answer (``ray.init`` would wait minutes for it).

    Parameters
    ----------
    address : str or None
        A Ray address; None, ``auto``, ``local`` and ``ray://`` addresses are left to Ray.
    timeout : float
        Seconds to wait for a TCP connection.

    Raises
    ------
    ConfigError
        Naming the address and why it cannot be reached.
    """
    if not address or address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except ValueError:
        raise ConfigError(f"{address!r} is not a Ray address; use auto or HOST:PORT of the head node.") from None
    except OSError as err:
        raise ConfigError(
            f"the Ray cluster at {address} cannot be reached ({err.strerror or type(err).__name__})"
        ) from None


def connect(address: Optional[str]) -> None:
    """Connect this process to Ray; a Ray already initialised in this process is used as it is.

    Parameters
    ----------
    address : str or None
        HOST:PORT of a head node or ``auto``; None: the cluster started on this machine, else a new local one.

    Raises
    ------
    ConfigError
        When the cluster cannot be reached.
    """
    import ray

    check_reachable(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        except ConnectionError as err:
            raise ConfigError(f"no Ray cluster at {address}: {err}") from None


def _case_task(run: Callable, case, path: Path, out: Path, opts, adjust: Callable, progress) -> dict:
    """One case in a Ray worker: the driver's preset hook, this task's CPUs as torch threads, bars reported."""
    import ray
    import torch

    from dip.cli import progress as cli_progress
    from dip.lab import reproduce

    assigned = ray.get_runtime_context().get_assigned_resources()
    torch.set_num_threads(max(1, int(assigned.get("CPU", 1))))
    if not Path(out).is_dir():
        raise ConfigError(f"the Ray node {ray.util.get_node_ip_address()} does not see {out}; --out must be shared.")
    if opts.device in (None, "auto"):
        opts.device = "cuda" if assigned.get("GPU") else "cpu"

    def bar(total: int, label: str, refresh_s: float = 2.0, *, done: int = 0) -> _Bar:
        return _Bar(progress, total, label, done)

    saved = reproduce.adjust_preset, reproduce.progress_bar, cli_progress.progress_bar
    reproduce.adjust_preset = adjust
    reproduce.progress_bar = cli_progress.progress_bar = bar
    try:
        return run(case, path, out, opts)
    finally:
        reproduce.adjust_preset, reproduce.progress_bar, cli_progress.progress_bar = saved


class _Bar:
    """Stands in for a tqdm bar inside a Ray worker: its count goes to the driver's progress actor."""

    def __init__(self, progress, total: int, label: str, done: int = 0):
        self.progress, self.total, self.label, self.n = progress, total, label, done
        self._sent = 0.0
        self._send()

    def _send(self) -> None:
        self._sent = time.monotonic()
        self.progress.report.remote(self.label, self.n, self.total)

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._sent > 1.0:
            self._send()

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        self._send()


def _progress_actor():
    import ray

    @ray.remote(num_cpus=0)
    class Progress:
        def __init__(self):
            self.bars: dict[str, tuple[int, int]] = {}

        def report(self, label: str, n: int, total: int) -> None:
            self.bars[label] = (n, total)

        def read(self) -> dict:
            return dict(self.bars)

    return Progress.remote()


def run_on_ray(
    cases: list,
    paths: dict,
    out: Path,
    opts: Any,
    *,
    address: Optional[str] = None,
    cpus: float = 1.0,
    log: Callable[[str], None] = print,
) -> Callable:
    """Submit every case as a Ray task now; return ``run(case, path, out, opts)`` that waits for one case's record.

    Parameters
    ----------
    cases : list of Case
        In the order the records are gathered.
    paths : dict
        Case -> its image file.
    out : Path
        The output folder (shared by every node).
    opts : argparse.Namespace
        The sequential run's options (scale, size, device, seed, precision, checkpoints).
    address : str, optional
        Ray address (None: the cluster on this machine, else a new local one).
    cpus : float
        CPUs per case on a cluster without GPUs (its torch threads); with GPUs each case asks for one GPU.
    log : callable
        Where the driver's progress lines go.

    Returns
    -------
    callable
        ``run(case, path, out, opts) -> dict``, the case's results.json record, in place of the sequential
        functions; raises the case's own error.

    Raises
    ------
    ConfigError
        When the cluster cannot be reached.
    """
    import ray

    from dip.lab import reproduce

    connect(address)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": cpus}
    task = ray.remote(max_retries=2)(_case_task).options(**resources)  # a dead worker's case resumes
    progress = _progress_actor()
    refs = {
        case: task.remote(
            reproduce.run_impedance_case if case.group == "impedance" else reproduce.run_restoration,
            case,
            paths[case],
            Path(out).resolve(),
            opts,
            reproduce.adjust_preset,
            progress,
        )
        for case in cases
    }
    where = f"{gpus} GPU(s)" if gpus else f"{ray.cluster_resources().get('CPU', 0):g} CPUs, {cpus:g} per case"
    log(f"submitted {len(cases)} case(s) to Ray ({where})")

    def run(case, path, out_, opts_) -> dict:
        ref = refs[case]
        while not ray.wait([ref], timeout=PROGRESS_SECONDS)[0]:
            bars = ray.get(progress.read.remote())
            running = [f"{label} {n}/{total}" for label, (n, total) in bars.items() if n < total]
            if running:
                print("  ray: " + " · ".join(running), file=sys.stderr, flush=True)
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            for other in refs.values():
                ray.cancel(other)
            cause = err.cause if isinstance(err.cause, DIPError) else None
            raise (cause or RuntimeError(f"case {case.slug} failed on Ray: {type(err.cause).__name__}")) from None

    return run
