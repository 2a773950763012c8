"""End to end in a real X server: the installed `explorer` program on Xvfb, driven by real input
events (xdotool) and checked from screenshots (ImageMagick's `import`).

Skipped where Xvfb, xdotool or import are missing; `.ci/run` installs them, so it runs in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.engine.default_model import BUNDLED_MODELS

pytestmark = pytest.mark.x11

TOOLS = ("Xvfb", "xdotool", "import")
TITLE = "Latent Explorer"
CANVAS_BACKGROUND = (0x20, 0x20, 0x20)


def _explorer_executable() -> str | None:
    beside = Path(sys.executable).with_name("explorer")
    return str(beside) if beside.is_file() else shutil.which("explorer")


@pytest.fixture
def display(tmp_path):
    """A private Xvfb display; yields its name (':N')."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install xvfb xdotool imagemagick)")
    log = open(tmp_path / "xvfb.log", "w")  # noqa: SIM115 - closed below
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=log, stderr=subprocess.STDOUT)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        xvfb.kill()
        log.close()
        pytest.skip(f"Xvfb could not start: {(tmp_path / 'xvfb.log').read_text()[-500:]}")
    name = f":{number}"
    probe = subprocess.run(["xdotool", "getdisplaygeometry"], env={**os.environ, "DISPLAY": name},
                           capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        xvfb.kill()
        log.close()
        raise AssertionError(f"Xvfb said {name} but it does not answer ({probe.stderr.strip()}); "
                             f"Xvfb log: {(tmp_path / 'xvfb.log').read_text()[-500:]}")
    yield name
    xvfb.terminate()
    xvfb.wait(10)
    log.close()


def _run(env: dict, *args: str, timeout: float = 20) -> str:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=True).stdout


def _wait_for(predicate, timeout: float, what: str, on_timeout=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value is not None:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}. {on_timeout()}")


def _screenshot(env: dict, window: str, path: Path) -> np.ndarray:
    from PIL import Image

    _run(env, "import", "-window", window, str(path))
    return np.asarray(Image.open(path).convert("RGB"))


def _canvas_crop(shot: np.ndarray) -> np.ndarray:
    """The middle of the picture area: the canvas is left of the controls and above the performance pane."""
    h, w = shot.shape[:2]
    return shot[int(h * 0.2):int(h * 0.55), int(w * 0.15):int(w * 0.5)]


def _shows_picture(crop: np.ndarray) -> bool:
    """A rendered picture: not the empty canvas's flat background."""
    background = np.all(np.abs(crop.astype(int) - CANVAS_BACKGROUND) <= 2, axis=-1).mean()
    return background < 0.5 and crop.std() > 5


def test_explorer_runs_in_a_real_x_server(display, tmp_path):
    executable = _explorer_executable()
    if executable is None:
        pytest.skip("the explorer executable is not installed (./dev setup)")
    env = {
        **os.environ,
        "DISPLAY": display,
        "QT_QPA_PLATFORM": "xcb",
        "EXPLORER_SETTINGS": str(tmp_path / "settings.ini"),
        "EXPLORER_DEFAULT_MODEL": str(tmp_path / "default.pt"),
        "EXPLORER_DEVICE": "cpu",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    log_path = tmp_path / "explorer.log"
    with open(log_path, "w") as log:
        app = subprocess.Popen([executable], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def log_tail() -> str:
            return f"program output:\n{log_path.read_text()[-2000:]}"

        title = f"{TITLE} — {re.escape(BUNDLED_MODELS[0].path().name)}"

        def loaded_window() -> str | None:
            if app.poll() is not None:
                raise AssertionError(f"explorer exited with {app.returncode}. {log_tail()}")
            found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", title],
                                   env=env, capture_output=True, text=True)
            return found.stdout.split()[0] if found.returncode == 0 and found.stdout.strip() else None

        # The window opens on the default model (the first bundled one) and shows its first frame.
        window = _wait_for(loaded_window, 90, "the window with the default model", log_tail)
        def shot_when(condition, name: str, what: str) -> np.ndarray:
            """Screenshots until one satisfies `condition`; the last is kept as `name`."""
            def take():
                shot = _screenshot(env, window, tmp_path / name)
                return shot if condition(_canvas_crop(shot)) else None
            return _wait_for(take, 30, what, log_tail)

        first = shot_when(_shows_picture, "1-start.png", "the first picture")

        # A real drag on the canvas blends seeds: the picture changes.
        geometry = dict(line.split("=") for line in _run(env, "xdotool", "getwindowgeometry", "--shell",
                                                         window).split())
        width, height = int(geometry["WIDTH"]), int(geometry["HEIGHT"])
        x, y = int(width * 0.3), int(height * 0.4)
        _run(env, "xdotool", "mousemove", "--window", window, str(x), str(y), "mousedown", "1")
        for step in range(1, 9):
            _run(env, "xdotool", "mousemove", "--window", window, str(x + 12 * step), str(y + 4 * step))
            time.sleep(0.05)
        _run(env, "xdotool", "mouseup", "1")
        dragged = shot_when(lambda crop: not np.array_equal(crop, _canvas_crop(first)), "2-dragged.png",
                            "the picture to change after the drag")
        assert _shows_picture(_canvas_crop(dragged))

        # A key shortcut (Alt+Right: next seed) changes it again.
        time.sleep(1.0)  # let the last drag frame land before comparing
        settled = _screenshot(env, window, tmp_path / "3-settled.png")
        _run(env, "xdotool", "windowfocus", "--sync", window)
        _run(env, "xdotool", "key", "--clearmodifiers", "alt+Right")
        keyed = shot_when(lambda crop: not np.array_equal(crop, _canvas_crop(settled)), "4-next-seed.png",
                          "the picture to change after Alt+Right")
        assert _shows_picture(_canvas_crop(keyed))

        # Ctrl+Q quits cleanly and the window state is saved.
        _run(env, "xdotool", "key", "--clearmodifiers", "ctrl+q")
        assert app.wait(30) == 0, log_tail()
        assert "session" in (tmp_path / "settings.ini").read_text()
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        shots = os.environ.get("EXPLORER_X11_SHOTS")
        if shots:  # keep the screenshots for a person to look at
            for png in tmp_path.glob("*.png"):
                shutil.copy(png, Path(shots) / png.name)
