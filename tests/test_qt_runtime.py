"""The installed Qt binding must not leak or drop references: PySide6 6.12.0 drops one reference to
None / True per signal emit, and a long session then aborts ('none_dealloc'). pyproject excludes it."""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_signal_emit_keeps_reference_counts(qapp):
    emitter = _Emitter()
    received = []
    emitter.fired.connect(received.append)
    before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(2000):
        emitter.fired.emit(i)
        QCoreApplication.processEvents()
    after = sys.getrefcount(True), sys.getrefcount(None)
    assert len(received) == 2000
    assert abs(after[0] - before[0]) < 50 and abs(after[1] - before[1]) < 50, (before, after)
