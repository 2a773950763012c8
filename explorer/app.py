"""The desktop program: the Qt application, the engine thread and the main window, wired together.

This is the one place that knows both sides: the engine (no Qt) and the widgets (no torch).
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

ENV_DEVICE = "EXPLORER_DEVICE"  # 'auto' (default), 'cpu', 'cuda', 'cuda:1', ...


def create_window(model_path: str | Path | None = None, settings=None, device: str | None = None):
    """A main window with its own engine thread, loading `model_path` or the default model.

    Args:
        model_path: checkpoint to open; None opens the first bundled model.
        settings: a `explorer.widgets.settings.Settings`; None uses `Settings.default()`.
        device: where the engine renders; None reads $EXPLORER_DEVICE, else 'auto'.
    """
    from .engine.default_model import BUNDLED_MODELS
    from .engine.worker import RenderWorker
    from .widgets.bridge import EngineBridge
    from .widgets.main_window import MainWindow
    from .widgets.settings import Settings

    device = device or os.environ.get(ENV_DEVICE, "auto")
    bridge = EngineBridge(lambda on_event: RenderWorker(on_event, device=device))
    window = MainWindow(bridge, settings or Settings.default(), bundled=BUNDLED_MODELS)
    bridge.setParent(window)
    if model_path is None:
        window.open_bundled(BUNDLED_MODELS[0])
    else:
        window.open_model(model_path)
    return window


def main(model_path: str | Path | None = None) -> int:
    """Open the window (on `model_path` or the default model) and run until it closes."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Latent Explorer")
    app.setOrganizationName("latent-explorer")
    window = create_window(model_path)
    window.show()
    # Exempt everything created so far (torch, Qt, numpy: ~200k objects) from garbage collection:
    # a full collection of them takes 100+ ms on the GUI thread, a visible freeze.
    gc.freeze()
    return app.exec()
