"""The engine's one background thread: it owns the model and the device, renders the latest request
and reports back through a callback.

Requests go into a single-slot mailbox: a request submitted while a frame renders replaces the one
waiting, so dragging a slider never builds a queue. Loading a model is a job on the same thread, so
the GUI thread never waits for disk, device or warm-up. Nothing here imports Qt; the GUI wraps the
callback in a queued signal (`explorer.widgets.bridge`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import LoadError
from .model import Model, ModelInfo, load_model
from .ops.impl import kernel_state
from .render import RenderRequest, render


@dataclass(frozen=True)
class FrameRendered:
    """A rendered picture; `stamp` is the one `submit` returned for its request."""

    stamp: int
    image: np.ndarray          # uint8 [H, W, 3]
    timings: dict[str, float]  # seconds: mapping, synthesis, readback, total
    request: RenderRequest


@dataclass(frozen=True)
class ModelLoaded:
    """A model is loaded and warmed up; later frames come from it."""

    stamp: int
    info: ModelInfo
    device: str
    kernels: str               # 'reference' (forced), 'fast' (PyTorch fast paths), later 'compiled'/'building'
    load_seconds: float
    warmup_seconds: float


@dataclass(frozen=True)
class JobFailed:
    """A load or a render went wrong; the previous model and picture stay."""

    stamp: int
    job: str                   # 'load' or 'render'
    message: str               # one or two sentences for a person


WorkerEvent = FrameRendered | ModelLoaded | JobFailed


@dataclass
class _LoadJob:
    stamp: int
    path: str | Path
    prepare: Callable[[], object] | None
    kwargs: dict


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
    """One thread owning the model: `load` and `submit` return at once; results go to `on_event`.

    `on_event` is called on the worker thread with a `FrameRendered`, `ModelLoaded` or `JobFailed`;
    it must not block (the GUI adapter only posts a queued signal). On the CPU the worker sets
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
        self._pending_request: tuple[int, RenderRequest] | None = None
        self._pending_load: _LoadJob | None = None
        self._closing = False
        self._busy = False
        self.model: Model | None = None  # read it only on the worker thread (or after close)
        self.device: str | None = None   # resolved on the worker thread ('auto' may initialise CUDA)
        self.start()

    # -- called from any thread ------------------------------------------------------------------

    def submit(self, request: RenderRequest) -> int:
        """Render `request` next, replacing any request still waiting. Returns its stamp."""
        with self._cond:
            self._stamp += 1
            self._pending_request = (self._stamp, dataclasses.replace(request))
            self._cond.notify()
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
            self._cond.notify()
            return self._stamp

    @property
    def busy(self) -> bool:
        """Whether a job is running or waiting."""
        with self._cond:
            return self._busy or self._pending_load is not None or self._pending_request is not None

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop after the job in progress; waiting jobs are dropped and no more events are sent."""
        with self._cond:
            self._closing = True
            self._pending_request = None
            self._pending_load = None
            self._cond.notify()
        if threading.current_thread() is not self:
            self.join(timeout)

    # -- the worker thread ---------------------------------------------------------------------

    def run(self) -> None:
        if sys.platform.startswith("linux") and self._nice:
            try:  # Linux schedules threads separately: this lowers only the engine thread
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
            except OSError:
                pass  # not allowed here: run at the normal priority
        self.device = resolve_device(self._device_arg)
        if self.device == "cpu":
            torch.set_num_threads(self._cpu_threads or max(1, (os.cpu_count() or 1) - 1))
        while True:
            with self._cond:
                self._busy = False
                while not (self._closing or self._pending_load or self._pending_request):
                    self._cond.wait()
                if self._closing:
                    return
                self._busy = True
                job: _LoadJob | tuple[int, RenderRequest]
                if self._pending_load is not None:
                    job, self._pending_load = self._pending_load, None
                else:
                    job, self._pending_request = self._pending_request, None
            if isinstance(job, _LoadJob):
                self._load(job)
            elif self.model is None:
                self._emit(JobFailed(job[0], "render", "no model is loaded yet"))
            else:
                self._render(*job)

    def _emit(self, event: WorkerEvent) -> None:
        # Under the lock, so that once close() returns no event is on its way.
        with self._cond:
            if self._closing:
                return
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a faulty listener must not kill the engine thread
                traceback.print_exc()

    def _load(self, job: _LoadJob) -> None:
        try:
            t0 = time.perf_counter()
            if job.prepare is not None:
                job.prepare()
            model = load_model(job.path, device=self.device, **job.kwargs)
            t1 = time.perf_counter()
            # Warm up (first-call allocations, filter caches) so the first real frame is quick.
            self._render_fn(model, RenderRequest(class_idx=0 if model.info.c_dim else None))
            t2 = time.perf_counter()
        except Exception as e:  # noqa: BLE001 - the worker turns every failure into an event
            self._emit(JobFailed(job.stamp, "load", describe_error(e)))
            return
        self.model = model
        with self._cond:
            if self._pending_request is not None and self._pending_request[0] < job.stamp:
                self._pending_request = None
        self._emit(ModelLoaded(job.stamp, model.info, str(model.device), kernel_state(), t1 - t0, t2 - t1))

    def _render(self, stamp: int, request: RenderRequest) -> None:
        try:
            result = self._render_fn(self.model, request)
        except Exception as e:  # noqa: BLE001 - the worker turns every failure into an event
            self._emit(JobFailed(stamp, "render", describe_error(e)))
            return
        self._emit(FrameRendered(stamp, result.image, dict(result.timings), request))
