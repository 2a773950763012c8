"""The headless CLI end to end: real subprocesses, real files, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import fixtures_dir
from PIL import Image

from explorer.cli import parse_seeds
from explorer.engine import load_model
from explorer.engine.render import RenderRequest, render


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=120)


def test_parse_seeds():
    assert parse_seeds("0-3,7,10-11") == [0, 1, 2, 3, 7, 10, 11]
    for bad in ("5-1", "a", "-3", "1,,2"):
        with pytest.raises(Exception, match="seed"):
            parse_seeds(bad)


def test_info_text_and_json():
    path = str(fixtures_dir() / "nvidia/stylegan3-r-32/model.pkl")
    out = run_cli("info", path)
    assert out.returncode == 0, out.stderr
    assert "stylegan3-r" in out.stdout and "input transform: yes" in out.stdout
    assert "discriminator:   D (projection uses its features)" in out.stdout
    info = json.loads(run_cli("info", path, "--json").stdout)
    assert (info["family"], info["resolution"], info["num_ws"], info["has_noise"]) == ("stylegan3-r", 32, 16, False)
    assert info["discriminator"] == "D"


def test_render_writes_pngs(tmp_path):
    path = str(fixtures_dir() / "nvidia/stylegan2-32-cond/model.pkl")
    out = run_cli("render", path, "--seeds", "0-2", "--trunc", "0.7", "--class", "2", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    files = sorted(tmp_path.glob("*.png"))
    assert [f.name for f in files] == ["seed0000.png", "seed0001.png", "seed0002.png"]
    images = [np.asarray(Image.open(f)) for f in files]
    assert all(im.shape == (32, 32, 3) for im in images)
    assert not np.array_equal(images[0], images[1])


def test_render_sheet_tiles_the_pictures_in_seed_order(tmp_path):
    path = str(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl")
    out = run_cli("render", path, "--seeds", "3-7", "--sheet", str(tmp_path / "s/sheet.png"), "--sheet-cols", "2",
                  "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    sheet = np.asarray(Image.open(tmp_path / "s/sheet.png"))
    assert sheet.shape == (3 * 32, 2 * 32, 3)  # five pictures: rows of 2, 2 and 1
    for i, seed in enumerate(range(3, 8)):
        row, col = divmod(i, 2)
        cell = sheet[row * 32:(row + 1) * 32, col * 32:(col + 1) * 32]
        np.testing.assert_array_equal(cell, np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png")))
    assert not sheet[64:, 32:].any()  # the empty cell stays black


def test_render_from_request_file(tmp_path):
    path = str(fixtures_dir() / "nvidia/stylegan3-t-32/model.pkl")
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"truncation_psi": 0.5, "rotate": 20.0}))
    a = run_cli("render", path, "--request", str(req), "--seeds", "4", "--out", str(tmp_path / "a"))
    b = run_cli("render", path, "--seeds", "4", "--trunc", "0.5", "--rotate", "20", "--out", str(tmp_path / "b"))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a/seed0004.png")),
                                  np.asarray(Image.open(tmp_path / "b/seed0004.png")))


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["render", "{model}", "--seeds", "9-1", "--out", "{tmp}"], 2, "not a seed list"),
        (["render", "{model}", "--out", "{tmp}", "--noise", "loud"], 2, "invalid choice"),
        (["render", "{model}", "--out", "{tmp}"], 1, "choose a class"),
        (["render", "{tmp}/missing.pkl", "--out", "{tmp}"], 1, "cannot read"),
        (["render", "{model}", "--out", "{tmp}", "--sheet", "{tmp}/s.png", "--sheet-cols", "0"], 2, "not a count"),
        (["grid", "{model}", "--rows", "0", "--cols", "1", "--batch", "0", "--out", "{tmp}/g.png"], 2, "not a count"),
        (["info", "{req}"], 1, "not a checkpoint"),
        (["convert", "{req}", "{tmp}/out.pt"], 1, "not a checkpoint"),
        (["convert", "{model}", "{model}"], 1, "is the checkpoint being read"),
    ],
)
def test_errors_are_one_line(tmp_path, args, code, text):
    (tmp_path / "req.json").write_text("{}")
    subs = {"model": str(fixtures_dir() / "nvidia/stylegan2-32-cond/model.pkl"), "tmp": str(tmp_path),
            "req": str(tmp_path / "req.json")}
    out = run_cli(*[a.format(**subs) for a in args])
    assert out.returncode == code
    assert text in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("fixture", "extra"), [
    ("nvidia/stylegan3-t-32/model.pkl", []),
    ("tf/progan_32/model.pkl", []),
    ("community/rosinality_sg1_grunning_128/model.model", ["--resolution", "64"]),
])
def test_convert_writes_a_weights_only_file_that_renders_the_same(tmp_path, fixture, extra):
    source = fixtures_dir() / fixture
    out = run_cli("convert", str(source), str(tmp_path / "safe.pt"), *extra)
    assert out.returncode == 0, out.stderr
    assert "opens with torch.load(weights_only=True)" in out.stdout
    payload = torch.load(tmp_path / "safe.pt", weights_only=True)  # nothing but tensors and plain data
    assert payload["format"] == "latent-explorer" and payload["state_dict"]
    assert [p.name for p in tmp_path.iterdir()] == ["safe.pt"]  # no temporary file left
    original = load_model(source, resolution=int(extra[1]) if extra else None)
    converted = load_model(tmp_path / "safe.pt")
    assert converted.info.resolution == original.info.resolution and converted.info.family == original.info.family
    req = RenderRequest(seeds=[(5, 1.0)], truncation_psi=0.7, rotate=10.0 if original.info.has_input_transform else 0)
    np.testing.assert_array_equal(render(converted, req).image, render(original, req).image)
