"""Video export of walks: MP4 (H.264), GIF or a folder of PNGs, one walk or a grid of them.

Frames are generated in batches on the calling thread (the engine thread, which owns the device)
and encoded on a second thread fed through a small bounded queue, so the device never waits for
the encoder and memory stays flat. The output is written under a temporary name next to the target
and renamed at the end: a cancel or a failure leaves no half file, and an older file of the same
name stays until the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .interpolate import Interpolator, Walk
from .model import Model
from .render import RenderRequest, frames_to_uint8, synthesis_key, synthesize_request

VIDEO_FORMATS = ("mp4", "gif", "png")
# x264's presets, fastest first. On a CPU the encoder shares the cores with the generator, so the
# default is a fast one: 'medium' spends about twice the time for a somewhat smaller file.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# Every hand-over to the encoder thread costs a GIL switch (up to the 5 ms switch interval on a busy
# machine), so small batches go over together, in chunks of at least this many frames or bytes.
CHUNK_FRAMES = 16
CHUNK_BYTES = 4 * 2**20
# Chunks waiting for the encoder: enough to cover ffmpeg's start (tens of ms before it reads) and
# jitter, in about this many bytes (from two to 16 chunks).
QUEUE_BYTES = 64 * 2**20


class ExportError(OSError):
    """Writing the video failed (the encoder stopped, the disk is full, ...)."""


@dataclass(frozen=True)
class Progress:
    """How far a long job is: reported after every batch."""

    done: int               # frames (or images) finished
    total: int
    elapsed: float          # seconds since the job started
    eta: float | None       # seconds left at the rate so far (None before the first batch)


class ProgressMeter:
    """Turns counts into `Progress` reports for a callback (which may be None)."""

    def __init__(self, total: int, callback: Callable[[Progress], None] | None):
        self.total = total
        self.callback = callback
        self.start = time.perf_counter()

    def update(self, done: int) -> None:
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / done * (self.total - done) if done else None
        self.callback(Progress(done, self.total, elapsed, eta))


@dataclass
class VideoSettings:
    """How a video is made; plain data, so the GUI's export dialog can edit and save it."""

    fps: float = 30.0
    duration: float | None = None        # seconds; None: the walks' own length (their keyframe times)
    frames: int | None = None            # frame count; overrides duration
    size: tuple[int, int] | None = None  # output (width, height); None: the model's, times the grid
    quality: int = 8                     # 1..10, MP4 only: imageio-ffmpeg's scale (crf = 51 * (1 - q / 10))
    preset: str = "veryfast"             # MP4 only: x264's speed / file size trade (see X264_PRESETS)
    grid: tuple[int, int] = (1, 1)       # rows, columns of walks in every frame
    batch_size: int = 8                  # images per synthesis call
    format: str | None = None            # 'mp4', 'gif' or 'png' (a folder of frames); None: from the path

    def frame_count(self, walks: Sequence[Walk]) -> int:
        """Frames of the video: `frames`, else `duration` x fps, else the longest walk x fps."""
        if self.frames is not None:
            count = self.frames
        else:
            seconds = self.duration if self.duration is not None else max(w.length for w in walks)
            if seconds <= 0:
                raise ValueError("the walk has no length: give a duration or a frame count")
            count = round(seconds * self.fps)
        if count < 1:
            raise ValueError(f"a video needs at least one frame, got {count}")
        return count


@dataclass(frozen=True)
class ExportResult:
    """What an export did; `path` is None when it was cancelled."""

    path: Path | None
    frames: int                # frames written
    size: tuple[int, int]      # (width, height)
    seconds: float
    waited: float = 0.0        # seconds generation stood still for the encoder (full queue, final flush)
    cancelled: bool = False


