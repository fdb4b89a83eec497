"""Jobs as Ray tasks: the job registry's second backend, chosen by ``DIP_RAY_ADDRESS`` (``ui.service.backend``).

Imported only when that variable is set, so a plain install never needs Ray. No Streamlit here.

What runs where:

- The app process: ``RayBackend`` connects to the cluster in a background thread (a page never waits for it),
  tells the registry how many jobs may run at once (``slots``: the cluster's GPUs, else its CPUs over
  ``DIP_RAY_CPUS``) and runs each job from a registry worker thread (``runner``): it submits one task, polls the
  job's mailbox every ``POLL_SECONDS``, copies the records into the ``Job`` the pages read, forwards a cancel or the
  time limit, and submits the task again when its worker died, continuing from the job's last checkpoint.
- A Ray worker (``_run_remote``): the app's own runner (``ui.service.runners.run_job``) on a stand-in job
  (``RemoteJob``) that sends steps, snapshots and notes to the mailbox in batches, at most every ``FLUSH_SECONDS``,
  and learns in the same round trip whether to stop. It writes ``runs/.incomplete/<id>/`` (checkpoints included)
  and renames it into ``runs/<id>/`` itself, so the runs folder must be the same path on every node (one machine,
  or a shared file system: README "Scaling out").
- The mailbox (``_Hub``): one actor per app process, no CPU, one box per job. It dies with the app; the next app
  process re-queues unfinished jobs from their pending folders, as without Ray.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import ray
from ray import exceptions as rex

from dip.core.checkpoint import saved_progress
from dip.core.errors import ConfigError, DIPError
from dip.lab.distributed import check_reachable

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # the app side reads a job's mailbox this often
FLUSH_SECONDS = 0.25  # the worker sends its records (and learns about a cancel) at least this often
CONNECT_SECONDS = 5.0  # a cluster address that does not answer within this is reported unreachable
REFRESH_SECONDS = 10.0  # the cluster's size is read again this often (nodes may join or leave)
LOST_SECONDS = 60.0  # no answer from the mailbox for this long: the cluster is lost, the job stops here
RETRIES = 3  # a job whose worker died is started again this many times, from its last checkpoint
DIED = (rex.WorkerCrashedError, rex.NodeDiedError, rex.LocalRayletDiedError, rex.ObjectLostError)


class ClusterUnavailable(DIPError):
    """The Ray cluster cannot be reached (or cannot run a job): new jobs are refused with this message."""


@ray.remote(num_cpus=0, max_restarts=3)
class _Hub:
    """Mailboxes by job id: the worker pushes records and reads the stop flag, the app drains and sets it."""

    def __init__(self):
        self._boxes: dict[str, dict] = {}

    def ping(self) -> bool:
        return True

    def _box(self, job_id: str) -> dict:
        return self._boxes.setdefault(job_id, {"records": [], "stop": None})

    def push(self, job_id: str, records: list) -> Optional[str]:
        """Add a worker's records; returns None to go on, or the stop reason ("" for a plain cancel)."""
        box = self._box(job_id)
        box["records"].extend(records)
        return box["stop"]

    def drain(self, job_id: str) -> list:
        box = self._box(job_id)
        records, box["records"] = box["records"], []
        return records

    def stop(self, job_id: str, reason: str) -> None:
        self._box(job_id)["stop"] = reason

    def close(self, job_id: str) -> None:
        self._boxes.pop(job_id, None)


