"""Jobs and the process-wide job registry: one worker thread runs fits one at a time, first in, first out.

No Streamlit here (the worker thread must never call ``st.*``), so this module is unit-tested with a fake
runner. A runner is ``runner(job) -> JobOutcome`` (or the same as a dict, converted here): it reads ``job.spec``,
reports through ``job.add_step`` / ``job.add_snapshot``, polls ``job.should_stop()`` and returns the outcome
(metrics, run folder, images). Pages read a consistent copy with ``job.view()``.

Every job has an owner (an opaque key of the browser that submitted it): only the owner may cancel it, and the
per-person limit counts per owner. The worker is a daemon thread, so a server that exits does not wait for a fit
to end: app jobs checkpoint as they go, and the next process queues them again (``restore``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional, Union

from dip.core.errors import DIPError
from dip.core.records import JobOutcome, RunMetrics

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINISHED = ("done", "cancelled", "error")


class JobRefused(DIPError):
    """A job cannot be queued now: its owner already has one, the queue is full, or it exceeds a limit."""


def new_job_id(task: str) -> str:
    """Sortable, URL-safe and folder-safe id, e.g. ``20261122-043000-denoise-3fa2c1``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{task}-{secrets.token_hex(3)}"


@dataclass(frozen=True, kw_only=True)
class JobView:
    """A copy of a job's state taken under its lock (or read back from a run folder). Made by keyword only."""

    id: str
    task: str
    status: str
    iteration: int
    total: int
    history: dict  # series name ("" for single-image tasks) -> list of StepRecord-like rows
    snapshots: dict  # series name -> list of (iteration, uint8 preview)
    info: dict  # what was known at submit time: source, preset, blind, psnr_degraded, images
    outcome: Optional[JobOutcome] = None  # the runner's result: metrics, run_dir, images, baselines
    error: Optional[str] = None
    created: float = 0.0
    started: Optional[float] = None
    finished: Optional[float] = None
    position: Optional[int] = None  # jobs ahead of this one (0: running or next); None when finished
    note: Optional[str] = None  # what a running job does after its iterations, e.g. "comparing with ..."
    owner: str = ""  # the owner's key (never the browser's secret itself)
    recent: tuple = ()  # (iterations done, time.monotonic()) of the latest steps, for a smoothed rate
    stop_reason: Optional[str] = None  # why the worker stopped it early, e.g. the wall-clock limit
    resumed: bool = False  # queued again after a server restart, continuing from its checkpoint

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def metrics(self) -> Optional[RunMetrics]:
        """The finished run's metrics; None while it runs, and when it recorded none."""
        return self.outcome.metrics if self.outcome is not None else None

    @property
    def run_dir(self) -> Optional[str]:
        """The run folder of a finished job (None before, or when it was never written)."""
        return self.outcome.run_dir if self.outcome is not None else None

    @property
    def images(self) -> dict:
        """Previews by name: those known at submit time (``info["images"]``), replaced by the outcome's."""
        return {**self.info.get("images", {}), **(self.outcome.images if self.outcome is not None else {})}

    @property
    def baselines(self) -> dict[str, Mapping[str, Any]]:
        """Classical methods by name: the run's full list when finished, else the ones previewed before the run."""
        records = (self.outcome.baselines if self.outcome is not None else ()) or self.info.get("baselines") or []
        return {r["name"]: r for r in records}

    @property
    def iterations_per_second(self) -> Optional[float]:
        """The recent rate (over the last ``RATE_WINDOW`` iterations, the first two left out: the first iteration
        also builds and warms up the network), else the average since the start."""
        if len(self.recent) >= 3:
            (n0, t0), (n1, t1) = self.recent[0], self.recent[-1]
            return (n1 - n0) / (t1 - t0) if t1 > t0 else None
        if not self.started or not self.iteration:
            return None
        elapsed = (self.finished or time.time()) - self.started
        return self.iteration / elapsed if elapsed > 0 else None

    @property
    def eta_seconds(self) -> Optional[float]:
        """Seconds left, from the recent rate; None until three iterations after the warm-up have been timed."""
        if self.status != "running" or len(self.recent) < 3:
            return None
        rate = self.iterations_per_second
        return (self.total - self.iteration) / rate if rate else None


RATE_WINDOW = 30  # iterations the progress rate and ETA are measured over


