"""Video export: MP4 / GIF / PNG frames decode back as asked, match the keyframes, and a cancel or a
failure leaves nothing behind."""

from __future__ import annotations

import threading

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from conftest import fixtures_dir
from PIL import Image

from explorer.engine import load_model
from explorer.engine.interpolate import walk_from_seeds
from explorer.engine.render import RenderRequest, render
from explorer.engine.video import (
    VideoSettings,
    _PngWriter,
    export_video,
    iter_frame_batches,
    render_frames,
    tile,
    video_format,
)


@pytest.fixture(scope="module")
def sg2():
    return load_model(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl")


@pytest.fixture(scope="module")
def walk():
    return walk_from_seeds([1, 2], RenderRequest(truncation_psi=0.7))


def read_mp4(path) -> list[np.ndarray]:
    frames = imageio_ffmpeg.read_frames(str(path))
    width, height = next(frames)["size"]
    return [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in frames]


def keyframe_images(model, walk) -> list[np.ndarray]:
    return [render(model, k.request).image.astype(float) for k in walk.keyframes]


def test_mp4_decodes_with_the_frames_and_size_asked(sg2, walk, tmp_path):
    result = export_video(sg2, walk, tmp_path / "walk.mp4", VideoSettings(frames=6, fps=12, quality=9))
    assert result.path == tmp_path / "walk.mp4" and result.frames == 6 and not result.cancelled
    frames = read_mp4(result.path)
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
    first, last = keyframe_images(sg2, walk)
    # H.264 with 4:2:0 chroma is lossy on 32 px noise-like images: the frames must be near their
    # keyframe and far from the other one (the keyframes differ by about 40 levels on average).
    assert np.abs(frames[0] - first).mean() < 12 < np.abs(frames[0] - last).mean()
    assert np.abs(frames[-1] - last).mean() < 12 < np.abs(frames[-1] - first).mean()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.mp4"]


def test_png_frames_are_exact_and_resized_mp4_is_even(sg2, walk, tmp_path):
    result = export_video(sg2, walk, tmp_path / "frames", VideoSettings(frames=4))
    files = sorted(result.path.iterdir())
    assert [f.name for f in files] == [f"frame{i:05d}.png" for i in range(4)]
    first, last = keyframe_images(sg2, walk)
    assert np.abs(np.asarray(Image.open(files[0])) - first).max() <= 1
    assert np.abs(np.asarray(Image.open(files[-1])) - last).max() <= 1
    frames = read_mp4(export_video(sg2, walk, tmp_path / "big.mp4", VideoSettings(frames=2, size=(96, 64))).path)
    assert [f.shape for f in frames] == [(64, 96, 3)] * 2
    # ffmpeg scales MP4 frames: the picture must be the keyframe stretched, not cropped or shifted.
    stretched = [np.asarray(Image.fromarray(k.astype(np.uint8)).resize((96, 64), Image.Resampling.LANCZOS), float)
                 for k in (first, last)]
    assert np.abs(frames[0] - stretched[0]).mean() < 12 < np.abs(frames[0] - stretched[1]).mean()
    with pytest.raises(ValueError, match="even width and height"):
        export_video(sg2, walk, tmp_path / "odd.mp4", VideoSettings(frames=2, size=(33, 32)))


def test_grid_video_tiles_the_walks(sg2, tmp_path):
    walks = [walk_from_seeds(seeds) for seeds in ([1, 2], [3, 4], [5, 6])]
    cells = next(iter_frame_batches(sg2, walks, num_frames=3, batch_size=9))  # [B, cells, H, W, 3]
    assert cells.shape == (3, 3, 32, 32, 3)
    result = export_video(sg2, walks, tmp_path / "grid", VideoSettings(frames=3, grid=(1, 3)))
    last = np.asarray(Image.open(result.path / "frame00002.png"))
    assert last.shape == (32, 96, 3)
    np.testing.assert_array_equal(last, tile(cells[2], 1, 3))
    np.testing.assert_array_equal(last[:, 64:], cells[2, 2])
    with pytest.raises(ValueError, match="needs 4 walks"):
        export_video(sg2, walks, tmp_path / "bad.mp4", VideoSettings(frames=3, grid=(2, 2)))


def test_gif_has_every_frame(sg2, walk, tmp_path):
    result = export_video(sg2, walk, tmp_path / "walk.gif", VideoSettings(frames=4, fps=10, size=(64, 64)))
    with Image.open(result.path) as gif:
        assert (gif.n_frames, gif.size, gif.info["loop"]) == (4, (64, 64), 0)


def test_cancel_leaves_no_file_and_keeps_the_old_one(sg2, walk, tmp_path):
    target = tmp_path / "walk.mp4"
    target.write_bytes(b"an earlier export")
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        cancel.set()

    result = export_video(sg2, walk, target, VideoSettings(frames=8, batch_size=2), progress, cancel)
    assert result.cancelled and result.path is None
    assert len(seen) == 1 and (seen[0].done, seen[0].total) == (2, 8) and seen[0].eta > 0
    assert target.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.mp4"]


@pytest.mark.parametrize("name", ["walk.mp4", "walk.gif", "frames"])
def test_failure_leaves_no_file(sg2, walk, tmp_path, name):
    def progress(p):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        export_video(sg2, walk, tmp_path / name, VideoSettings(frames=4, batch_size=2), progress)
    assert list(tmp_path.iterdir()) == []


def test_frames_are_encoded_on_another_thread(sg2, walk, tmp_path, monkeypatch):
    threads = set()
    write = _PngWriter.write

    def spy(self, frame):
        threads.add(threading.current_thread().name)
        write(self, frame)

    monkeypatch.setattr(_PngWriter, "write", spy)
    export_video(sg2, walk, tmp_path / "frames", VideoSettings(frames=2))
    assert threads == {"explorer-encoder"}


def test_png_folder_with_other_files_is_refused(sg2, walk, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="other files"):
        export_video(sg2, walk, tmp_path, VideoSettings(frames=2))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_video_format():
    assert [video_format(p) for p in ("a.mp4", "b.GIF", "frames")] == ["mp4", "gif", "png"]
    assert video_format("x.mov", "mp4") == "mp4"
    with pytest.raises(ValueError, match="cannot tell the video format"):
        video_format("x.avi")


def test_frames_with_other_noise_files_are_not_batched_together(sg2, tmp_path):
    """A keyframe's own noise maps (a projection's) apply to its frames only."""
    from explorer.engine.projector import save_latents
    from explorer.engine.render import request_ws

    maps = [np.random.RandomState(i).randn(1, 1, r, r).astype(np.float32) for i, (_, r) in
            enumerate(sg2.info.noise_layers)]
    noise_file = str(save_latents(tmp_path / "proj.npz", np.zeros([1, sg2.info.num_ws, sg2.info.w_dim]), maps))
    plain = RenderRequest(seeds=[(3, 1.0)])
    own = RenderRequest(seeds=[(3, 1.0)], noise_file=noise_file)
    ws = torch.cat([request_ws(sg2, plain), request_ws(sg2, own)])
    frames = render_frames(sg2, ws, [plain, own], batch_size=2)
    assert np.array_equal(frames[0], render(sg2, plain).image)
    assert np.array_equal(frames[1], render(sg2, own).image)
    assert not np.array_equal(frames[0], frames[1])