def video_format(path: str | Path, fmt: str | None = None) -> str:
    """The format to write: `fmt` if given, else from the suffix (none = a folder of PNGs).

    Args:
        path: the output path.
        fmt: 'mp4', 'gif', 'png' or None.

    Returns:
        One of VIDEO_FORMATS.
    """
    if fmt is not None:
        if fmt not in VIDEO_FORMATS:
            raise ValueError(f"unknown video format {fmt!r}: use one of {', '.join(VIDEO_FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    formats = {".mp4": "mp4", ".gif": "gif", "": "png"}
    if suffix not in formats:
        raise ValueError(f"cannot tell the video format of {path}: use .mp4, .gif, or a folder name for PNG frames")
    return formats[suffix]


def render_frames(model: Model, ws: torch.Tensor, requests: Sequence[RenderRequest], batch_size: int) -> np.ndarray:
    """Synthesise frames whose noise and transform may differ: equal settings share a call.

    Args:
        model: the generator.
        ws: [N, num_ws, w_dim] latents.
        requests: N requests with each frame's noise and transform (from `Interpolator.sample`).
        batch_size: the most images per synthesis call.

    Returns:
        uint8 [N, H, W, 3] frames.
    """
    groups: dict[tuple, list[int]] = {}
    for n, req in enumerate(requests):
        groups.setdefault(synthesis_key(req), []).append(n)
    res = model.info.resolution
    out = np.empty([len(requests), res, res, 3], dtype=np.uint8)
    for rows in groups.values():
        for k in range(0, len(rows), batch_size):
            idx = rows[k:k + batch_size]
            img = synthesize_request(model, ws[idx], requests[idx[0]])  # [B3HW]
            out[idx] = frames_to_uint8(img)
    return out


def iter_frame_batches(
    model: Model,
    walks: Sequence[Walk],
    num_frames: int,
    batch_size: int = 8,
    cancel: threading.Event | None = None,
) -> Iterator[np.ndarray]:
    """Frames of walks played side by side, a batch at a time, on the calling thread.

    Every walk is stretched over the same `num_frames` (see `Walk.frame_times`).

    Args:
        model: the generator.
        walks: one walk per grid cell, row-major.
        num_frames: frames of the video.
        batch_size: images per synthesis call (a batch holds batch_size // len(walks) frames, at least 1).
        cancel: stop before the next batch once set.

    Yields:
        uint8 [B, len(walks), H, W, 3]: B frames of every cell.
    """
    samplers = [Interpolator(model, w) for w in walks]
    times = [w.frame_times(num_frames) for w in walks]
    cells = len(walks)
    step = max(1, batch_size // cells)
    for start in range(0, num_frames, step):
        if cancel is not None and cancel.is_set():
            return
        ws, requests = [], []
        for sampler, t in zip(samplers, times, strict=True):
            w, r = sampler.sample(t[start:start + step])
            ws.append(w)
            requests.append(r)
        count = ws[0].shape[0]
        ws = torch.stack(ws, dim=1).flatten(0, 1)  # [B*cells, L, W], frame-major
        requests = [requests[c][b] for b in range(count) for c in range(cells)]
        frames = render_frames(model, ws, requests, batch_size)
        yield frames.reshape(count, cells, *frames.shape[1:])


def tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[..., rows*cols, H, W, C] -> [..., rows*H, cols*W, C], row-major."""
    *lead, n, h, w, c = images.shape
    if n != rows * cols:
        raise ValueError(f"{n} images do not fill a {rows}x{cols} grid")
    grid = images.reshape(*lead, rows, cols, h, w, c)
    grid = np.moveaxis(grid, -4, -3)  # [..., rows, H, cols, W, C]
    return grid.reshape(*lead, rows * h, cols * w, c)


# -- writers: each writes under a temporary name and renames on `finish` ------------------------


class _Writer:
    scales = False  # True: takes frames at any one size and scales them itself

    def write(self, frames: np.ndarray) -> None:
        """Append uint8 [B, H, W, 3] frames."""
        raise NotImplementedError

    def finish(self) -> Path:
        raise NotImplementedError

    def kill(self) -> None:
        """Unblock a `write` waiting on a child process (called before joining the encoder)."""

    def abort(self) -> None:
        raise NotImplementedError


def partial_path(path: Path, suffix: str = "") -> Path:
    """A hidden unused name next to `path` to write under and rename at the end.

    Not `mkstemp`: its owner-only permissions would stay on the renamed file.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part{suffix}")
        if not tmp.exists():
            return tmp


class _Mp4Writer(_Writer):
    """H.264 in MP4 through the ffmpeg binary that imageio-ffmpeg ships.

    ffmpeg is run directly (imageio-ffmpeg's `write_frames` reports neither ffmpeg's exit status
    nor can it stop without encoding the frames ffmpeg holds), with imageio-ffmpeg's arguments.
    Frames of another size than the video's are scaled by ffmpeg (Lanczos): on a CPU that costs
    about a third of the CPU time of scaling them with PIL and piping the larger frames.
    """

    scales = True

    def __init__(self, path: Path, source: tuple[int, int], size: tuple[int, int], fps: float, quality: int,
                 preset: str):
        import imageio_ffmpeg

        self.path = path
        self.tmp = partial_path(path, ".mp4")
        self.log = tempfile.TemporaryFile()
        crf = int((1 - quality / 10) * 51)
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{source[0]}x{source[1]}",
               "-r", str(Fraction(fps).limit_denominator()), "-i", "-", "-an",
               *(["-vf", f"scale={size[0]}:{size[1]}:flags=lanczos"] if source != size else []),
               "-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-crf", str(crf),
               "-f", "mp4", str(self.tmp)]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)
        except OSError as e:
            self.abort()
            raise ExportError(f"cannot start ffmpeg ({e.strerror or e})") from None

    def _ffmpeg_says(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self.proc.returncode}"

    def write(self, frames: np.ndarray) -> None:
        try:
            self.proc.stdin.write(np.ascontiguousarray(frames).data)  # One pipe write per batch.
        except OSError:
            self.proc.wait()
            raise ExportError(f"ffmpeg stopped: {self._ffmpeg_says()}") from None

    def finish(self) -> Path:
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise ExportError(f"ffmpeg failed: {self._ffmpeg_says()}")
        os.replace(self.tmp, self.path)
        self.log.close()
        return self.path

    def kill(self) -> None:
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def abort(self) -> None:
        self.kill()
        if getattr(self, "proc", None) is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.tmp.unlink(missing_ok=True)
        self.log.close()


