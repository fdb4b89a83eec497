"""The job registry with a fake runner: FIFO order, queue positions, cancel, errors, bounds. No Streamlit."""

from __future__ import annotations

import threading
import time

import pytest

from dip.core.errors import DIPError
from ui.service.jobs import JobRefused, JobRegistry


def wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


class FakeRunner:
    """Counts iterations until ``spec['steps']``, waiting for ``gate`` first; ``spec['fail']`` raises."""

    def __init__(self):
        self.order, self.gate = [], threading.Event()
        self.gate.set()

    def __call__(self, job):
        self.order.append(job.spec["name"])
        self.gate.wait()
        if job.spec.get("fail"):
            raise job.spec["fail"]
        for i in range(job.spec.get("steps", 3)):
            if job.should_stop():
                return {"cancelled": True}
            job.add_step(i)
            job.add_snapshot(i, f"image {i}")
            time.sleep(job.spec.get("sleep", 0))
        return {"metrics": {"steps": job.iteration}}


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture
def registry(runner):
    reg = JobRegistry(runner, max_queue=10, max_snapshots=8)
    yield reg
    reg.shutdown(wait=True)


def submit(reg, name, owner=None, **spec):
    return reg.submit({"name": name, **spec}, task="denoise", owner=owner or name, total=spec.get("steps", 3))


def test_jobs_run_first_in_first_out_with_queue_positions(registry, runner):
    runner.gate.clear()
    jobs = [submit(registry, n) for n in "abc"]
    wait(lambda: jobs[0].status == "running")
    assert [registry.position(j.id) for j in jobs] == [0, 1, 2]
    assert [j.status for j in jobs] == ["running", "queued", "queued"]
    runner.gate.set()
    wait(lambda: all(j.status == "done" for j in jobs))
    assert runner.order == ["a", "b", "c"]
    assert registry.position(jobs[0].id) is None
    outcome = jobs[2].view().outcome  # the runner's dict, stored as a record
    assert outcome.to_dict() == {
        "metrics": {"steps": 3},
        "cancelled": False,
        "baselines": [],
        "images": {},
        "run_dir": None,
    }


def test_cancel_stops_a_running_job_within_one_iteration(registry):
    job = submit(registry, "long", steps=10**6, sleep=0.001)
    wait(lambda: job.iteration >= 5)
    at_cancel = job.iteration
    assert registry.cancel(job.id)
    wait(lambda: job.status == "cancelled")
    assert job.iteration - at_cancel <= 1


def test_cancel_of_a_queued_job_means_it_never_starts(registry, runner):
    runner.gate.clear()
    first, second = submit(registry, "first"), submit(registry, "second")
    registry.cancel(second.id)
    assert second.status == "cancelled"
    runner.gate.set()
    wait(lambda: first.status == "done")
    assert runner.order == ["first"]


def test_a_failing_job_is_marked_and_the_worker_keeps_going(registry):
    bad = submit(registry, "bad", fail=RuntimeError("boom"))
    user = submit(registry, "user error", fail=DIPError("image is 20x20 px; need 64x64"))
    good = submit(registry, "good")
    wait(lambda: good.status == "done")
    assert bad.status == "error" and "RuntimeError" in bad.error and "boom" not in bad.error  # details: the log
    assert user.error == "image is 20x20 px; need 64x64"  # the engine's message, as is


def test_one_active_job_per_owner_and_a_bounded_queue(runner):
    runner.gate.clear()
    reg = JobRegistry(runner, max_queue=2)
    try:
        submit(reg, "a", owner="alice")
        with pytest.raises(JobRefused, match="you already have a denoise job running"):
            submit(reg, "a2", owner="alice")
        submit(reg, "b", owner="bob")
        with pytest.raises(JobRefused, match="queue is full"):
            submit(reg, "c", owner="carol")
        assert reg.active_for("bob") is not None and reg.active_for("carol") is None
    finally:
        runner.gate.set()
        reg.shutdown()


def test_snapshots_are_bounded_and_cover_the_whole_run(registry):
    job = submit(registry, "many", steps=100)
    wait(lambda: job.status == "done")
    its = [i for i, _ in job.view().snapshots[""]]
    assert len(its) <= 8 and its[0] == 0 and its[-1] == 99
    assert len(job.view().history[""]) == 100


def test_finished_jobs_are_evicted_beyond_the_limit(runner):
    reg = JobRegistry(runner, keep_finished=2)
    try:
        jobs = [submit(reg, n) for n in "abcd"]
        wait(lambda: all(j.status == "done" for j in jobs))
        assert [reg.get(j.id) is not None for j in jobs] == [False, False, True, True]
    finally:
        reg.shutdown()