def as_outcome(value: Union[JobOutcome, Mapping[str, Any], None]) -> Optional[JobOutcome]:
    """A runner's return value as a ``JobOutcome``.

    Parameters
    ----------
    value : JobOutcome, Mapping or None
        A runner's dict (``ui.service.runners.run_job`` returns one until it builds the record itself) is read
        with ``JobOutcome.from_dict``; None stays None.

    Returns
    -------
    JobOutcome or None

    Raises
    ------
    TypeError
        For anything else (the worker then marks the job failed).
    """
    if value is None or isinstance(value, JobOutcome):
        return value
    return JobOutcome.from_dict(value)


class Job:
    """One queued fit. The worker writes through the ``add_*`` methods; readers call ``view()``."""

    def __init__(
        self,
        job_id: str,
        task: str,
        spec: Any,
        *,
        owner: str,
        total: int,
        info: Optional[dict] = None,
        max_snapshots: int = 60,
        max_seconds: Optional[float] = None,
        created: Optional[float] = None,
        resumed: bool = False,
    ):
        self.id, self.task, self.spec, self.owner, self.total = job_id, task, spec, owner, total
        self.info = dict(info or {})
        self.max_snapshots, self.max_seconds, self.resumed = max_snapshots, max_seconds, resumed
        self.status = "queued"
        self.iteration = 0
        self.history: dict[str, list] = {}
        self.snapshots: dict[str, list] = {}
        self.outcome: Optional[JobOutcome] = None
        self.error: Optional[str] = None
        self.note: Optional[str] = None
        self.stop_reason: Optional[str] = None
        self.created, self.started, self.finished = created or time.time(), None, None
        self.cancel_event = threading.Event()
        self._recent: deque = deque(maxlen=RATE_WINDOW)
        self._fresh = 0  # iterations run (not restored) in this process
        self._lock = threading.Lock()

    # -- called by the runner (worker thread) --
    def should_stop(self) -> bool:
        """True once cancelled, or once the job has run past its wall-clock limit (then ``stop_reason`` says so)."""
        if self.cancel_event.is_set():
            return True
        if self.max_seconds is not None and self.started is not None and time.time() - self.started > self.max_seconds:
            with self._lock:
                self.stop_reason = f"it reached this server's time limit of {self.max_seconds / 60:g} min per job"
            self.cancel_event.set()
            return True
        return False

    def add_step(self, record, series: str = "") -> None:
        with self._lock:
            self.history.setdefault(series, []).append(record)
            self.iteration += 1
            self._fresh += 1
            if self._fresh > 2:  # past this process's warm-up (the first iteration also builds the network)
                self._recent.append((self.iteration, time.monotonic()))

    def restore_step(self, record, series: str = "") -> None:
        """An iteration done before a restart (from the checkpoint): counted, but not timed."""
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
            return JobView(
                id=self.id,
                task=self.task,
                status=self.status,
                iteration=self.iteration,
                total=self.total,
                history={k: list(v) for k, v in self.history.items()},
                snapshots={k: list(v) for k, v in self.snapshots.items()},
                info=dict(self.info),
                outcome=self.outcome,
                error=self.error,
                created=self.created,
                started=self.started,
                finished=self.finished,
                position=position,
                note=self.note,
                owner=self.owner,
                recent=tuple(self._recent),
                stop_reason=self.stop_reason,
                resumed=self.resumed,
            )


