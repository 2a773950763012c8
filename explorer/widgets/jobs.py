"""Long jobs in the window: a tracker that routes the engine's job events to whoever started a job,
and a non-modal progress line (bar, text, Cancel) that any dock can show its job in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget


def format_seconds(seconds: float | None) -> str:
    """'8 s', '3 min 20 s', or '' when unknown."""
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s"


class JobProgressBar(QWidget):
    """Progress of one job at a time: a bar with a Cancel button while it runs, then its outcome."""

    cancel_requested = Signal(int)  # the stamp of the job on show

    def __init__(self, parent=None):
        super().__init__(parent)
        self.stamp: int | None = None
        self.title = ""
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(14)
        self.cancel = QPushButton("Cancel")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.label)
        self.cancel.clicked.connect(self._on_cancel_clicked)
        self._set_running(False)
        self.label.hide()

    @property
    def running(self) -> bool:
        return self.stamp is not None

    def begin(self, stamp: int, title: str) -> None:
        self.stamp, self.title = stamp, title
        self.bar.setRange(0, 0)  # busy until the first report
        self._show_text(f"{title}: starting…")
        self._set_running(True)

    def progress(self, event) -> None:
        total = max(event.total, 1)
        self.bar.setRange(0, total)
        self.bar.setValue(min(event.done, total))
        left = format_seconds(event.eta)
        text = f"{self.title}: {event.done} / {event.total}" + (f", {left} left" if left else "")
        self._show_text(text + (f" — {event.message}" if event.message else ""))

    def finish(self, text: str) -> None:
        self.stamp = None
        self._set_running(False)
        self._show_text(text)

    def _show_text(self, text: str) -> None:
        self.label.setText(text)
        self.label.show()

    def _set_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        self.cancel.setVisible(running)
        self.cancel.setEnabled(running)

    def _on_cancel_clicked(self) -> None:
        if self.stamp is not None:
            self.cancel.setEnabled(False)
            self._show_text(f"{self.title}: cancelling…")
            self.cancel_requested.emit(self.stamp)


@dataclass
class _Entry:
    title: str
    bar: JobProgressBar | None
    done: Callable[[object], None] | None  # called with the JobFinished of a job that was not cancelled


class JobTracker(QObject):
    """Starts long jobs on the engine and hands each one's events to its progress bar and callback."""

    failed = Signal(str)    # a job failed: a message for the window
    finished = Signal(str)  # a job ended (done or cancelled): a line for the status bar

    def __init__(self, engine, parent=None):
        super().__init__(parent)
        self.engine = engine
        self._jobs: dict[int, _Entry] = {}
        engine.job_progressed.connect(self._on_job_progressed, Qt.ConnectionType.QueuedConnection)
        engine.job_finished.connect(self._on_job_finished, Qt.ConnectionType.QueuedConnection)
        engine.job_failed.connect(self._on_job_failed, Qt.ConnectionType.QueuedConnection)

    def start(self, fn: Callable, *args, title: str, bar: JobProgressBar | None = None,
              done: Callable[[object], None] | None = None, **kwargs) -> int:
        """Run `fn(model, *args, **kwargs)` as a job; returns its stamp."""
        if bar is not None and bar.running:
            self.cancel(bar.stamp)
        stamp = self.engine.run_job(fn, *args, name=title, **kwargs)
        self._jobs[stamp] = _Entry(title, bar, done)
        if bar is not None:
            bar.begin(stamp, title)
            bar.cancel_requested.connect(self.cancel, Qt.ConnectionType.UniqueConnection)
        return stamp

    def cancel(self, stamp: int) -> None:
        if stamp in self._jobs:
            self.engine.cancel_job(stamp)

    def running(self) -> list[int]:
        """Stamps of the jobs started and not yet ended."""
        return list(self._jobs)

    def _on_job_progressed(self, event) -> None:
        entry = self._jobs.get(event.stamp)
        if entry is not None and entry.bar is not None and entry.bar.stamp == event.stamp:
            entry.bar.progress(event)

    def _on_job_finished(self, event) -> None:
        entry = self._jobs.pop(event.stamp, None)
        if entry is None:
            return
        text = (f"{entry.title}: cancelled" if event.cancelled
                else f"{entry.title}: done in {event.seconds:.1f} s")
        if entry.bar is not None and entry.bar.stamp == event.stamp:
            entry.bar.finish(text)
        self.finished.emit(text)
        if not event.cancelled and entry.done is not None:
            entry.done(event)

    def _on_job_failed(self, event) -> None:
        entry = self._jobs.pop(event.stamp, None)
        if entry is None:
            return  # a load or a render: the window reports those
        text = f"{entry.title} failed: {event.message}"
        if entry.bar is not None and entry.bar.stamp == event.stamp:
            entry.bar.finish(text)
        self.failed.emit(text)