def test_view_is_a_copy(registry):
    job = submit(registry, "x")
    wait(lambda: job.status == "done")
    v = job.view()
    v.history[""].clear()
    assert len(job.view().history[""]) == 3
    assert v.iterations_per_second is not None and v.eta_seconds is None


def test_only_the_owner_can_cancel(registry):
    job = submit(registry, "mine", owner="alice", steps=10**6, sleep=0.001)
    wait(lambda: job.iteration >= 2)
    assert registry.cancel(job.id, owner="mallory") is False  # a stranger who has the job's id
    time.sleep(0.05)
    assert job.status == "running" and not job.cancel_event.is_set()
    assert registry.cancel(job.id, owner="alice") is True
    wait(lambda: job.status == "cancelled")


def test_admission_check_refuses_with_its_own_message(runner):
    from dip.core.limits import LimitExceeded

    def admit(spec):
        if spec.get("big"):
            raise LimitExceeded("this job needs 900 TFLOP; this server allows 400 TFLOP per job.")

    reg = JobRegistry(runner, admit=admit)
    try:
        with pytest.raises(JobRefused, match="900 TFLOP"):
            submit(reg, "huge", big=True)
        assert reg.active_jobs() == []
        assert submit(reg, "small").id
    finally:
        reg.shutdown()


def test_a_job_past_its_wall_clock_limit_is_stopped_and_says_why(runner):
    reg = JobRegistry(runner, max_seconds=0.2)
    try:
        job = submit(reg, "slow", steps=10**6, sleep=0.01)
        wait(lambda: job.status == "cancelled", timeout=20)
        assert "time limit" in job.view().stop_reason
    finally:
        reg.shutdown()


def test_accept_stores_each_job_and_discard_forgets_one_cancelled_in_the_queue(runner):
    accepted, discarded = [], []
    runner.gate.clear()
    reg = JobRegistry(runner, accept=lambda job: accepted.append(job.id), discard=lambda job: discarded.append(job.id))
    try:
        first, second = submit(reg, "first"), submit(reg, "second")
        assert accepted == [first.id, second.id]
        reg.cancel(second.id)
        assert discarded == [second.id]
    finally:
        runner.gate.set()
        reg.shutdown()


def test_a_job_that_cannot_be_stored_is_refused(runner):
    def full_disk(job):
        raise OSError(28, "No space left on device")

    reg = JobRegistry(runner, accept=full_disk)
    try:
        with pytest.raises(JobRefused, match="could not store the job"):
            submit(reg, "x")
        assert reg.active_jobs() == []
    finally:
        reg.shutdown()


def test_restored_jobs_keep_their_id_and_owner_and_say_they_resumed(registry):
    job = registry.restore(
        {"name": "back"}, job_id="20261201-120000-denoise-abcdef", task="denoise", owner="alice", total=3, created=123.0
    )
    wait(lambda: job.status == "done")
    v = job.view()
    assert (v.id, v.owner, v.created, v.resumed) == ("20261201-120000-denoise-abcdef", "alice", 123.0, True)
    assert registry.active_for("alice") is None


def test_the_worker_never_keeps_the_process_alive(registry):
    """A server that exits must not wait for a fit (app jobs resume from checkpoints in the next process)."""
    workers = [t for t in threading.enumerate() if t.name == "dip-worker"]
    assert workers and all(t.daemon for t in workers)


def test_the_eta_comes_from_recent_iterations_not_the_warm_up():
    """The first iteration also builds the network: an average since the start read minutes for a seconds-long job."""
    from ui.service.jobs import JobView

    def running(iteration, recent, started_ago=60.0):
        return JobView(
            id="j",
            task="denoise",
            status="running",
            iteration=iteration,
            total=1000,
            history={},
            snapshots={},
            info={},
            started=time.time() - started_ago,
            recent=tuple(recent),
        )

    early = running(2, [])
    assert early.eta_seconds is None and early.iterations_per_second is not None  # measuring: no ETA yet
    warm = running(50, [(n, 100.0 + 0.1 * n) for n in range(21, 51)])  # 10 it/s lately, 50 it in a minute
    assert warm.iterations_per_second == pytest.approx(10.0)
    assert warm.eta_seconds == pytest.approx(95.0)  # 950 left at 10 it/s, not at 50/60 it/s (19 min)


def test_jobs_time_only_fresh_iterations(registry):
    job = submit(registry, "x", steps=40)
    wait(lambda: job.status == "done")
    recent = job.view().recent
    assert [n for n, _ in recent] == list(range(3, 41))[-len(recent) :]  # the first two (warm-up) are not timed