class RemoteJob:
    """Stands in for ``ui.service.jobs.Job`` inside a Ray worker: what a runner calls, sent to the app in batches.

    Parameters
    ----------
    job_id : str
        The job's id (its run folder's name).
    spec : Any
        The job's ``TaskSpec``.
    meta : dict
        What the runner reads from the job besides its spec: task, owner, total, info, created, resumed.
    hub : ray.actor.ActorHandle
        The app's mailbox actor.
    flush_seconds : float
        Longest time records wait before they are sent (also how late a cancel may be seen).
    """

    def __init__(self, job_id: str, spec: Any, meta: dict, hub, flush_seconds: float = FLUSH_SECONDS):
        self.id, self.spec, self.hub, self.flush_seconds = job_id, spec, hub, flush_seconds
        self.task, self.owner, self.total = meta["task"], meta["owner"], meta["total"]
        self.info, self.created, self.resumed = dict(meta.get("info") or {}), meta["created"], meta["resumed"]
        self.stop_reason: Optional[str] = None
        self._batch: list = []
        self._last = time.monotonic()
        self._stop: Optional[str] = None
        self._steps = 0

    def should_stop(self) -> bool:
        self._maybe_flush()
        return self._stop is not None

    def add_step(self, record, series: str = "") -> None:
        self._batch.append(("step", series, record))
        self._steps += 1
        if self._steps == 1:  # the page shows that the fit has started without waiting for a batch
            self.flush()
        self._maybe_flush()

    def restore_step(self, record, series: str = "") -> None:
        self._batch.append(("restore", series, record))

    def add_snapshot(self, iteration: int, preview, series: str = "") -> None:
        self._batch.append(("snapshot", series, (iteration, preview)))
        self._maybe_flush()

    def set_note(self, note: Optional[str]) -> None:
        self._batch.append(("note", "", note))
        self.flush()

    def send(self, kind: str, value: Any) -> None:
        """Send one record of the backend's own (e.g. where the job runs) at once."""
        self._batch.append((kind, "", value))
        self.flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Send what is waiting; the answer says whether the app wants the job stopped (and why)."""
        batch, self._batch = self._batch, []
        stop = ray.get(self.hub.push.remote(self.id, batch))
        self._last = time.monotonic()
        if stop is not None and self._stop is None:
            self._stop, self.stop_reason = stop, stop or None


def _run_remote(runner: Callable, job_id: str, spec: Any, meta: dict, hub, attempt: int) -> Any:
    """The Ray task: ``runner`` on a ``RemoteJob``, on this node's device, with its assigned CPUs as threads."""
    import torch

    assigned = ray.get_runtime_context().get_assigned_resources()
    torch.set_num_threads(max(1, int(assigned.get("CPU", 1))))
    # The task's own device: the GPU Ray gave it (CUDA_VISIBLE_DEVICES), else this node's CPUs.
    spec = replace(spec, device="cuda" if assigned.get("GPU") else "cpu")
    job = RemoteJob(job_id, spec, meta, hub, meta.get("flush_seconds", FLUSH_SECONDS))
    job.send("start", {"pid": os.getpid(), "node": ray.util.get_node_ip_address(), "attempt": attempt})
    if not Path(spec.runs_dir).is_dir():
        raise DIPError(
            f"the cluster node {ray.util.get_node_ip_address()} does not see the app's runs folder; every node "
            "needs it at the same path (README, Scaling out)."
        )
    try:
        return runner(job)
    finally:
        job.flush()


