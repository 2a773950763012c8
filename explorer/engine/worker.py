"""The engine's one background thread: it owns the model and the device, renders the latest request
and reports back through a callback.

Requests go into a single-slot mailbox: a request submitted while a frame renders replaces the one
waiting, so dragging a slider never builds a queue. Loading a model is a job on the same thread, so
the GUI thread never waits for disk, device or warm-up. Nothing here imports Qt; the GUI wraps the
callback in a queued signal (`explorer.widgets.bridge`).

Long jobs (video export, grids, direction analysis, metrics) run one at a time on a second thread
that shares the loaded model read-only, so the picture stays live while they run and a newer
render never cancels them. Sharing is safe because inference changes nothing in a model: it is in
eval mode without gradients (`no_grad` is per thread), StyleGAN3's magnitude EMAs update only in
training, and a user transform is an argument of each call, never written into the network. On a
GPU both threads queue work on the same device; on a CPU they share its cores, both niced below the
GUI. A load waits for nothing but makes waiting jobs wait for it, so a job runs on the model that is
on show when it starts.

A second, companion model can be loaded beside the one on show (`load_companion`) to compare spectra:
`compare` asks for both models' spectra of a request (`explorer.engine.spectrum.compare_spectra`). It is
a single-slot mailbox like the renders' but runs only when no load or render waits, so comparing never
delays the picture; nothing of the companion runs unless asked.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import LoadError
from .interpolate import Interpolator, Walk
from .model import Model, ModelInfo, load_model
from .ops.impl import kernel_state
from .render import RenderRequest, layer_shapes, render
from .spectrum import Comparison, compare_spectra


@dataclass(frozen=True)
class FrameRendered:
    """A rendered picture; `stamp` is the one `submit` returned for its request."""

    stamp: int
    image: np.ndarray          # uint8 [H, W, 3]
    timings: dict[str, float]  # seconds: mapping, synthesis, readback, total
    request: RenderRequest
    profile: tuple[np.ndarray, np.ndarray] | None = None  # radial power spectrum (cycles/px, dB) of a layer FFT


@dataclass(frozen=True)
class ModelLoaded:
    """A model is loaded and warmed up; later frames come from it."""

    stamp: int
    info: ModelInfo
    device: str
    kernels: str               # 'reference' (forced), 'fast' (PyTorch fast paths), later 'compiled'/'building'
    load_seconds: float
    warmup_seconds: float
    layers: tuple[tuple[str, int, int, int], ...] = ()  # (name, channels, height, width) of each synthesis layer


@dataclass(frozen=True)
class CompanionLoaded:
    """The comparison model is loaded (`RenderWorker.load_companion`)."""

    stamp: int
    info: ModelInfo


@dataclass(frozen=True)
class SpectraCompared:
    """Both models' spectra of a request (`RenderWorker.compare`)."""

    stamp: int
    request: RenderRequest
    comparison: Comparison


@dataclass(frozen=True)
class JobFailed:
    """A load or a render went wrong; the previous model and picture stay."""

    stamp: int
    job: str                   # 'load', 'render', 'compare' (the companion's load or spectra), or a long job
    message: str               # one or two sentences for a person


@dataclass(frozen=True)
class JobProgress:
    """How far a long job is; sent at most every `PROGRESS_INTERVAL` seconds, and at its end."""

    stamp: int
    name: str
    done: int
    total: int
    eta: float | None          # seconds left at the rate so far (None before the first step)
    message: str = ""          # what the job is doing, when it says


@dataclass(frozen=True)
class JobFinished:
    """A long job ended: its function's return value, or None (cancelled is True) when it was cancelled."""

    stamp: int
    name: str
    result: object
    seconds: float
    cancelled: bool = False


@dataclass(frozen=True)
class WalkFrame:
    """A frame of a walk, rendered through the render mailbox like a request (a timeline preview)."""

    walk: Walk
    time: float


WorkerEvent = FrameRendered | ModelLoaded | CompanionLoaded | SpectraCompared | JobFailed | JobProgress | JobFinished
PROGRESS_INTERVAL = 0.1  # seconds between progress events of a job


@dataclass
class _LoadJob:
    stamp: int
    path: str | Path | None  # None: unload (the companion)
    prepare: Callable[[], object] | None
    kwargs: dict