class _GifWriter(_Writer):
    """An animated GIF that loops forever; frames are quantised to 256 colours as they come."""

    def __init__(self, path: Path, fps: float):
        self.path = path
        self.frames: list[Image.Image] = []
        self.duration = 1000 / fps  # GIF stores hundredths of a second: 30 fps plays at about 33
        self.tmp: Path | None = None

    def write(self, frames: np.ndarray) -> None:
        self.frames += [Image.fromarray(frame).quantize(256) for frame in frames]

    def finish(self) -> Path:
        self.tmp = partial_path(self.path, ".gif")
        first, *rest = self.frames
        first.save(self.tmp, format="GIF", save_all=True, append_images=rest, duration=self.duration, loop=0)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


class _PngWriter(_Writer):
    """A folder of frame00000.png, ...; an existing folder is replaced only if it holds just frames."""

    def __init__(self, path: Path):
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} is a file: PNG frames need a folder")
        if path.is_dir():
            others = [p.name for p in path.iterdir() if not (p.name.startswith("frame") and p.suffix == ".png")]
            if others:
                raise ValueError(f"{path} holds other files than frames (e.g. {others[0]}): choose a new folder")
        self.path = path
        self.tmp = partial_path(path)
        self.tmp.mkdir()
        self.count = 0

    def write(self, frames: np.ndarray) -> None:
        for frame in frames:
            Image.fromarray(frame).save(self.tmp / f"frame{self.count:05d}.png", compress_level=4)
            self.count += 1

    def finish(self) -> Path:
        old = None
        if self.path.exists():
            old = partial_path(self.path, ".old")
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def open_writer(fmt: str, path: Path, source: tuple[int, int], size: tuple[int, int],
                 settings: VideoSettings) -> _Writer:
    """A writer of `size` frames that takes tiled frames of `source` size if it `scales`, else `size` ones."""
    if fmt == "mp4":
        return _Mp4Writer(path, source, size, settings.fps, settings.quality, settings.preset)
    if fmt == "gif":
        return _GifWriter(path, settings.fps)
    return _PngWriter(path)