class RayBackend:
    """The app side of jobs that run as Ray tasks (see the module docstring).

    Parameters
    ----------
    address : str
        ``auto`` (a cluster started on this machine) or HOST:PORT of the head node. A Ray already initialised in
        this process (tests) is used as it is.
    remote_runner : callable
        ``runner(job) -> outcome`` run inside the Ray worker (``ui.service.runners.run_job``); must be importable
        there.
    cpus : float
        CPUs one job asks for on a cluster without GPUs.
    flush_seconds, poll_seconds : float
        How often the worker sends records, and the app reads them.
    """

    def __init__(
        self,
        address: str,
        remote_runner: Callable,
        *,
        cpus: float = 2.0,
        flush_seconds: float = FLUSH_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        retries: int = RETRIES,
    ):
        self.address, self.remote_runner, self.cpus = address, remote_runner, cpus
        self.flush_seconds, self.poll_seconds, self.retries = flush_seconds, poll_seconds, retries
        self.state = "connecting"  # then "ready" or "unavailable"
        self.message: Optional[str] = None  # why it is unavailable
        self.places = 0
        self.resources: dict = {}
        self.where: dict[str, dict] = {}  # job id -> {"pid", "node", "attempt"} of its current task
        self.restarts: dict[str, int] = {}  # job id -> times its task was started again after its worker died
        self._hub = None
        self._task = ray.remote(max_retries=0)(_run_remote)  # retried here, from the checkpoint
        self._ready = threading.Event()
        self._closed = threading.Event()
        threading.Thread(target=self._connect, name="dip-ray", daemon=True).start()

    # -- connection (background thread) --
    def _connect(self) -> None:
        try:
            check_reachable(self.address, CONNECT_SECONDS)
            if not ray.is_initialized():
                ray.init(address=self.address, logging_level="WARNING", log_to_driver=False)
            self._hub = _Hub.remote()
            ray.get(self._hub.ping.remote(), timeout=30)
            self._refresh()
        except (ClusterUnavailable, ConfigError) as err:
            self._unavailable(str(err))
        except Exception as err:  # ray.init's own errors: a wrong address, a version mismatch, ...
            log.exception("connecting to the Ray cluster at %s failed", self.address)
            self._unavailable(f"the Ray cluster at {self.address} cannot be used ({type(err).__name__})")
        self._ready.set()
        probe: Optional[threading.Thread] = None
        while self._hub is not None and not self._closed.wait(REFRESH_SECONDS):
            # ray.cluster_resources() blocks for as long as the head node is gone: ask from a thread of its own and
            # call the cluster unavailable when it does not answer in time (and ready again when it does).
            if probe is None or not probe.is_alive():
                probe = threading.Thread(target=self._probe, name="dip-ray-probe", daemon=True)
                probe.start()
            probe.join(REFRESH_SECONDS)
            if probe.is_alive() and self.state == "ready":
                self._unavailable(f"the Ray cluster at {self.address} stopped answering")

    def _probe(self) -> None:
        try:
            self._refresh()
        except Exception as err:
            self._unavailable(f"the Ray cluster at {self.address} stopped answering ({type(err).__name__})")

    def _refresh(self) -> None:
        """Read the cluster's size: one job per GPU, else per ``cpus`` CPUs."""
        total = ray.cluster_resources()
        gpus = int(total.get("GPU", 0))
        if gpus:
            self.resources, places = {"num_gpus": 1, "num_cpus": 1}, gpus
        else:
            self.resources, places = {"num_cpus": self.cpus}, int(total.get("CPU", 0) // self.cpus)
        if places < 1:
            raise ClusterUnavailable(
                f"the Ray cluster at {self.address} has no GPU and {total.get('CPU', 0):g} CPUs, fewer than one job "
                f"asks for (DIP_RAY_CPUS={self.cpus:g})"
            )
        self.places, self.state, self.message = places, "ready", None

    def _unavailable(self, why: str) -> None:
        self.state, self.places = "unavailable", 0
        self.message = f"{why}; new jobs are refused until it is back (the server log has the details)."
        log.error("Ray backend: %s", self.message)

    def close(self) -> None:
        self._closed.set()

    # -- what the registry calls --
    def slots(self) -> int:
        """Jobs that may run at once: the cluster's places; 0 while connecting; 1 when unavailable (the runner
        then fails queued jobs with the reason at once, their pending folders kept for the next start)."""
        return {"ready": self.places, "connecting": 0}.get(self.state, 1)

    def admit(self, then: Optional[Callable[[Any], None]] = None) -> Callable[[Any], None]:
        """The registry's admission check: refuse while the cluster is unavailable, then ``then(spec)``."""

        def check(spec: Any) -> None:
            if self.state == "unavailable":
                raise ClusterUnavailable(self.message)
            if then is not None:
                then(spec)

        return check

    def runner(self, job) -> Any:
        """Run ``job`` as a Ray task, following its progress, until it ends (the registry's runner)."""
        self._ready.wait()
        if self.state != "ready":
            raise ClusterUnavailable(self.message or "the Ray cluster is not available.")
        meta = {
            "task": job.task,
            "owner": job.owner,
            "total": job.total,
            "info": {k: v for k, v in job.info.items() if k not in ("images", "baselines")},  # previews stay here
            "created": job.created,
            "resumed": job.resumed,
            "flush_seconds": self.flush_seconds,
        }
        attempt = 0
        try:
            while True:
                attempt += 1
                ref = self._task.options(**self.resources).remote(
                    self.remote_runner, job.id, job.spec, meta, self._hub, attempt
                )
                try:
                    return self._follow(job, ref)
                except DIED as err:
                    if attempt > self.retries or job.should_stop():
                        raise DIPError(
                            f"the cluster worker running this job died {attempt} times ({type(err).__name__})."
                        ) from None
                    done = _checkpoint_iteration(job)
                    log.warning("job %s: its Ray worker died (%s); resuming at %d", job.id, type(err).__name__, done)
                    # The next attempt sends the checkpoint's history again: start the rows over, one per iteration.
                    job._set(history={}, snapshots={}, iteration=0, note=None)
                    meta["resumed"] = True
                    self.restarts[job.id] = attempt
                    job.set_note(
                        f"a cluster worker died; continued from its checkpoint at iteration {done}"
                        if done
                        else "a cluster worker died; started again (no checkpoint yet)"
                    )
        finally:
            self.where.pop(job.id, None)
            if self._hub is not None:
                self._hub.close.remote(job.id)

    def _follow(self, job, ref) -> Any:
        stop_sent, contact = False, time.monotonic()
        while True:
            ready, _ = ray.wait([ref], timeout=self.poll_seconds)
            try:
                self._apply(job, ray.get(self._hub.drain.remote(job.id), timeout=max(5.0, self.poll_seconds)))
                contact = time.monotonic()
            except (rex.GetTimeoutError, rex.RayError) as err:
                if time.monotonic() - contact > LOST_SECONDS:
                    self._unavailable(f"the Ray cluster at {self.address} stopped answering ({type(err).__name__})")
                    raise ClusterUnavailable(
                        "the app lost contact with the cluster running this job; it continues from its last "
                        "checkpoint when the app is restarted."
                    ) from None
            if not stop_sent and job.should_stop():
                self._hub.stop.remote(job.id, job.stop_reason or "")
                stop_sent = True
            if ready:
                try:
                    outcome = ray.get(ref)
                except rex.RayTaskError as err:  # the runner's own exception, without Ray's traceback text
                    cause = err.cause if isinstance(err.cause, BaseException) else None
                    raise (cause or RuntimeError(type(err).__name__)) from None
                finally:
                    self._last_records(job)
                return outcome

    def _last_records(self, job) -> None:
        """What the task sent after the last poll (its final flush); never masks how the task ended."""
        try:
            self._apply(job, ray.get(self._hub.drain.remote(job.id), timeout=30))
        except rex.RayError:
            log.warning("job %s: its last progress records could not be read", job.id)

    def _apply(self, job, records: list) -> None:
        for kind, series, value in records:
            if kind == "step":
                job.add_step(value, series)
            elif kind == "restore":
                job.restore_step(value, series)
            elif kind == "snapshot":
                job.add_snapshot(value[0], value[1], series)
            elif kind == "note":
                job.set_note(value)
            elif kind == "start":
                self.where[job.id] = value


def _checkpoint_iteration(job) -> int:
    """The iteration of the job's last checkpoint on the shared runs folder (0: none yet)."""
    from ui.service.runners import pending_folder

    # checkpoint.pt, or one checkpoint-TARGET.pt per noise-impedance target (their iterations add up)
    saved = [saved_progress(p) for p in pending_folder(job.spec.runs_dir, job.id).glob("checkpoint*.pt")]
    return sum(s[0] for s in saved if s)
