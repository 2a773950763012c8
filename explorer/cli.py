"""`explorer` command line: the window by default, and headless `info` / `render` / `grid` / `video` / `eq` /
`directions` / `project` on the same engine.

A user mistake (bad argument, unreadable checkpoint) prints one line and exits non-zero; it never
shows a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

USAGE_ERROR = 2
RUN_ERROR = 1
SESSION_FORMAT = "latent-explorer-session"  # the "format" of the GUI's session files


def parse_seeds(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if sep else int(lo)
            if last < first:
                raise ValueError
            seeds.extend(range(first, last + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a seed list: {text!r} (use e.g. 0-7 or 1,5,9)") from None
    if any(s >= 2**32 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be in 0..{2**32 - 1}")
    return seeds


def parse_grid(text: str) -> tuple[int, int]:
    """'2x3' -> (2, 3): rows x columns."""
    rows, sep, cols = text.lower().partition("x")
    if not (sep and rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
        raise argparse.ArgumentTypeError(f"not a grid: {text!r} (use ROWSxCOLS, e.g. 2x3)")
    return int(rows), int(cols)


def parse_count(text: str) -> int:
    """'8' -> 8: a whole number above 0."""
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (use a whole number above 0)")
    return int(text)


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '320x240' -> (320, 240): width x height."""
    width, sep, height = text.lower().partition("x")
    height = height if sep else width
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 512 or 640x480)")
    return int(width), int(height)


def parse_metrics(text: str) -> list[str]:
    """'eqt_int,eqr' -> ['eqt_int', 'eqr']: equivariance metrics, in the order given."""
    from .engine.equivariance import METRICS

    names = list(dict.fromkeys(part.strip() for part in text.split(",")))
    bad = [n for n in names if n not in METRICS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"not a metric list: {text!r} (choose from {','.join(METRICS)})")
    return names