@dataclass
class _Job:
    stamp: int
    name: str
    fn: Callable
    args: tuple
    kwargs: dict
    cancel: threading.Event


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is usable, else 'cpu'; anything else as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def describe_error(e: BaseException) -> str:
    """A message a person can act on, for any exception a job raises."""
    if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower():
        return ("out of memory on the device: try a smaller model, close other programs using the GPU, "
                f"or run on the CPU ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    if isinstance(e, (LoadError, ValueError)):
        return str(e)
    return f"{type(e).__name__}: {e}"


class RenderWorker(threading.Thread):
    """One thread owning the model: `load`, `submit` and `run_job` return at once; results go to `on_event`.

    `on_event` is called on the worker thread (or, for long jobs, the job thread) with a
    `FrameRendered`, `ModelLoaded`, `JobProgress`, `JobFinished` or `JobFailed`; it must not block
    (the GUI adapter only posts a queued signal). On the CPU the worker sets
    torch's (process-wide) thread count to `cpu_threads`, by default one less than the cores: a GUI
    thread competing with every OpenMP thread can slow a 10 ms frame a hundredfold. On Linux the
    thread also runs `nice` steps below the GUI thread, so that on a busy machine input and painting
    win the CPU over rendering.
    """

    def __init__(
        self,
        on_event: Callable[[WorkerEvent], None],
        device: str = "auto",
        render_fn: Callable[[Model, RenderRequest], object] = render,
        cpu_threads: int | None = None,
        nice: int = 10,
    ):
        super().__init__(name="explorer-engine", daemon=True)
        self._on_event = on_event
        self._device_arg = device
        self._render_fn = render_fn
        self._cpu_threads = cpu_threads
        self._nice = nice
        self._cond = threading.Condition()
        self._stamp = 0
        self._pending_request: tuple[int, RenderRequest | WalkFrame] | None = None
        self._pending_load: _LoadJob | None = None
        self._pending_companion: _LoadJob | None = None
        self._pending_compare: tuple[int, RenderRequest] | None = None
        self._loading = False
        self._closing = False
        self._busy = False
        self._jobs: deque[_Job] = deque()
        self._running_job: _Job | None = None
        self._interpolator: tuple[str, Interpolator] | None = None  # the walk (as JSON) of the last WalkFrame
        self.model: Model | None = None  # set on the worker thread; the job thread reads it between loads
        self.companion: Model | None = None  # the model to compare spectra with; worker thread only
        self.device: str | None = None   # resolved on the worker thread ('auto' may initialise CUDA)
        self._job_thread = threading.Thread(target=self._run_jobs, name="explorer-jobs", daemon=True)
        self.start()
        self._job_thread.start()

    # -- called from any thread ------------------------------------------------------------------

    def submit(self, request: RenderRequest | WalkFrame) -> int:
        """Render `request` (or a frame of a walk) next, replacing any request still waiting. Returns its stamp."""
        with self._cond:
            self._stamp += 1
            self._pending_request = (self._stamp, dataclasses.replace(request))
            self._cond.notify_all()
            return self._stamp

    def load(self, path: str | Path, prepare: Callable[[], object] | None = None, **load_kwargs) -> int:
        """Load a checkpoint on the worker thread (after `prepare()`, e.g. writing a default model).

        A load replaces a load still waiting. It runs before any waiting render; on success a render
        request submitted before this call is dropped, since it describes a picture of the previous
        model (requests submitted after it render on the new model). Returns the job's stamp.
        """
        with self._cond:
            self._stamp += 1
            self._pending_load = _LoadJob(self._stamp, path, prepare, load_kwargs)
            self._cond.notify_all()
            return self._stamp

    def load_companion(self, path: str | Path | None, prepare: Callable[[], object] | None = None,
                       **load_kwargs) -> int:
        """Load the model to compare with on the worker thread (None: drop it), replacing one still waiting.

        Success sends `CompanionLoaded`, failure a `JobFailed` named 'compare' (the companion before stays).
        A comparison still waiting is dropped. Returns the job's stamp.
        """
        with self._cond:
            self._stamp += 1
            self._pending_companion = _LoadJob(self._stamp, path, prepare, load_kwargs)
            self._pending_compare = None
            self._cond.notify_all()
            return self._stamp

    def compare(self, request: RenderRequest) -> int:
        """Compute both models' spectra of `request` once no load or render waits, replacing a comparison still
        waiting; sends `SpectraCompared` (nothing without a companion). Returns its stamp."""
        with self._cond:
            self._stamp += 1
            self._pending_compare = (self._stamp, dataclasses.replace(request))
            self._cond.notify_all()
            return self._stamp

    def run_job(self, fn: Callable, *args, name: str | None = None, **kwargs) -> int:
        """Run `fn(model, *args, **kwargs)` on the job thread after the jobs before it; returns its stamp.

        If `fn` takes `progress` and `cancel` keyword arguments (as the engine's long functions do),
        or passes on **kwargs, it gets a callback that sends `JobProgress` events and a
        `threading.Event` that `cancel_job` sets. It ends with a `JobFinished` (its return value)
        or a `JobFailed` named `name` (default: the function's name). Renders go on meanwhile and
        never cancel it.
        """
        with self._cond:
            self._stamp += 1
            self._jobs.append(_Job(self._stamp, name or fn.__name__, fn, args, kwargs, threading.Event()))
            self._cond.notify_all()
            return self._stamp

    def cancel_job(self, stamp: int) -> None:
        """Ask a job to stop: a waiting one is dropped at once, a running one stops at its next step."""
        with self._cond:
            if self._running_job is not None and self._running_job.stamp == stamp:
                self._running_job.cancel.set()
                return
            for job in self._jobs:
                if job.stamp == stamp:
                    self._jobs.remove(job)
                    self._emit(JobFinished(job.stamp, job.name, None, 0.0, cancelled=True))
                    return

    @property
    def busy(self) -> bool:
        """Whether a load, a render or a comparison is running or waiting (long jobs do not count)."""
        with self._cond:
            return self._busy or any(x is not None for x in self._mailboxes())

    def _mailboxes(self) -> tuple:
        return self._pending_load, self._pending_companion, self._pending_request, self._pending_compare

    @property
    def jobs_busy(self) -> bool:
        """Whether a long job is running or waiting."""
        with self._cond:
            return self._running_job is not None or bool(self._jobs)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop after the render in progress, cancel the running job; waiting work is dropped and no
        more events are sent."""
        with self._cond:
            self._closing = True
            self._pending_request = self._pending_compare = None
            self._pending_load = self._pending_companion = None
            self._jobs.clear()
            if self._running_job is not None:
                self._running_job.cancel.set()
            self._cond.notify_all()
        if threading.current_thread() is not self:
            self.join(timeout)
        if threading.current_thread() is not self._job_thread:
            self._job_thread.join(timeout)

    # -- the worker thread ---------------------------------------------------------------------

    def _lower_priority(self) -> None:
        if sys.platform.startswith("linux") and self._nice:
            try:  # Linux schedules threads separately: this lowers only the calling thread
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
            except OSError:
                pass  # not allowed here: run at the normal priority

    def run(self) -> None:
        self._lower_priority()
        self.device = resolve_device(self._device_arg)
        if self.device == "cpu":
            torch.set_num_threads(self._cpu_threads or max(1, (os.cpu_count() or 1) - 1))
        while True:
            with self._cond:
                self._busy = False
                while not (self._closing or any(x is not None for x in self._mailboxes())):
                    self._cond.wait()
                if self._closing:
                    return
                self._busy = True
                # Most urgent first: the model on show, the companion, the picture, then the comparison.
                if self._pending_load is not None:
                    job, self._pending_load = self._pending_load, None
                    self._loading = True
                    work = functools.partial(self._load, job)
                elif self._pending_companion is not None:
                    job, self._pending_companion = self._pending_companion, None
                    work = functools.partial(self._load_companion, job)
                elif self._pending_request is not None:
                    (stamp, request), self._pending_request = self._pending_request, None
                    work = functools.partial(self._render, stamp, request)
                else:
                    (stamp, request), self._pending_compare = self._pending_compare, None
                    work = functools.partial(self._compare, stamp, request)
            work()

    def _emit(self, event: WorkerEvent) -> None:
        # Under the lock, so that once close() returns no event is on its way.
        with self._cond:
            if self._closing:
                return
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a faulty listener must not kill the engine thread
                traceback.print_exc()

    def _open(self, job: _LoadJob) -> Model:
        if job.prepare is not None:
            job.prepare()
        return load_model(job.path, device=self.device, **job.kwargs)

    def _warm_up(self, model: Model) -> RenderRequest:
        """Render a default request (returned) once: first-call allocations and filter caches, so the first
        real frame is quick."""
        warmup = RenderRequest(class_idx=0 if model.info.c_dim else None)
        self._render_fn(model, warmup)
        return warmup

    def _load(self, job: _LoadJob) -> None:
        try:
            t0 = time.perf_counter()
            model = self._open(job)
            t1 = time.perf_counter()
            layers = tuple(layer_shapes(model, self._warm_up(model)))
            t2 = time.perf_counter()
        except Exception as e:  # noqa: BLE001 - the worker turns every failure into an event
            with self._cond:
                self._loading = False
                self._cond.notify_all()
            self._emit(JobFailed(job.stamp, "load", describe_error(e)))
            return
        self._interpolator = None
        with self._cond:
            self.model = model
            self._loading = False
            self._cond.notify_all()
            if self._pending_request is not None and self._pending_request[0] < job.stamp:
                self._pending_request = None
            if self._pending_compare is not None and self._pending_compare[0] < job.stamp:
                self._pending_compare = None
        self._emit(ModelLoaded(job.stamp, model.info, str(model.device), kernel_state(), t1 - t0, t2 - t1, layers))

    def _load_companion(self, job: _LoadJob) -> None:
        if job.path is None:
            self.companion = None
            return
        try:
            model = self._open(job)
            self._warm_up(model)
        except Exception as e:  # noqa: BLE001 - the worker turns every failure into an event
            self._emit(JobFailed(job.stamp, "compare", describe_error(e)))
            return
        self.companion = model
        self._emit(CompanionLoaded(job.stamp, model.info))

    def _compare(self, stamp: int, request: RenderRequest) -> None:
        if self.model is None or self.companion is None:
            return  # dropped, or nothing on show yet: a comparison of nothing
        try:
            comparison = compare_spectra(self.model, self.companion, request)
        except Exception as e:  # noqa: BLE001 - the worker turns every failure into an event
            self._emit(JobFailed(stamp, "compare", describe_error(e)))
            return
        self._emit(SpectraCompared(stamp, request, comparison))

    def _walk_request(self, frame: WalkFrame) -> RenderRequest:
        """The request of a walk's frame; keyframe latents are computed once per walk."""
        key = frame.walk.to_json()
        if self._interpolator is None or self._interpolator[0] != key:
            self._interpolator = (key, Interpolator(self.model, frame.walk))
        return self._interpolator[1].frame_request(frame.time)

    def _render(self, stamp: int, request: RenderRequest | WalkFrame) -> None:
        if self.model is None:
            self._emit(JobFailed(stamp, "render", "no model is loaded yet"))
            return
        try:
            if isinstance(request, WalkFrame):
                request = self._walk_request(request)
            result = self._render_fn(self.model, request)
        except Exception as e:  # noqa: BLE001 - the worker turns every failure into an event
            self._emit(JobFailed(stamp, "render", describe_error(e)))
            return
        self._emit(FrameRendered(stamp, result.image, dict(result.timings), request, getattr(result, "profile", None)))

    # -- the job thread --------------------------------------------------------------------------

    def _run_jobs(self) -> None:
        self._lower_priority()
        while True:
            with self._cond:
                while not self._closing and (not self._jobs or self._loading or self._pending_load is not None):
                    self._cond.wait()
                if self._closing:
                    return
                job = self._running_job = self._jobs.popleft()
            try:
                self._run_job(job)
            finally:
                with self._cond:
                    self._running_job = None

    def _run_job(self, job: _Job) -> None:
        model = self.model
        if model is None:
            self._emit(JobFailed(job.stamp, job.name, "no model is loaded yet"))
            return
        kwargs = dict(job.kwargs)
        params = inspect.signature(job.fn).parameters
        passes_on = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if "progress" in params or passes_on:
            kwargs["progress"] = self._progress_callback(job)
        if "cancel" in params or passes_on:
            kwargs["cancel"] = job.cancel
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                result = job.fn(model, *job.args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the worker turns every failure into an event
            self._emit(JobFailed(job.stamp, job.name, describe_error(e)))
            return
        cancelled = job.cancel.is_set()
        self._emit(JobFinished(job.stamp, job.name, None if cancelled else result, time.perf_counter() - t0,
                               cancelled))

    def _progress_callback(self, job: _Job) -> Callable[[object], None]:
        """A `progress` argument for a job: anything with done, total and eta becomes a `JobProgress`."""
        last = [0.0]

        def report(p) -> None:
            now = time.perf_counter()
            if now - last[0] < PROGRESS_INTERVAL and p.done < p.total:
                return
            last[0] = now
            self._emit(JobProgress(job.stamp, job.name, int(p.done), int(p.total), p.eta,
                                   getattr(p, "message", "")))

        return report