class _Encoder(threading.Thread):
    """The second thread: tiles, resizes (unless the writer scales) and writes chunks of frames taken
    from a bounded queue."""

    def __init__(self, writer: _Writer, grid: tuple[int, int], size: tuple[int, int], chunk_bytes: int):
        super().__init__(name="explorer-encoder", daemon=True)
        self.writer = writer
        self.grid = grid
        self.size = size
        depth = min(16, max(2, QUEUE_BYTES // chunk_bytes))
        self.queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.frames = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while (chunk := self.queue.get()) is not None and not self._stopping.is_set():
                frames = tile(chunk, *self.grid)  # [BHWC]
                if not self.writer.scales and frames.shape[2:0:-1] != self.size:
                    frames = np.stack([np.asarray(Image.fromarray(f).resize(self.size, Image.Resampling.LANCZOS))
                                       for f in frames])
                self.writer.write(frames)
                self.frames += len(frames)
        except BaseException as e:  # noqa: BLE001 - handed to the engine thread, which raises it
            self.error = e

    def put(self, chunk: np.ndarray | None) -> None:
        """Queue uint8 [B, cells, H, W, 3] (None: the end), waiting while the queue is full; raises the
        encoder's error."""
        while True:
            if self.error is not None:
                raise self.error
            if not self.is_alive():
                raise ExportError("the encoder thread stopped")
            try:
                self.queue.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Wait for every queued frame to be written; raises the encoder's error."""
        self.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Drop what is queued and end the thread soon (the writer is killed to unblock it)."""
        self._stopping.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)
        self.writer.kill()
        self.join()


def export_video(
    model: Model,
    walks: Walk | Sequence[Walk],
    path: str | Path,
    settings: VideoSettings | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> ExportResult:
    """Render walks into a video file (or a folder of PNGs), on the calling thread.

    Args:
        model: the generator.
        walks: one walk, or rows*cols walks (row-major) for a grid video (`settings.grid`).
        path: the output file (.mp4, .gif) or folder (PNG frames).
        settings: fps, length, size, quality, grid, batch size and format.
        progress: called on this thread after every batch with the frames done so far.
        cancel: set it (from any thread) to stop; the partial output is deleted.

    Returns:
        What was written; `cancelled` is True (and `path` None) when the export was cancelled.

    Raises:
        ValueError: settings or walks that do not fit the model.
        ExportError: the encoder or the disk failed; no partial file is left.
    """
    t0 = time.perf_counter()
    settings = settings or VideoSettings()
    walks = [walks] if isinstance(walks, Walk) else list(walks)
    path = Path(path)
    fmt = video_format(path, settings.format)
    rows, cols = settings.grid
    if rows < 1 or cols < 1 or len(walks) != rows * cols:
        raise ValueError(f"a {rows}x{cols} grid needs {rows * cols} walks, got {len(walks)}")
    if not settings.fps > 0:
        raise ValueError(f"fps must be positive, got {settings.fps}")
    if not 1 <= settings.quality <= 10:
        raise ValueError(f"quality must be from 1 to 10, got {settings.quality}")
    if settings.preset not in X264_PRESETS:
        raise ValueError(f"unknown x264 preset {settings.preset!r}: use one of {', '.join(X264_PRESETS)}")
    if settings.batch_size < 1:
        raise ValueError(f"the batch size must be at least 1, got {settings.batch_size}")
    for i, walk in enumerate(walks):
        try:
            walk.validate(model)
        except ValueError as e:
            raise ValueError(f"walk {i + 1}: {e}" if len(walks) > 1 else str(e)) from None
    num_frames = settings.frame_count(walks)
    res = model.info.resolution
    width, height = settings.size or (cols * res, rows * res)
    size = (int(width), int(height))
    if min(size) < 1:
        raise ValueError(f"the video size must be positive, got {size[0]}x{size[1]}")
    if fmt == "mp4":
        if settings.size is None:
            size = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        elif size[0] % 2 or size[1] % 2:
            raise ValueError(f"MP4 (H.264, yuv420p) needs an even width and height, got {size[0]}x{size[1]}")

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = open_writer(fmt, path, (cols * res, rows * res), size, settings)
    batch_bytes = max(1, settings.batch_size // len(walks)) * len(walks) * res * res * 3
    encoder = _Encoder(writer, (rows, cols), size, chunk_bytes=CHUNK_BYTES + batch_bytes)
    encoder.start()
    meter = ProgressMeter(num_frames, progress)
    done, waited, chunk = 0, 0.0, []
    try:
        for batch in iter_frame_batches(model, walks, num_frames, settings.batch_size, cancel):
            chunk.append(batch)
            done += len(batch)
            full = sum(map(len, chunk)) >= CHUNK_FRAMES or sum(b.nbytes for b in chunk) >= CHUNK_BYTES
            if full or done == num_frames:
                t1 = time.perf_counter()
                encoder.put(np.concatenate(chunk))
                waited += time.perf_counter() - t1
                chunk = []
            meter.update(done)
        if cancel is not None and cancel.is_set():
            encoder.stop()
            writer.abort()
            return ExportResult(None, encoder.frames, size, time.perf_counter() - t0, waited, cancelled=True)
        t1 = time.perf_counter()
        encoder.close()
        final = writer.finish()
        waited += time.perf_counter() - t1
    except BaseException:
        encoder.stop()
        writer.abort()
        raise
    return ExportResult(final, encoder.frames, size, time.perf_counter() - t0, waited)