def _model_args(p: argparse.ArgumentParser, device: bool = True) -> None:
    p.add_argument("model", type=Path, help="checkpoint file (any supported format)")
    p.add_argument("--network", help="another network of the file than its averaged one (e.g. G)")
    p.add_argument("--resolution", type=int, help="output resolution, for files that do not record it")
    if device:
        p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: cpu)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="explorer", description="Explore the latent spaces of GAN generators.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the window (the default with no command)")
    gui.add_argument("model", type=Path, nargs="?", help="checkpoint to open (default: the bundled model)")

    info = sub.add_parser("info", help="print what a checkpoint holds")
    _model_args(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    convert = sub.add_parser("convert", help="write a checkpoint in this program's own safe format (weights + JSON "
                                             "config, loadable with torch.load(weights_only=True))")
    _model_args(convert, device=False)
    convert.add_argument("out", type=Path, help="the file to write (e.g. model.pt)")

    render = sub.add_parser("render", help="render seeds to PNG files")
    _model_args(render)
    render.add_argument("--seeds", type=parse_seeds, default=None,
                        help="e.g. 0-7 or 1,5,9 (default: the --request file's picture, else 0)")
    _request_args(render)
    render.add_argument("--out", type=Path, required=True, help="output folder")
    render.add_argument("--sheet", type=Path, help="also tile the pictures in seed order into this PNG")
    render.add_argument("--sheet-cols", type=parse_count, default=8, help="pictures per row of the sheet (default 8)")

    grid = sub.add_parser("grid", help="render a style-mixing grid to one PNG")
    _model_args(grid)
    grid.add_argument("--rows", type=parse_seeds, required=True, help="row seeds (their other layers are kept)")
    grid.add_argument("--cols", type=parse_seeds, required=True, help="column seeds (their --layers are taken)")
    grid.add_argument("--layers", default="coarse", help="coarse, middle, fine, all or ws indices, e.g. 0-3,6")
    grid.add_argument("--labels", action="store_true", help="write the seeds above the columns and left of the rows")
    grid.add_argument("--no-sources", dest="sources", action="store_false", help="leave out the unmixed seeds")
    grid.add_argument("--batch", type=parse_count, default=8, help="images per synthesis call (default 8)")
    _request_args(grid)
    grid.add_argument("--out", type=Path, required=True, help="the PNG to write")

    video = sub.add_parser("video", help="render an interpolation video (MP4, GIF or PNG frames)")
    _model_args(video)
    video.add_argument("--seeds", type=parse_seeds, help="keyframe seeds (default: the walk in the --request file)")
    _request_args(video)
    video.add_argument("--spacing", type=float, default=1.0, help="seconds between --seeds keyframes (default 1)")
    video.add_argument("--space", choices=["w", "z"], help="interpolate linearly in W (default) or by slerp in Z")
    video.add_argument("--easing", choices=["linear", "ease-in", "ease-out", "ease-in-out"], help="between keyframes")
    video.add_argument("--loop", action="store_true", default=None, help="end where it starts, for seamless repeats")
    video.add_argument("--layers", help="only these ws move, e.g. fine or 8-13 (default: all)")
    video.add_argument("--grid", type=parse_grid, default=(1, 1), help="ROWSxCOLS walks, the --seeds split among them")
    video.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    length = video.add_mutually_exclusive_group()
    length.add_argument("--duration", type=float, help="seconds (default: the keyframes' times)")
    length.add_argument("--frames", type=parse_count, help="frame count")
    video.add_argument("--size", type=parse_size, help="output size, e.g. 512 or 640x480 (default: native)")
    video.add_argument("--quality", type=int, default=8, help="MP4 quality 1-10 (default 8)")
    video.add_argument("--preset", default="veryfast", help="MP4 x264 preset: slower = smaller file (default veryfast)")
    video.add_argument("--format", choices=["mp4", "gif", "png"], help="default: from --out (no suffix: PNG frames)")
    video.add_argument("--batch", type=parse_count, default=8, help="images per synthesis call (default 8)")
    video.add_argument("--out", type=Path, required=True, help="the .mp4 / .gif file or the PNG frames folder")

    eq = sub.add_parser("eq", help="measure a StyleGAN3 model's equivariance: EQ-T, EQ-T_frac, EQ-R in dB")
    _model_args(eq)
    eq.add_argument("--samples", type=parse_count, default=1000,
                    help="images per metric (default 1000; the paper: 50000)")
    eq.add_argument("--batch", type=parse_count, default=4, help="images per batch; the draws depend on it (default 4)")
    eq.add_argument("--seed", type=int, default=0,
                    help="metric k of eqt_int,eqt_frac,eqr draws from seed S+k (default 0)")
    eq.add_argument("--metrics", type=parse_metrics, default=None,
                    help="comma-separated, from eqt_int,eqt_frac,eqr (default: all)")
    eq.add_argument("--json", action="store_true", help="print JSON instead of text")

    dirs = sub.add_parser("directions", help="find semantic directions in W (GANSpace PCA or SeFa), draw a sheet")
    _model_args(dirs)
    dirs.add_argument("--method", choices=["pca", "sefa"], default="pca",
                      help="pca: principal axes of mapped w (GANSpace); sefa: closed-form factorisation of the "
                           "style affines (default pca)")
    dirs.add_argument("--samples", type=parse_count, default=10000,
                      help="mapped latents for PCA and each direction's spread sigma (default 10000)")
    dirs.add_argument("--seed", type=int, default=0, help="seed of those latents (default 0)")
    dirs.add_argument("--layers", default="all",
                      help="the ws: SeFa factorises their affines; the sheet moves them. coarse, middle, fine, "
                           "all or e.g. 0-3 (default all)")
    dirs.add_argument("--top", type=int, default=5, help="directions to list and draw (default 5)")
    dirs.add_argument("--sheet", type=Path, help="write a direction sheet PNG: per direction a row per seed, "
                                                "-3 to +3 sigma")
    dirs.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="the sheet's seeds (default 0-2)")
    dirs.add_argument("--steps", type=int, default=7, help="sheet columns from -3 to +3 sigma (default 7)")
    dirs.add_argument("--labels", action="store_true", help="write names, seeds and steps on the sheet")
    dirs.add_argument("--batch", type=parse_count, default=8, help="images per synthesis call (default 8)")
    _request_args(dirs)
    dirs.add_argument("--save", type=Path, help="write the top directions as a [K, w_dim] float32 .npy")

    proj = sub.add_parser("project", help="find the latent of an image (StyleGAN2 paper's projection)")
    _model_args(proj)
    proj.add_argument("image", type=Path, help="the picture, any size: centre-cropped and resized to the model")
    proj.add_argument("--steps", type=parse_count, default=1000, help="optimisation steps (default 1000)")
    proj.add_argument("--wplus", action="store_true", help="one w per layer (W+) instead of one for all (W)")
    proj.add_argument("--seed", type=int, default=0, help="seed of the noise maps and latent noise (default 0)")
    proj.add_argument("--loss", choices=["auto", "pixel", "laplacian", "dfeat", "lpips"], default="auto",
                      help="distance to the image: dfeat = the file's discriminator features + laplacian (default "
                           "auto: lpips with --lpips-weights, else dfeat when the file carries a discriminator, "
                           "as NVIDIA's training snapshots do, else laplacian)")
    proj.add_argument("--lpips-weights", type=Path, action="append", metavar="FILE",
                      help="VGG16 / LPIPS state dict (.pth); repeat for weights split over files")
    proj.add_argument("--keep-noise", dest="fit_noise", action="store_false",
                      help="keep the model's stored noise instead of fitting the noise maps")
    proj.add_argument("--class", dest="class_idx", type=int, default=None, help="class of a conditional model")
    proj.add_argument("--video", action="store_true", help="also write proj.mp4: target | projection, every step")
    proj.add_argument("--out", type=Path, required=True,
                      help="output folder: projected_w.npz, proj.png, target.png, request.json (+ proj.mp4)")

    bench = sub.add_parser("bench", help="time the synthesis networks: reference ops against the fast paths")
    bench.add_argument("--configs", default=None,
                       help="comma-separated configurations (default: the CPU set; 'all' for every one)")
    bench.add_argument("--impl", default="reference,fast", help="reference, fast or both (default both)")
    bench.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    bench.add_argument("--repeats", type=parse_count, default=3,
                       help="timed runs per row, after one warm-up (default 3)")
    bench.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    return parser


