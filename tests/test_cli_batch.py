"""`explorer grid` and `explorer video` end to end: real subprocesses on a fixture model, and the
GUI's session file reproducing a picture and a walk in batch."""

from __future__ import annotations

import json
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest
from conftest import fixtures_dir
from PIL import Image

from explorer.cli import main
from explorer.engine import load_model
from explorer.engine.grid import cell_request
from explorer.engine.interpolate import walk_from_seeds
from explorer.engine.render import RenderRequest, render


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def model_path():
    return fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl"


def test_grid_png(model_path, tmp_path):
    out = tmp_path / "mix.png"
    done = run_cli("grid", str(model_path), "--rows", "1-2", "--cols", "3-5", "--layers", "middle",
                   "--trunc", "0.7", "--out", str(out))
    assert done.returncode == 0, done.stderr
    image = np.asarray(Image.open(out))
    assert image.shape == (3 * 32, 4 * 32, 3)
    model = load_model(model_path)
    cell = render(model, cell_request(RenderRequest(truncation_psi=0.7), 2, 4, [3, 4])).image
    assert np.abs(image[64:96, 64:96].astype(int) - cell).max() <= 1


def test_video_mp4_grid(model_path, tmp_path):
    out = tmp_path / "walks.mp4"
    done = run_cli("video", str(model_path), "--seeds", "1-4", "--grid", "1x2", "--frames", "5",
                   "--size", "128x64", "--easing", "ease-in-out", "--out", str(out))
    assert done.returncode == 0, done.stderr
    frames = imageio_ffmpeg.read_frames(str(out))
    assert next(frames)["size"] == (128, 64)
    assert len(list(frames)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walks.mp4"]


def test_session_file_reproduces_the_window(model_path, tmp_path):
    request = RenderRequest(seeds=[(3, 0.4), (4, 0.6)], truncation_psi=0.6, mix_seed=8, mix_layers=[5, 6, 7])
    walk = walk_from_seeds([3, 9], request, loop=True)
    session = {"format": "latent-explorer-session", "version": 1, "model": str(model_path), "latent": [3.4, 0.0],
               "request": json.loads(request.to_json()), "walk": walk.to_dict()}
    path = tmp_path / "state.json"
    path.write_text(json.dumps(session))

    done = run_cli("render", str(model_path), "--request", str(path), "--out", str(tmp_path / "png"))
    assert done.returncode == 0, done.stderr
    model = load_model(model_path)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "png/state.png")), render(model, request).image)

    done = run_cli("video", str(model_path), "--request", str(path), "--fps", "2", "--out", str(tmp_path / "frames"))
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / "frames").iterdir())
    assert len(files) == 4  # a loop of two keyframes one second apart, at 2 fps
    first = render(model, walk.keyframes[0].request).image
    assert np.abs(np.asarray(Image.open(files[0])).astype(int) - first).max() <= 1


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["video", "{model}", "--seeds", "1-3", "--grid", "2x2", "--out", "{tmp}/v.mp4"], "split evenly"),
        (["video", "{model}", "--out", "{tmp}/v.mp4"], "give keyframe --seeds"),
        (["video", "{model}", "--seeds", "1,2", "--size", "33", "--out", "{tmp}/v.mp4"], "even width"),
        (["grid", "{model}", "--rows", "1", "--cols", "2", "--layers", "9", "--out", "{tmp}/g.png"], "outside"),
    ],
)
def test_errors_are_one_line(model_path, tmp_path, capsys, args, text):
    # In process (the subprocess path is covered above): the same `main`, without the start-up cost.
    assert main([a.format(model=model_path, tmp=tmp_path) for a in args]) == 1
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
