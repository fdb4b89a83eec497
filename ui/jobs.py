"""Jobs and the process-wide job registry: one worker thread runs fits one at a time, first in, first out.

No Streamlit here (the worker thread must never call ``st.*``), so this module is unit-tested with a fake
runner. A runner is ``runner(job) -> dict``: it reads ``job.spec``, reports through ``job.add_step`` /
``job.add_snapshot``, polls ``job.should_stop()`` and returns the outcome (metrics, run folder, images).
Pages read a consistent copy with ``job.view()``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional

from dip.errors import DIPError

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINISHED = ("done", "cancelled", "error")


class JobRefused(DIPError):
    """A job cannot be queued now: the session already has one, or the queue is full."""


def new_job_id(task: str) -> str:
    """Sortable, URL-safe and folder-safe id, e.g. ``20261122-043000-denoise-3fa2c1``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{task}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class JobView:
    """A copy of a job's state taken under its lock (or read back from a run folder)."""

    id: str
    task: str
    status: str
    iteration: int
    total: int
    history: dict  # series name ("" for single-image tasks) -> list of StepRecord-like rows
    snapshots: dict  # series name -> list of (iteration, uint8 preview)
    info: dict  # what was known at submit time: source, preset, blind, psnr_degraded, images
    outcome: Optional[dict] = None  # the runner's result: metrics, run_dir, images
    error: Optional[str] = None
    created: float = 0.0
    started: Optional[float] = None
    finished: Optional[float] = None
    position: Optional[int] = None  # jobs ahead of this one (0: running or next); None when finished
    note: Optional[str] = None  # what a running job does after its iterations, e.g. "comparing with ..."

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def iterations_per_second(self) -> Optional[float]:
        if not self.started or not self.iteration:
            return None
        elapsed = (self.finished or time.time()) - self.started
        return self.iteration / elapsed if elapsed > 0 else None

    @property
    def eta_seconds(self) -> Optional[float]:
        rate = self.iterations_per_second
        return (self.total - self.iteration) / rate if rate and self.status == "running" else None


class Job:
    """One queued fit. The worker writes through the ``add_*`` methods; readers call ``view()``."""

    def __init__(self, job_id: str, task: str, spec: Any, *, owner: str, total: int, info: Optional[dict] = None,
                 max_snapshots: int = 60):
        self.id, self.task, self.spec, self.owner, self.total = job_id, task, spec, owner, total
        self.info = dict(info or {})
        self.max_snapshots = max_snapshots
        self.status = "queued"
        self.iteration = 0
        self.history: dict[str, list] = {}
        self.snapshots: dict[str, list] = {}
        self.outcome: Optional[dict] = None
        self.error: Optional[str] = None
        self.note: Optional[str] = None
        self.created, self.started, self.finished = time.time(), None, None
        self.cancel_event = threading.Event()
        self.future: Optional[Future] = None
        self._lock = threading.Lock()

    # -- called by the runner (worker thread) --
    def should_stop(self) -> bool:
        return self.cancel_event.is_set()

    def add_step(self, record, series: str = "") -> None:
        with self._lock:
            self.history.setdefault(series, []).append(record)
            self.iteration += 1

    def add_snapshot(self, iteration: int, preview, series: str = "") -> None:
        """Keep at most ``max_snapshots`` per series: when full, drop every other older one (coverage stays even)."""
        with self._lock:
            snaps = self.snapshots.setdefault(series, [])
            if len(snaps) >= self.max_snapshots:
                snaps[:] = snaps[::2]
            snaps.append((iteration, preview))

    def set_note(self, note: Optional[str]) -> None:
        with self._lock:
            self.note = note

    # -- called by the registry and the pages --
    def _set(self, **changes) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self, k, v)

    def view(self, position: Optional[int] = None) -> JobView:
        with self._lock:
            return JobView(self.id, self.task, self.status, self.iteration, self.total,
                           {k: list(v) for k, v in self.history.items()},
                           {k: list(v) for k, v in self.snapshots.items()}, dict(self.info), self.outcome,
                           self.error, self.created, self.started, self.finished, position, self.note)