class JobRegistry:
    """Process-wide queue of jobs with a single worker (one GPU: one fit at a time).

    Parameters
    ----------
    runner : ``runner(job) -> JobOutcome`` (a dict of the same keys, or None, is converted: ``as_outcome``);
        exceptions it raises mark the job "error" and never stop the worker.
    admit : ``admit(spec)``, called before a job is queued; it raises (e.g. ``dip.core.limits.LimitExceeded``) to refuse
        a job that exceeds the server's limits, so no page can queue one.
    max_queue : most jobs queued or running at once (all owners together).
    max_per_owner : most jobs one owner may have queued or running.
    max_seconds : wall-clock limit of one job; the worker stops it there (None: no limit).
    keep_finished, finished_ttl : finished jobs stay in memory (for polling pages) up to this many / seconds;
        their run folders stay on disk.
    initializer, after_job : called in the worker thread once at start, and ``after_job(job)`` after every job.
    accept, discard : ``accept(job)`` is called as a job is queued (e.g. to write it to disk, so that a restarted
        server can queue it again; if it raises, the job is refused), ``discard(job)`` when a queued job is
        cancelled before it started (the runner, which cleans up after a job, never sees it).
    slots : ``slots()``, how many jobs may run at once (a cluster's places, ``ui.service.ray_backend``); read
        under the registry's lock, so it must answer at once (a cached number). None: one job at a time. With
        it, up to ``max_queue`` worker threads wait for a free place, and ``position`` counts from the free places.
    """

    def __init__(
        self,
        runner: Callable[[Job], Union[JobOutcome, Mapping[str, Any], None]],
        *,
        admit: Optional[Callable[[Any], None]] = None,
        accept: Optional[Callable[[Job], None]] = None,
        discard: Optional[Callable[[Job], None]] = None,
        max_queue: int = 5,
        max_per_owner: int = 1,
        max_seconds: Optional[float] = None,
        keep_finished: int = 20,
        finished_ttl: float = 1800.0,
        max_snapshots: int = 60,
        initializer: Optional[Callable[[], None]] = None,
        after_job: Optional[Callable[[Job], None]] = None,
        slots: Optional[Callable[[], int]] = None,
    ):
        self._runner, self._admit, self._initializer, self._after_job = runner, admit, initializer, after_job
        self._slots, self._running = slots, 0
        self._accept, self._discard = accept, discard
        self.max_queue, self.max_per_owner, self.max_seconds = max_queue, max_per_owner, max_seconds
        self.keep_finished, self.finished_ttl, self.max_snapshots = keep_finished, finished_ttl, max_snapshots
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []  # active job ids, oldest first; the running one is first
        self._waiting: deque[str] = deque()  # queued ids the worker has not taken yet
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        # A daemon thread: a server that exits (or is killed) does not wait for a fit; app jobs resume from their
        # checkpoints in the next process.
        self._threads = [
            threading.Thread(target=self._loop, name="dip-worker", daemon=True)
            for _ in range(1 if slots is None else max(1, max_queue))
        ]
        self._thread = self._threads[0]
        for thread in self._threads:
            thread.start()

    def submit(
        self, spec: Any, *, task: str, owner: str, total: int, info: Optional[dict] = None, job_id: Optional[str] = None
    ) -> Job:
        """Queue a job; raises JobRefused when ``owner`` has as many active jobs as allowed, the queue is full, or
        ``admit`` refuses it (its message names the limit)."""
        if self._admit is not None:
            try:
                self._admit(spec)
            except DIPError as err:
                raise JobRefused(str(err)) from None
        with self._lock:
            if self._closed:
                raise JobRefused("the app is shutting down; try again in a moment.")
            mine = [self._jobs[j] for j in self._order if self._jobs[j].owner == owner]
            if len(mine) >= self.max_per_owner:
                raise JobRefused(self._busy_message(mine[0]))
            if len(self._order) >= self.max_queue:
                raise JobRefused(
                    f"the queue is full ({len(self._order)} jobs waiting or running, the limit is "
                    f"{self.max_queue}); try again when one has finished."
                )
            job = Job(
                job_id or new_job_id(task),
                task,
                spec,
                owner=owner,
                total=total,
                info=info,
                max_snapshots=self.max_snapshots,
                max_seconds=self.max_seconds,
            )
            if self._accept is not None:
                try:
                    self._accept(job)
                except OSError as err:
                    log.exception("could not store job %s", job.id)
                    raise JobRefused(
                        f"the server could not store the job ({err.strerror or type(err).__name__}); try again later."
                    ) from None
            return self._enqueue(job)

    def restore(
        self,
        spec: Any,
        *,
        job_id: str,
        task: str,
        owner: str,
        total: int,
        info: Optional[dict] = None,
        created: Optional[float] = None,
    ) -> Job:
        """Queue again a job an earlier process accepted but did not finish (no limits: it was admitted once)."""
        with self._lock:
            return self._enqueue(
                Job(
                    job_id,
                    task,
                    spec,
                    owner=owner,
                    total=total,
                    info=info,
                    created=created,
                    max_snapshots=self.max_snapshots,
                    max_seconds=self.max_seconds,
                    resumed=True,
                )
            )

    def _enqueue(self, job: Job) -> Job:
        self._jobs[job.id] = job
        self._order.append(job.id)
        self._waiting.append(job.id)
        self._wake.notify()
        return job

    def _busy_message(self, job: Job) -> str:
        where = "running" if self._order.index(job.id) == 0 else f"queued ({self._order.index(job.id)} ahead of it)"
        return (
            f"you already have a {job.task} job {where} ({job.id}). Cancel it or wait until it finishes "
            "before starting another one."
        )

    def get(self, job_id: Optional[str]) -> Optional[Job]:
        with self._lock:
            return self._jobs.get(job_id) if job_id else None

    def view(self, job_id: str) -> Optional[JobView]:
        job = self.get(job_id)
        return job.view(self.position(job_id)) if job else None

    def position(self, job_id: str) -> Optional[int]:
        """Jobs ahead of this one (0: running or next in line); None when it is not active."""
        with self._lock:
            if job_id not in self._order:
                return None
            if self._jobs[job_id].status == "running":
                return 0
            # the jobs ahead of it that hold the places it waits for (all of them with one place)
            return max(0, self._order.index(job_id) - self._capacity() + 1)

    def _capacity(self) -> int:
        """Jobs that may run at once now (at least one, so that positions stay meaningful)."""
        return 1 if self._slots is None else max(1, int(self._slots()))

    def active_jobs(self) -> list[Job]:
        with self._lock:
            return [self._jobs[j] for j in self._order]

    def active_for(self, owner: str) -> Optional[Job]:
        return next((j for j in self.active_jobs() if j.owner == owner), None)

    def cancel(self, job_id: str, owner: Optional[str] = None) -> bool:
        """Ask a job to stop: a queued job never starts, a running one stops within one iteration.

        With ``owner`` (what pages pass) only that owner's job is cancelled; False for anyone else's.
        """
        job = self.get(job_id)
        if job is None or job.status in FINISHED or (owner is not None and job.owner != owner):
            return False
        job.cancel_event.set()
        with self._lock:
            never_started = job_id in self._waiting
            if never_started:
                self._waiting.remove(job_id)
        if never_started:
            self._finish(job, "cancelled")
            if self._discard is not None:
                try:
                    self._discard(job)
                except Exception:
                    log.exception("discarding job %s failed", job.id)
        return True

    def cancel_all(self) -> None:
        for job in self.active_jobs():
            self.cancel(job.id)

    def shutdown(self, *, wait: bool = True) -> None:
        """Cancel everything and stop the worker (tests)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self.cancel_all()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()

    # -- worker thread --
    def _loop(self) -> None:
        if self._initializer is not None and threading.current_thread() is self._thread:
            try:
                self._initializer()
            except Exception:
                log.exception("worker initializer failed")
        while True:
            with self._lock:
                # With slots, a place may free up without a notify (a cluster grows): look again every second.
                while not self._closed and not (self._waiting and self._running < self._free_places()):
                    self._wake.wait(None if self._slots is None else 1.0)
                if not self._waiting:
                    return
                job = self._jobs[self._waiting.popleft()]
                self._running += 1
            try:
                self._work(job)
            finally:
                with self._lock:
                    self._running -= 1
                    self._wake.notify_all()

    def _free_places(self) -> int:
        """Jobs that may run now: one without slots; else the cluster's places (0 while it cannot be reached)."""
        return 1 if self._slots is None else int(self._slots())

    def _work(self, job: Job) -> None:
        if job.cancel_event.is_set():  # cancelled between leaving the queue and starting
            self._finish(job, "cancelled")
            if self._discard is not None:
                self._discard(job)
            return
        job._set(status="running", started=time.time())
        try:
            outcome = as_outcome(self._runner(job))
            job._set(outcome=outcome)
            cancelled = job.should_stop() or (outcome is not None and outcome.cancelled)
            self._finish(job, "cancelled" if cancelled else "done")
        except Exception as err:  # a bad job must never kill the worker
            log.exception("job %s failed", job.id)
            # The engine's own errors are written for the user; anything else may hold server paths or internals,
            # which stay in the server log.
            self._finish(
                job,
                "error",
                error=str(err)
                if isinstance(err, DIPError)
                else f"an internal error stopped it ({type(err).__name__}); the server log has the details",
            )
        finally:
            if self._after_job is not None:
                try:
                    self._after_job(job)
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
