"""Video export against generation alone, on the same model, walks and batches.

The export generates frames on this thread and encodes them on another; if that overlap works, the
export costs little more than generating the frames. This prints both times (medians over repeats,
run alternately so that load on the machine hits both alike) and their ratio; the goal on CPU is
a ratio under 1.15.

Wall-clock times on a shared machine swing with other people's load, so the CPU seconds of both are
shown too (this process's threads plus the ffmpeg child; Unix only): on a CPU the generator and the
encoder share the cores, so the CPU ratio is what the wall ratio tends to on a busy, quiet machine.

    .venv/bin/python benchmarks/video_export.py --frames 120 --repeats 5 --json out/video_export.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.cli import parse_grid, parse_seeds, parse_size  # noqa: E402
from explorer.engine import load_model  # noqa: E402
from explorer.engine.cpu_heap import keep_freed_memory  # noqa: E402
from explorer.engine.interpolate import walk_from_seeds  # noqa: E402
from explorer.engine.render import RenderRequest  # noqa: E402
from explorer.engine.video import VideoSettings, export_video, iter_frame_batches  # noqa: E402

DEFAULT_MODEL = ROOT.parent / "shared" / "fixtures" / "nvidia" / "stylegan2-ada-32" / "model.pkl"


def cpu_seconds() -> float:
    """CPU time of this process's threads and of its finished children (ffmpeg)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def generate_only(model, walks, frames: int, batch: int) -> tuple[float, float]:
    """(wall, CPU) seconds to generate every frame (latents, synthesis, uint8 readback) and drop it."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    for _ in iter_frame_batches(model, walks, frames, batch):
        pass
    return time.perf_counter() - t0, cpu_seconds() - c0


def export(model, walks, settings: VideoSettings, folder: Path) -> tuple[float, float, float]:
    """(wall, CPU, waited) seconds of a whole export, from the call until the file is in place; `waited`
    is the time generation stood still for the encoder."""
    suffix = "" if settings.format == "png" else f".{settings.format}"
    t0, c0 = time.perf_counter(), cpu_seconds()
    result = export_video(model, walks, folder / f"bench{suffix}", settings)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    assert result.frames == settings.frames, result
    return wall, cpu, result.waited


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="default: the SG2-ADA 32 px fixture")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="images per synthesis call")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-3"), help="keyframes of each walk")
    parser.add_argument("--grid", type=parse_grid, default=(1, 1), help="ROWSxCOLS walks")
    parser.add_argument("--size", type=parse_size, default=None, help="output size (default: native)")
    parser.add_argument("--format", choices=["mp4", "gif", "png"], default="mp4")
    parser.add_argument("--quality", type=int, default=8)
    parser.add_argument("--preset", default="veryfast", help="x264 preset")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    keep_freed_memory()  # as the `explorer` command does
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    model = load_model(args.model, device=args.device)
    rows, cols = args.grid
    base = RenderRequest(truncation_psi=0.7, class_idx=0 if model.info.c_dim else None)
    walks = [walk_from_seeds([s + 1000 * cell for s in args.seeds], base, loop=True) for cell in range(rows * cols)]
    settings = VideoSettings(frames=args.frames, size=args.size, quality=args.quality, preset=args.preset,
                             grid=(rows, cols), batch_size=args.batch, format=args.format)

    gen, exp = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Warm-up: first-call allocations, the ffmpeg binary into the page cache.
        generate_only(model, walks, min(args.frames, 2 * args.batch), args.batch)
        export(model, walks, VideoSettings(**{**vars(settings), "frames": min(args.frames, 2 * args.batch)}), folder)
        for i in range(args.repeats):
            # Alternate the order so that a slow spell of the machine does not favour one side.
            if i % 2 == 0:
                gen.append(generate_only(model, walks, args.frames, args.batch))
                exp.append(export(model, walks, settings, folder))
            else:
                exp.append(export(model, walks, settings, folder))
                gen.append(generate_only(model, walks, args.frames, args.batch))

    ratio = statistics.median(e[0] for e in exp) / statistics.median(g for g, _ in gen)
    paired = statistics.median(e[0] / g for e, (g, _) in zip(exp, gen, strict=True))
    cpu_ratio = statistics.median(e[1] for e in exp) / statistics.median(c for _, c in gen)
    waited = statistics.median(e[2] for e in exp)
    info = model.info
    width, height = settings.size or (cols * info.resolution, rows * info.resolution)
    print(f"model: {args.model} ({info.family}, {info.resolution} px), device {args.device}, "
          f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    print(f"video: {args.frames} frames, {args.format} {width}x{height} (x264 {args.preset}), grid {rows}x{cols}, "
          f"batch {args.batch}, {args.repeats} repeats, load average {os.getloadavg()[0]:.1f}")
    print()
    print(f"{'':18}{'median s':>10}{'min s':>9}{'max s':>9}{'ms/frame':>10}{'CPU s':>9}")
    for name, runs in (("generation only", gen), ("export", exp)):
        wall = [r[0] for r in runs]
        med = statistics.median(wall)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{name:18}{med:10.3f}{min(wall):9.3f}{max(wall):9.3f}{1000 * med / args.frames:10.1f}{cpu:9.3f}")
    print()
    print(f"ratio export / generation: {ratio:.3f} wall (median of paired runs: {paired:.3f}), "
          f"{cpu_ratio:.3f} CPU; goal < 1.15")
    print(f"generation stood still for the encoder: {1000 * waited:.1f} ms per export (median)")

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "model": str(args.model), "family": info.family, "resolution": info.resolution, "device": args.device,
            "torch_threads": torch.get_num_threads(), "frames": args.frames, "format": args.format,
            "size": [width, height], "grid": [rows, cols], "batch": args.batch, "repeats": args.repeats,
            "preset": args.preset, "load_average": os.getloadavg()[0],
            "generation_s": [g for g, _ in gen], "export_s": [e[0] for e in exp],
            "generation_cpu_s": [c for _, c in gen], "export_cpu_s": [e[1] for e in exp],
            "export_waited_s": [e[2] for e in exp],
            "ratio": ratio, "paired_ratio": paired, "cpu_ratio": cpu_ratio,
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