class JobRegistry:
    """Process-wide queue of jobs with a single worker (one GPU: one fit at a time).

    Parameters
    ----------
    runner : ``runner(job) -> dict``; exceptions it raises mark the job "error" and never stop the worker.
    max_queue : most jobs queued or running at once (all users together).
    keep_finished, finished_ttl : finished jobs stay in memory (for polling pages) up to this many / seconds;
        their run folders stay on disk.
    initializer, after_job : called in the worker thread once at start, and after every job.
    """

    def __init__(self, runner: Callable[[Job], dict], *, max_queue: int = 5, keep_finished: int = 20,
                 finished_ttl: float = 1800.0, max_snapshots: int = 60,
                 initializer: Optional[Callable[[], None]] = None, after_job: Optional[Callable[[], None]] = None):
        self._runner, self._after_job = runner, after_job
        self.max_queue, self.keep_finished, self.finished_ttl = max_queue, keep_finished, finished_ttl
        self.max_snapshots = max_snapshots
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []  # active job ids, oldest first; the running one is first
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dip-worker", initializer=initializer)
        self._closed = False
        register = getattr(threading, "_register_atexit", None)
        if register is not None:  # cancel running fits before the interpreter joins the worker thread
            register(self.cancel_all)

    def submit(self, spec: Any, *, task: str, owner: str, total: int, info: Optional[dict] = None,
               job_id: Optional[str] = None) -> Job:
        """Queue a job; raises JobRefused if ``owner`` already has an active job or the queue is full."""
        with self._lock:
            if self._closed:
                raise JobRefused("the app is shutting down; try again in a moment.")
            mine = [self._jobs[j] for j in self._order if self._jobs[j].owner == owner]
            if mine:
                raise JobRefused(self._busy_message(mine[0]))
            if len(self._order) >= self.max_queue:
                raise JobRefused(f"the queue is full ({len(self._order)} jobs waiting or running, the limit is "
                                 f"{self.max_queue}); try again when one has finished.")
            job = Job(job_id or new_job_id(task), task, spec, owner=owner, total=total, info=info,
                      max_snapshots=self.max_snapshots)
            self._jobs[job.id] = job
            self._order.append(job.id)
            job.future = self._executor.submit(self._work, job)
        return job

    def _busy_message(self, job: Job) -> str:
        where = "running" if self._order.index(job.id) == 0 else f"queued ({self._order.index(job.id)} ahead of it)"
        return (f"you already have a {job.task} job {where} ({job.id}). Cancel it or wait until it finishes "
                "before starting another one.")

    def get(self, job_id: Optional[str]) -> Optional[Job]:
        with self._lock:
            return self._jobs.get(job_id) if job_id else None

    def view(self, job_id: str) -> Optional[JobView]:
        job = self.get(job_id)
        return job.view(self.position(job_id)) if job else None

    def position(self, job_id: str) -> Optional[int]:
        """Jobs ahead of this one (0: running or next in line); None when it is not active."""
        with self._lock:
            return self._order.index(job_id) if job_id in self._order else None

    def active_jobs(self) -> list[Job]:
        with self._lock:
            return [self._jobs[j] for j in self._order]

    def active_for(self, owner: str) -> Optional[Job]:
        return next((j for j in self.active_jobs() if j.owner == owner), None)

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop: a queued job never starts, a running one stops within one iteration."""
        job = self.get(job_id)
        if job is None or job.status in FINISHED:
            return False
        job.cancel_event.set()
        if job.future is not None and job.future.cancel():  # still waiting: it will never reach the worker
            self._finish(job, "cancelled")
        return True

    def cancel_all(self) -> None:
        for job in self.active_jobs():
            self.cancel(job.id)

    def shutdown(self, *, wait: bool = True) -> None:
        """Cancel everything and stop the worker (tests, cache clearing, interpreter exit)."""
        with self._lock:
            self._closed = True
        self.cancel_all()
        self._executor.shutdown(wait=wait, cancel_futures=True)

    # -- worker thread --
    def _work(self, job: Job) -> None:
        if job.should_stop():
            self._finish(job, "cancelled")
            return
        job._set(status="running", started=time.time())
        try:
            outcome = self._runner(job)
            job._set(outcome=outcome)
            self._finish(job, "cancelled" if job.should_stop() or (outcome or {}).get("cancelled") else "done")
        except Exception as err:  # a bad job must never kill the worker
            log.exception("job %s failed", job.id)
            self._finish(job, "error", error=str(err) if isinstance(err, DIPError) else f"{type(err).__name__}: {err}")
        finally:
            if self._after_job is not None:
                try:
                    self._after_job()
                except Exception:
                    log.exception("after_job hook failed")

    def _finish(self, job: Job, status: str, error: Optional[str] = None) -> None:
        job._set(status=status, finished=time.time(), error=error)
        with self._lock:
            if job.id in self._order:
                self._order.remove(job.id)
            self._evict()

    def _evict(self) -> None:
        """Forget finished jobs beyond ``keep_finished`` or older than ``finished_ttl`` (their folders stay)."""
        done = sorted((j for j in self._jobs.values() if j.status in FINISHED), key=lambda j: j.finished or 0)
        now = time.time()
        for i, job in enumerate(done):
            if len(done) - i > self.keep_finished or now - (job.finished or now) > self.finished_ttl:
                del self._jobs[job.id]
