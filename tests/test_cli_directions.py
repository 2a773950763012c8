"""`explorer directions` end to end: a real subprocess writes the table, the sheet and the directions."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from conftest import fixtures_dir
from PIL import Image

from explorer.engine.directions import CACHE_ENV


def run_cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_directions_table_sheet_and_save(tmp_path):
    path = str(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl")
    out = run_cli(tmp_path, "directions", path, "--method", "sefa", "--layers", "coarse", "--samples", "300",
                  "--top", "3", "--seeds", "0,7", "--steps", "5", "--sheet", str(tmp_path / "sheet.png"),
                  "--save", str(tmp_path / "dirs.npy"), "--trunc", "0.7")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("sefa on ") and "300 samples (seed 0), layers 0-2" in lines[0]
    assert lines[1].split() == ["#", "name", "eigenvalue", "share", "cumul.", "sigma"]
    rows = [line.split() for line in lines[2:5]]
    assert [r[1] for r in rows] == ["SeFa0", "SeFa1", "SeFa2"]
    values = [float(r[2]) for r in rows]
    assert values == sorted(values, reverse=True)

    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape == (3 * 2 * 32, 5 * 32, 3)
    dirs = np.load(tmp_path / "dirs.npy")
    assert dirs.shape == (3, 512) and dirs.dtype == np.float32
    np.testing.assert_allclose(dirs @ dirs.T, np.eye(3), atol=1e-5)
    assert list((tmp_path / "cache").glob("w-stats-*.npz"))


def test_directions_errors_are_one_line(tmp_path):
    progan = str(fixtures_dir() / "tf/progan_32/model.pkl")
    out = run_cli(tmp_path, "directions", progan, "--method", "sefa")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "explorer: error: a progan model has no style affines for closed-form factorisation: use PCA"]
    sg2 = str(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl")
    out = run_cli(tmp_path, "directions", sg2, "--layers", "9-12")
    assert out.returncode == 1 and out.stderr.strip() == "explorer: error: layers 9-12 are outside 0..7"
