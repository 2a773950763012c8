"""Garbage collection on the GUI thread only.

Python's cyclic collector runs on whichever thread happens to allocate when a threshold is crossed.
With an engine thread allocating all the time, that is usually the engine thread, and a collection
there can free Python wrappers that own Qt objects: their C++ destructors then run on the wrong
thread, which deadlocks (seen: the engine thread inside a collection, the GUI thread painting) or
crashes. So once a window exists, automatic collection is turned off and a timer on the GUI thread
collects instead, generation by generation, as the automatic collector would.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 500


class _GuiThreadCollector(QObject):
    def __init__(self, app: QCoreApplication):
        super().__init__(app)
        self.thresholds = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        self.timer.start(INTERVAL_MS)

    def collect(self) -> None:
        """Collect the generations whose counts passed their thresholds (what `gc` would have done)."""
        counts = gc.get_count()
        generation = -1
        for g in range(3):
            if counts[g] <= self.thresholds[g]:
                break
            generation = g
        if generation >= 0:
            gc.collect(generation)


def collect_garbage_on_gui_thread() -> None:
    """Turn off automatic collection and collect on a GUI-thread timer instead (once per application)."""
    app = QCoreApplication.instance()
    if app is None or app.findChild(_GuiThreadCollector) is not None:
        return
    _GuiThreadCollector(app)
    gc.disable()
