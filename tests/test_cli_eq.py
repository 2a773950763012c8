"""`explorer eq` end to end: real subprocesses, the engine's numbers, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import fixtures_dir

from explorer.engine import load_model
from explorer.engine.equivariance import EqDraw, replay_metric


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=300)


def test_eq_json_gives_the_engine_values_on_the_reference_draws():
    """Seed 31 gives eqt_int the reference's seed and eqr 31 + 2 = 33, its seed too: the first batch of
    each metric is then the reference's first batch, which the engine replays in this process."""
    path = fixtures_dir() / "nvidia/stylegan3-t-32/model.pkl"
    out = run_cli("eq", str(path), "--samples", "4", "--seed", "31", "--metrics", "eqt_int,eqr", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["family"], report["batch"], list(report["metrics"])) == ("stylegan3-t", 4, ["eqt_int", "eqr"])

    model = load_model(path)
    with np.load(fixtures_dir() / "nvidia/equivariance/stylegan3-t-32.npz") as npz:
        for metric, label, seed in (("eqt_int", "EQ-T", 31), ("eqr", "EQ-R", 33)):
            draw = EqDraw(z=npz[f"{metric}/z"][0], rand=npz[f"{metric}/rand"][0],
                          input_transform=np.linalg.inv(npz[f"{metric}/transform"][0].astype(np.float64)))
            got = report["metrics"][metric]
            assert (got["label"], got["seed"], got["samples"]) == (label, seed, 4)
            assert got["psnr_db"] == pytest.approx(replay_metric(model, metric, [draw]).psnr_db, abs=1e-4)


def test_eq_text():
    path = fixtures_dir() / "nvidia/stylegan3-t-32/model.pkl"
    out = run_cli("eq", str(path), "--samples", "2", "--batch", "2", "--metrics", "eqt_frac")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "stylegan3-t, 32x32, batches of 2" in lines[0]
    assert lines[1].startswith("EQ-T_frac") and " dB  (2 images, seed 1)" in lines[1]


@pytest.mark.parametrize(
    ("model", "args", "code", "text"),
    [
        ("stylegan2-ada-32", [], 1, "need a StyleGAN3 model"),
        ("stylegan3-t-32", ["--samples", "0"], 2, "not a count"),
        ("stylegan3-t-32", ["--metrics", "eqt,eqr"], 2, "not a metric list"),
    ],
)
def test_eq_errors_are_one_line(model, args, code, text):
    out = run_cli("eq", str(fixtures_dir() / f"nvidia/{model}/model.pkl"), *args)
    assert out.returncode == code
    assert text in out.stderr
    assert "Traceback" not in out.stderr