def _request_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trunc", type=float, default=None, help="truncation psi (default 1: none)")
    p.add_argument("--cutoff", type=int, default=None, help="truncate only the first N ws")
    p.add_argument("--noise", choices=["const", "random", "none"], default=None, help="noise mode")
    p.add_argument("--noise-seed", type=int, default=None, help="seed of random noise")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class of a conditional model")
    p.add_argument("--translate", type=float, nargs=2, metavar=("X", "Y"), help="StyleGAN3 input translation")
    p.add_argument("--rotate", type=float, default=None, help="StyleGAN3 input rotation in degrees")
    p.add_argument("--request", type=Path,
                   help="a JSON render request, walk or saved GUI session to start from; flags override it")


def _read_request_file(path: Path):
    """(request, walk or None) of a JSON file: a render request, a walk, or a GUI session (with its walk)."""
    from .engine.interpolate import Walk
    from .engine.render import RenderRequest

    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError("the file holds no JSON object")
        walk = None
        if data.get("format") == SESSION_FORMAT:
            req = RenderRequest.from_dict(data["request"])
            walk = Walk.from_dict(data["walk"]) if data.get("walk") is not None else None
        elif "keyframes" in data:
            walk = Walk.from_dict(data)
            req = walk.keyframes[0].request if walk.keyframes else RenderRequest()
        else:
            req = RenderRequest.from_dict(data)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the request file ({e.strerror or e})") from None
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a valid render request, walk or session ({e})") from None
    return req, walk


def _overrides(args) -> dict:
    """The request fields set by explicit flags."""
    overrides = {
        "truncation_psi": args.trunc, "truncation_cutoff": args.cutoff, "noise_mode": args.noise,
        "noise_seed": args.noise_seed, "class_idx": args.class_idx, "rotate": args.rotate,
        "translate": tuple(args.translate) if args.translate else None,
    }
    return {key: value for key, value in overrides.items() if value is not None}


def _request(args):
    """The render request of the CLI arguments: a --request file, overridden by explicit flags."""
    import dataclasses

    from .engine.render import RenderRequest

    req = RenderRequest() if args.request is None else _read_request_file(args.request)[0]
    return dataclasses.replace(req, **_overrides(args))


def _info_text(info) -> str:
    lines = [
        f"file:            {info.path}",
        f"family:          {info.family}",
        f"format:          {info.source_format} (written by {info.source})",
        f"network:         {info.network} (in file: {', '.join(info.networks)})",
        f"resolution:      {info.resolution}{' (guessed)' if info.resolution_guessed else ''}",
        f"z_dim / w_dim:   {info.z_dim} / {info.w_dim}",
        f"num_ws:          {info.num_ws}",
        f"classes (c_dim): {info.c_dim}",
        f"noise inputs:    {len(info.noise_layers) if info.has_noise else 'none'}",
        f"input transform: {'yes' if info.has_input_transform else 'no'}",
        f"discriminator:   {f'{info.discriminator} (projection uses its features)' if info.discriminator else 'none'}",
    ]
    lines += [f"note:            {n}" for n in info.notes]
    return "\n".join(lines)


