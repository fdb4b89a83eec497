"""Which backend runs the app's jobs: this process (the default, nothing to start) or a Ray cluster.

``DIP_RAY_ADDRESS`` unset: one in-process worker thread, one job at a time. Set (``auto`` or HOST:PORT of a head
node): each job is a Ray task (``ui.service.ray_backend``, imported only then, so a plain install needs no Ray).
No Streamlit here; ``ui.state.get_registry`` calls ``make_registry`` once per server process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from ui.service import config
from ui.service.jobs import Job, JobRegistry


def make_registry(
    runner: Callable[[Job], Any],
    *,
    admit: Optional[Callable[[Any], None]] = None,
    address: Optional[str] = None,
    **options: Any,
) -> JobRegistry:
    """The job registry with the configured backend.

    Parameters
    ----------
    runner : callable
        ``runner(job) -> outcome``: run in this process, or inside a Ray worker (it must then be importable there,
        as ``ui.service.runners.run_job`` is).
    admit : callable, optional
        The registry's admission check; with Ray, a cluster that cannot be reached refuses jobs first.
    address : str, optional
        The Ray cluster; default ``DIP_RAY_ADDRESS`` ("" or unset: in process).
    **options
        The other ``JobRegistry`` arguments (hooks and limits), the same for both backends.

    Returns
    -------
    JobRegistry
        With Ray, its ``backend`` attribute is the ``RayBackend`` (state, message, places); else None.
    """
    address = config.ray_address() if address is None else address
    if not address:
        registry = JobRegistry(runner, admit=admit, **options)
        registry.backend = None
        return registry
    from ui.service.ray_backend import RayBackend

    backend = RayBackend(address, runner, cpus=config.ray_cpus())
    registry = JobRegistry(backend.runner, admit=backend.admit(admit), slots=backend.slots, **options)
    registry.backend = backend
    return registry
