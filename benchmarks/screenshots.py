"""Save a screenshot of the main window for each model family in the reference fixtures, and of
each dock (directions, timeline, mixing grid, equivariance, layers with spectrum) in use (offscreen).

    .venv/bin/python benchmarks/screenshots.py [OUT_DIR [CASE ...]]     (default: out/screenshots, all cases)

Each window is shown on a 1600x1000 virtual screen, waits for the frame of its request (and the
jobs it started) and is grabbed to OUT_DIR/<name>.png; a person looks at them. Settings, the
default model and the directions cache go to a temporary folder, never the user's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"

# name -> (checkpoint relative to the fixtures, or None for the default model; control settings to show,
# "bundled": i opening the i-th entry of File → Bundled models)
CASES: dict[str, tuple[str | None, dict]] = {
    "default-model": (None, {}),
    "default-equivariance": (None, {"equivariance": 20.0}),
    "bundled-stylegan2": (None, {"bundled": 1}),
    "bundled-stylegan1": (None, {"bundled": 2}),
    "bundled-progan": (None, {"bundled": 3}),
    "progan": ("tf/progan_32/model.pkl", {}),
    "stylegan1": ("tf/stylegan1_32/model.pkl", {"psi": 70}),
    "stylegan2": ("nvidia/stylegan2-ada-32/model.pkl", {"mix": "coarse"}),
    "stylegan2-conditional": ("nvidia/stylegan2-32-cond/model.pkl", {"class": 2}),
    "stylegan3-t": ("nvidia/stylegan3-t-32/model.pkl", {"translate": 0.1}),
    "stylegan3-r": ("nvidia/stylegan3-r-32/model.pkl", {"rotate": 30.0}),
    "dock-layers-fft": ("nvidia/stylegan3-t-32/model.pkl", {"layer": 6, "fft": True}),
    "dock-directions": ("nvidia/stylegan2-ada-32/model.pkl", {"directions": 1}),
    "dock-timeline": ("nvidia/stylegan2-ada-32/model.pkl", {"timeline": [0, 5, 9]}),
    "dock-grid": ("nvidia/stylegan2-ada-32/model.pkl", {"grid": "coarse"}),
    "dock-equivariance": ("nvidia/stylegan3-t-32/model.pkl", {"equivariance": 20.0}),
}


def main(out_dir: Path, names: list[str] | None = None) -> int:
    unknown = set(names or ()) - CASES.keys()
    if unknown:
        print(f"unknown cases: {', '.join(sorted(unknown))} (known: {', '.join(CASES)})")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="explorer-shots-"))
    screen = tmp / "screen.json"
    screen.write_text(json.dumps({"screens": [{"name": "shots", "x": 0, "y": 0, "width": 1600, "height": 1000,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen}"
    os.environ["EXPLORER_DEFAULT_MODEL"] = str(tmp / "default.pt")
    os.environ["EXPLORER_CACHE_DIR"] = str(tmp / "cache")

    from explorer.app import create_window
    from explorer.engine.cpu_heap import keep_freed_memory
    from explorer.widgets.settings import Settings

    keep_freed_memory()  # as the `explorer` command does: the Performance dock shows the program's speed
    app = QApplication.instance() or QApplication([])
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name, (checkpoint, state) in CASES.items():
        if names and name not in names:
            continue
        path = None if checkpoint is None else FIXTURES / checkpoint
        if path is not None and not path.is_file():
            print(f"{name}: skipped, {path} not found")
            continue
        window = create_window(path, settings=Settings.at(tmp / f"{name}.ini"), device="cpu")
        window.resize(1440, 990)
        window.show()
        if not _wait(app, lambda w=window: w.info is not None and w.shown_stamp == w.submitted_stamp > 0):
            print(f"{name}: no frame ({window.banner.label.text() or 'timed out'})")
            failures += 1
            window.close()
            continue
        _apply(window, state)
        _wait(app, lambda w=window: w.shown_stamp == w.submitted_stamp and not w.engine.busy
              and not w.jobs.running())
        for _ in range(30):  # let the performance plot's deferred refresh and the repaint happen
            app.processEvents()
            time.sleep(0.01)
        target = out_dir / f"{name}.png"
        window.grab().save(str(target))
        info = window.info
        print(f"{name}: {info.family} {info.resolution}px from {info.source_format} -> {target}")
        window.close()
    return 1 if failures else 0


def _apply(window, state: dict) -> None:
    if "bundled" in state:  # as File → Bundled models does, with the entry's first picture
        entry = window.bundled[state["bundled"]]
        window.open_bundled(entry)
        _wait(QApplication.instance(), lambda: window.info.path == str(entry.path()))
    if "psi" in state:
        window.truncation.psi.setValue(state["psi"])
    if "mix" in state:
        window.mixing.presets[state["mix"]].click()
    if "class" in state:
        window.latent.class_idx.setCurrentIndex(state["class"])
    if "translate" in state:
        window.transform.tx.setValue(state["translate"])
    if "rotate" in state:
        window.transform.rotate.setValue(state["rotate"])
    if "layer" in state:
        window.layers.select(window.layers.layer.itemData(state["layer"]))
        window.layers.fft.setChecked(state.get("fft", False))
    if "directions" in state:
        _raise(window, window.directions_dock)
        window.directions.samples.setValue(1000)
        window.directions.compute.click()
        app = QApplication.instance()
        _wait(app, lambda: len(window.directions.rows) > 0)
        window.directions.rows[state["directions"]].slider.setValue(15)
    if "timeline" in state:
        window.timeline_dock.raise_()
        for seed in state["timeline"]:
            window.latent.seed.setValue(seed)
            window.timeline.add.click()
        window.timeline.scrub_to(300)
    if "grid" in state:
        _raise(window, window.grid_dock)
        window.grid.layers.setCurrentText(state["grid"])
        window.grid.compute.click()
    if "equivariance" in state:
        _raise(window, window.equivariance_dock)
        window.transform.rotate.setValue(state["equivariance"])
        eq = window.equivariance
        eq.samples.setValue(8)
        eq.frames.setValue(8)
        eq.compute.click()
        eq.sticking_compute.click()
        eq.diff_compute.click()


def _raise(window, dock) -> None:
    dock.show()
    dock.raise_()


def _wait(app, predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if predicate():
            return True
        time.sleep(0.01)
    return False


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "out" / "screenshots", sys.argv[2:]))