def _run(args) -> int:
    if args.command in (None, "gui"):
        from .app import main as gui_main

        return gui_main(getattr(args, "model", None))
    if args.command == "bench":
        return _bench(args)
    if args.command == "convert":
        return _convert(args)

    from .engine import load_model
    from .engine.render import render

    model = load_model(args.model, device=args.device, network=args.network, resolution=args.resolution)
    if args.command == "info":
        print(json.dumps(model.info.to_dict(), indent=2) if args.json else _info_text(model.info))
        return 0

    if args.command == "grid":
        return _grid(model, args)
    if args.command == "video":
        return _video(model, args)
    if args.command == "eq":
        return _eq(model, args)
    if args.command == "directions":
        return _directions(model, args)
    if args.command == "project":
        return _project(model, args)

    # render
    from PIL import Image

    req = _request(args)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.seeds is None and args.request is not None:
        jobs = [(req.seeds, args.out / f"{args.request.stem}.png")]  # the file's picture, blended seeds and all
    else:
        jobs = [([(seed, 1.0)], args.out / f"seed{seed:04d}.png") for seed in args.seeds or [0]]
    images = []
    for seeds, path in jobs:
        req.seeds = seeds
        result = render(model, req)
        images.append(result.image)
        Image.fromarray(result.image).save(path)
        print(f"{path}  ({result.timings['total'] * 1000:.0f} ms)")
    if args.sheet:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_contact_sheet(images, args.sheet_cols)).save(args.sheet)
        print(args.sheet)
    return 0


def _contact_sheet(images: list, cols: int):
    """The pictures `cols` per row in order, the last row filled with black (as the papers' uncurated grids)."""
    import numpy as np

    from .engine.video import tile

    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    blank = [np.zeros_like(images[0])] * (rows * cols - len(images))
    return tile(np.stack(images + blank), rows, cols)


def _convert(args) -> int:
    """Read a checkpoint as data and write its generator in our format; read the result back to check it."""
    import torch

    from .engine import load_model
    from .engine.formats import native, read_checkpoint

    if args.out.exists() and args.out.resolve() == args.model.resolve():
        raise ValueError(f"{args.out}: is the checkpoint being read; write the converted file under another name")
    ckpt = read_checkpoint(args.model, network=args.network, resolution=args.resolution)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    native.save(ckpt, args.out)
    written = load_model(args.out).generator.state_dict()
    ours = ckpt.generator.state_dict()
    if written.keys() != ours.keys() or not all(torch.equal(written[k], ours[k]) for k in ours):
        raise OSError(f"{args.out}: the written file does not read back as what was converted")
    res = ckpt.config.get("img_resolution", "?")
    print(f"{args.out}: {ckpt.family} {res}x{res} ({ckpt.network} of {ckpt.format}), {args.out.stat().st_size:,} "
          f"bytes; opens with torch.load(weights_only=True) and in explorer")
    return 0


def _progress_bar(label: str):
    """A progress callback drawing one updating line on a terminal's stderr (nothing otherwise)."""
    if not sys.stderr.isatty():
        return None

    def show(p) -> None:
        width = 30
        filled = round(width * p.done / p.total)
        left = f", {p.eta:.0f} s left" if p.eta is not None and p.done < p.total else ""
        end = "\n" if p.done == p.total else ""
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total}{left}   ",
              end=end, file=sys.stderr, flush=True)

    return show


def _grid(model, args) -> int:
    from .engine.grid import mixing_grid, parse_layers, save_png

    layers = parse_layers(args.layers, model.info)
    grid = mixing_grid(model, args.rows, args.cols, layers, _request(args), batch_size=args.batch,
                       progress=_progress_bar("grid"))
    image = grid.compose(sources=args.sources, labels=args.labels)
    save_png(image, args.out)
    print(f"{args.out}  ({len(args.rows)}x{len(args.cols)} seeds, layers {layers}, {image.shape[1]}x{image.shape[0]})")
    return 0


