"""The Qt side of the engine worker: its callback becomes queued signals on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from .gc_thread import collect_garbage_on_gui_thread


class EngineBridge(QObject):
    """Wraps an engine worker (see `explorer.engine.worker.RenderWorker`) for widgets.

    The worker calls `_deliver` on its own thread; emitting from there queues each signal to the
    bridge's (GUI) thread, so slots never run on the engine thread and the GUI never waits on it.
    """

    frame_rendered = Signal(object)  # FrameRendered
    model_loaded = Signal(object)    # ModelLoaded
    companion_loaded = Signal(object)  # CompanionLoaded
    spectra_compared = Signal(object)  # SpectraCompared
    job_failed = Signal(object)      # JobFailed (a load, a render or a long job)
    job_progressed = Signal(object)  # JobProgress
    job_finished = Signal(object)    # JobFinished

    def __init__(self, make_worker: Callable[[Callable[[Any], None]], Any], parent: QObject | None = None):
        super().__init__(parent)
        collect_garbage_on_gui_thread()  # before the engine thread allocates: see gc_thread
        self._worker = make_worker(self._deliver)

    def submit(self, request) -> int:
        """Render `request` next (latest wins); returns its stamp."""
        return self._worker.submit(request)

    def load(self, path, prepare: Callable[[], object] | None = None, **load_kwargs) -> int:
        """Load a model on the engine thread; returns the job's stamp."""
        return self._worker.load(path, prepare=prepare, **load_kwargs)

    def load_companion(self, path, prepare: Callable[[], object] | None = None) -> int:
        """Load (None: drop) the model to compare spectra with, on the engine thread; returns the job's stamp."""
        return self._worker.load_companion(path, prepare=prepare)

    def compare(self, request) -> int:
        """Both models' spectra of `request`, once no load or render waits (latest wins); returns its stamp."""
        return self._worker.compare(request)

    def run_job(self, fn: Callable, *args, name: str | None = None, **kwargs) -> int:
        """Run a long job beside the renders (see `RenderWorker.run_job`); returns its stamp."""
        return self._worker.run_job(fn, *args, name=name, **kwargs)

    def cancel_job(self, stamp: int) -> None:
        self._worker.cancel_job(stamp)

    @property
    def busy(self) -> bool:
        return self._worker.busy

    @property
    def jobs_busy(self) -> bool:
        return self._worker.jobs_busy

    def close(self) -> None:
        """Stop the engine thread; no signal is emitted after this returns."""
        self._worker.close()

    def _deliver(self, event) -> None:
        """Route a worker event to its signal (called on the worker thread)."""
        kind = type(event).__name__
        if kind == "FrameRendered":
            self.frame_rendered.emit(event)
        elif kind == "ModelLoaded":
            self.model_loaded.emit(event)
        elif kind == "CompanionLoaded":
            self.companion_loaded.emit(event)
        elif kind == "SpectraCompared":
            self.spectra_compared.emit(event)
        elif kind == "JobProgress":
            self.job_progressed.emit(event)
        elif kind == "JobFinished":
            self.job_finished.emit(event)
        else:
            self.job_failed.emit(event)
