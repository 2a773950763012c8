"""Long jobs on the engine worker: progress, completion, failure and cancellation, beside live renders."""

from __future__ import annotations

import threading
import time

import pytest
from test_worker import Events, frames

from explorer.engine.default_model import ensure_default_model
from explorer.engine.render import RenderRequest
from explorer.engine.video import Progress
from explorer.engine.worker import JobFailed, JobFinished, JobProgress, ModelLoaded, RenderWorker


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    return ensure_default_model(tmp_path_factory.mktemp("models") / "default.pt")


@pytest.fixture
def worker(default_model):
    events = Events()
    worker = RenderWorker(events, device="cpu")
    worker.load(default_model)
    events.wait(lambda items: any(isinstance(e, ModelLoaded) for e in items))
    yield worker, events
    worker.close()


def counting_job(model, steps: int, gate: threading.Event | None = None, progress=None, cancel=None):
    """Counts to `steps`, reporting each step; waits on `gate` after the first."""
    for i in range(steps):
        if cancel.is_set():
            return None
        progress(Progress(i + 1, steps, 0.0, None))
        if gate is not None and i == 0:
            assert gate.wait(30)
    return f"{model.info.family} x{steps}"


def test_a_job_reports_progress_and_its_result(worker):
    w, events = worker
    stamp = w.run_job(counting_job, 5, name="count")
    items = events.wait(lambda items: any(isinstance(e, JobFinished) for e in items))
    done = [e for e in items if isinstance(e, JobFinished)][0]
    assert done.stamp == stamp and done.name == "count" and done.result == "stylegan2 x5" and not done.cancelled
    progress = [e for e in items if isinstance(e, JobProgress)]
    assert progress and progress[-1].done == progress[-1].total == 5  # the last report always comes through
    assert "explorer-jobs" in events.threads


def test_renders_go_on_while_a_job_runs_and_do_not_cancel_it(worker):
    w, events = worker
    gate = threading.Event()
    stamp = w.run_job(counting_job, 3, gate, name="gated")
    events.wait(lambda items: any(isinstance(e, JobProgress) for e in items))
    assert w.jobs_busy
    render_stamp = w.submit(RenderRequest(seeds=[(3, 1.0)]))
    events.wait(lambda items: any(f.stamp == render_stamp for f in frames(events)))
    assert w.jobs_busy  # the job still waits at its gate: the render neither waited for it nor cancelled it
    gate.set()
    events.wait(lambda items: any(isinstance(e, JobFinished) and e.stamp == stamp for e in items))
    assert events.of(JobFinished)[0].result == "stylegan2 x3"


def test_cancel_a_running_and_a_waiting_job(worker):
    w, events = worker
    gate = threading.Event()
    running = w.run_job(counting_job, 3, gate, name="running")
    waiting = w.run_job(counting_job, 3, name="waiting")
    events.wait(lambda items: any(isinstance(e, JobProgress) for e in items))
    w.cancel_job(waiting)
    w.cancel_job(running)
    gate.set()
    items = events.wait(lambda items: len([e for e in items if isinstance(e, JobFinished)]) == 2)
    finished = {e.stamp: e for e in items if isinstance(e, JobFinished)}
    assert finished[running].cancelled and finished[running].result is None
    assert finished[waiting].cancelled


def test_a_failing_job_is_reported_and_the_worker_goes_on(worker):
    w, events = worker

    def broken(model):
        raise ValueError("this job cannot work")

    stamp = w.run_job(broken, name="broken")
    failed = events.wait(lambda items: any(isinstance(e, JobFailed) for e in items))
    failure = [e for e in failed if isinstance(e, JobFailed)][0]
    assert (failure.stamp, failure.job, failure.message) == (stamp, "broken", "this job cannot work")
    w.run_job(counting_job, 2, name="after")
    events.wait(lambda items: any(isinstance(e, JobFinished) for e in items))


def test_close_cancels_the_running_job(default_model):
    events = Events()
    w = RenderWorker(events, device="cpu")
    w.load(default_model)
    events.wait(lambda items: any(isinstance(e, ModelLoaded) for e in items))
    started = threading.Event()

    def endless(model, cancel=None):
        started.set()
        while not cancel.is_set():
            time.sleep(0.01)

    w.run_job(endless)
    assert started.wait(30)
    t0 = time.perf_counter()
    w.close()
    assert time.perf_counter() - t0 < 5 and not w.jobs_busy