def _video(model, args) -> int:
    import dataclasses

    from .engine.grid import parse_layers
    from .engine.interpolate import walk_from_seeds
    from .engine.video import VideoSettings, export_video

    rows, cols = args.grid
    options = {"space": args.space, "easing": args.easing, "loop": args.loop,
               "layers": parse_layers(args.layers, model.info) if args.layers else None}
    options = {key: value for key, value in options.items() if value is not None}
    if args.seeds is not None:
        if len(args.seeds) % (rows * cols):
            raise ValueError(f"{len(args.seeds)} seeds do not split evenly among {rows}x{cols} walks")
        per = len(args.seeds) // (rows * cols)
        walks = [walk_from_seeds(args.seeds[i * per:(i + 1) * per], _request(args), args.spacing, **options)
                 for i in range(rows * cols)]
    else:
        walk = _read_request_file(args.request)[1] if args.request is not None else None
        if walk is None:
            raise ValueError("give keyframe --seeds, or a --request file holding a walk")
        if rows * cols != 1:
            raise ValueError("a grid video takes its walks from --seeds")
        keys = [dataclasses.replace(k, request=dataclasses.replace(k.request, **_overrides(args)))
                for k in walk.keyframes]
        walks = [dataclasses.replace(walk, keyframes=keys, **options)]
    settings = VideoSettings(fps=args.fps, duration=args.duration, frames=args.frames, size=args.size,
                             quality=args.quality, preset=args.preset, grid=(rows, cols), batch_size=args.batch,
                             format=args.format)
    result = export_video(model, walks, args.out, settings, progress=_progress_bar("video"))
    print(f"{result.path}  ({result.frames} frames, {result.size[0]}x{result.size[1]}, {result.seconds:.1f} s)")
    return 0


def _eq(model, args) -> int:
    from .engine.equivariance import METRIC_LABELS, METRICS, check_model, compute_eq

    check_model(model)
    results = {}
    for metric in args.metrics or METRICS:
        seed = args.seed + METRICS.index(metric)  # the metric's seed does not depend on which others run
        r = compute_eq(model, metric, args.samples, args.batch, seed, progress=_progress_bar(METRIC_LABELS[metric]))
        results[metric] = {"label": r.label, "psnr_db": r.psnr_db, "seed": seed, "samples": r.num_samples}
    if args.json:
        print(json.dumps({"model": str(args.model), "family": model.info.family, "batch": args.batch,
                          "metrics": results}, indent=2))
        return 0
    res = model.info.resolution
    print(f"{args.model}: {model.info.family}, {res}x{res}, batches of {args.batch}")
    for r in results.values():
        print(f"{r['label']:<10} {r['psnr_db']:7.2f} dB  ({r['samples']} images, seed {r['seed']})")
    return 0


def _ranges(indices) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    parts: list[list[int]] = []
    for i in indices:
        if parts and i == parts[-1][-1] + 1:
            parts[-1].append(i)
        else:
            parts.append([i])
    return ",".join(f"{p[0]}-{p[-1]}" if len(p) > 1 else str(p[0]) for p in parts)


def _directions(model, args) -> int:
    import numpy as np

    from .engine.directions import SHEET_EXTENT, direction_sheet, find_directions
    from .engine.grid import parse_layers, save_png

    if args.top < 1 or args.steps < 2:
        raise ValueError("--top must be at least 1 and --steps at least 2")
    layers = parse_layers(args.layers, model.info)
    options = {"samples": args.samples, "seed": args.seed, "progress": _progress_bar(args.method)}
    if args.method == "sefa":
        options["layers"] = layers
    found = find_directions(model, args.method, **options).top(args.top)

    value = "variance" if args.method == "pca" else "eigenvalue"
    print(f"{args.method} on {args.model}: {model.info.family}, w_dim {model.info.w_dim}, "
          f"{args.samples} samples (seed {args.seed}), layers {_ranges(layers)}")
    print(f"{'#':>3}  {'name':<7} {value:>11} {'share':>7} {'cumul.':>7} {'sigma':>9}")
    cumulative = np.cumsum(found.explained)
    for i in range(len(found.values)):
        print(f"{i:>3}  {found.name(i):<7} {found.values[i]:11.5g} {found.explained[i]:7.2%} "
              f"{cumulative[i]:7.2%} {found.sigma[i]:9.4g}")
    if args.save is not None:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.save, found.vectors.astype(np.float32))
        print(f"{args.save}  ({len(found.values)} directions x {model.info.w_dim})")
    if args.sheet is not None:
        steps = np.linspace(-SHEET_EXTENT, SHEET_EXTENT, args.steps).tolist()
        sheet = direction_sheet(model, found, args.seeds, top=args.top, steps=steps, layers=layers,
                                base=_request(args), batch_size=args.batch, progress=_progress_bar("sheet"))
        image = sheet.compose(labels=args.labels)
        save_png(image, args.sheet)
        print(f"{args.sheet}  ({len(found.values)} directions x {len(args.seeds)} seeds x {args.steps} steps, "
              f"{image.shape[1]}x{image.shape[0]})")
    return 0


def _projection_progress(steps: int):
    """A progress callback for projection on stderr: one updating line on a terminal, else a line
    every tenth of the run (logs stay short)."""
    tty = sys.stderr.isatty()
    every = max(1, steps // 10)

    def show(p) -> None:
        if tty or p.step % every == 0 or p.step == p.steps:
            text = (f"step {p.step}/{p.steps}  loss {p.loss:.5f}  distance {p.distance:.5f}  lr {p.lr:.4f}  "
                    f"{p.elapsed:.0f} s")
            print(f"\r{text}   " if tty else text, end="\n" if not tty or p.step == p.steps else "",
                  file=sys.stderr, flush=True)

    return show


def _project(model, args) -> int:
    import numpy as np
    from PIL import Image

    from .engine.projector import ProjectionSettings, model_loss, prepare_target, project, save_latents
    from .engine.render import RenderRequest
    from .engine.video import VideoSettings, open_writer

    settings = ProjectionSettings(steps=args.steps, w_plus=args.wplus, seed=args.seed, loss=args.loss,
                                  lpips_weights=tuple(str(p) for p in args.lpips_weights or ()),
                                  optimize_noise=args.fit_noise, class_idx=args.class_idx,
                                  preview_every=1 if args.video else 0)
    settings.validate(model.info)
    target = prepare_target(args.image, model.info.resolution)
    loss = model_loss(model, settings.loss, target.pixels, settings.lpips_weights)
    print(f"projecting {args.image} ({target.source_size[0]}x{target.source_size[1]}, crop {target.crop_box}) "
          f"with {loss.label}, {'W+' if args.wplus else 'W'}, {args.steps} steps", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)

    show = _projection_progress(args.steps)
    writer = None
    if args.video:  # target | projection, a frame per step
        res = model.info.resolution
        writer = open_writer("mp4", args.out / "proj.mp4", (2 * res, res), (2 * res, res), VideoSettings(fps=30))

    def progress(p) -> None:
        show(p)
        if writer is not None and p.image is not None:
            writer.write(np.concatenate([target.pixels, p.image], axis=1)[None])

    try:
        result = project(model, target, settings, progress=progress, loss=loss)
        video = writer.finish() if writer is not None else None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise

    npz = save_latents(args.out / "projected_w.npz", result.ws, result.noise)
    Image.fromarray(result.image).save(args.out / "proj.png")
    Image.fromarray(target.pixels).save(args.out / "target.png")
    request = RenderRequest(class_idx=args.class_idx, ws=result.ws[0].tolist(),
                            noise_file=str(npz.resolve()) if result.noise else None)
    (args.out / "request.json").write_text(request.to_json())
    for path in [npz, args.out / "proj.png", args.out / "target.png", args.out / "request.json", video]:
        if path is not None:
            print(path)
    print(f"PSNR {result.psnr:.2f} dB, {result.loss_label} {result.distance:.5f}, {result.seconds:.1f} s")
    return 0


def _bench(args) -> int:
    from .engine import bench

    configs = bench.CPU_DEFAULT if args.configs is None else (
        tuple(bench.CONFIGS) if args.configs == "all" else tuple(c.strip() for c in args.configs.split(",")))
    unknown = [c for c in configs if c not in bench.CONFIGS]
    impls = tuple(i.strip() for i in args.impl.split(","))
    if unknown or not set(impls) <= set(bench.IMPLS) or args.repeats < 1:
        raise ValueError(f"bench: choose configs from {', '.join(bench.CONFIGS)}, impl from "
                         f"{', '.join(bench.IMPLS)}, and repeats >= 1")
    rows = bench.run(configs, impls, device=args.device, repeats=args.repeats,
                     report=lambda line: print(line, file=sys.stderr))
    print(bench.table(rows))
    if args.json:
        bench.write_json(rows, args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `explorer` command."""
    args = build_parser().parse_args(argv)
    from .engine.cpu_heap import keep_freed_memory
    from .engine.errors import LoadError

    keep_freed_memory()

    try:
        return _run(args)
    except (LoadError, ValueError, OSError) as e:
        print(f"explorer: error: {e}", file=sys.stderr)
        return RUN_ERROR
    except KeyboardInterrupt:
        print("explorer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
