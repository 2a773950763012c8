"""`explorer` command line: the window by default, and headless `info` / `render` on the same engine.

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


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="checkpoint file (any supported format)")
    p.add_argument("--network", help="another network of the file than its averaged one (e.g. G)")
    p.add_argument("--resolution", type=int, help="output resolution, for files that do not record it")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: cpu)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="explorer", description="Explore the latent spaces of GAN generators.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the window (the default with no command)")
    gui.add_argument("model", type=Path, nargs="?", help="checkpoint to open (default: the bundled model)")

    info = sub.add_parser("info", help="print what a checkpoint holds")
    _model_args(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    render = sub.add_parser("render", help="render seeds to PNG files")
    _model_args(render)
    render.add_argument("--seeds", type=parse_seeds, default=[0], help="e.g. 0-7 or 1,5,9 (default: 0)")
    render.add_argument("--trunc", type=float, default=None, help="truncation psi (default 1: none)")
    render.add_argument("--cutoff", type=int, default=None, help="truncate only the first N ws")
    render.add_argument("--noise", choices=["const", "random", "none"], default=None, help="noise mode")
    render.add_argument("--noise-seed", type=int, default=None, help="seed of random noise")
    render.add_argument("--class", dest="class_idx", type=int, default=None, help="class of a conditional model")
    render.add_argument("--translate", type=float, nargs=2, metavar=("X", "Y"), help="StyleGAN3 input translation")
    render.add_argument("--rotate", type=float, default=None, help="StyleGAN3 input rotation in degrees")
    render.add_argument("--request", type=Path, help="a JSON render request to start from (e.g. a saved GUI state)")
    render.add_argument("--out", type=Path, required=True, help="output folder")
    return parser


def _request(args):
    """The render request of the CLI arguments: a --request file, overridden by explicit flags."""
    from .engine.render import RenderRequest

    req = RenderRequest()
    if args.request is not None:
        try:
            req = RenderRequest.from_json(args.request.read_text())
        except OSError as e:
            raise ValueError(f"{args.request}: cannot read the request file ({e.strerror or e})") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{args.request}: not a valid render request ({e})") from None
    overrides = {
        "truncation_psi": args.trunc, "truncation_cutoff": args.cutoff, "noise_mode": args.noise,
        "noise_seed": args.noise_seed, "class_idx": args.class_idx, "rotate": args.rotate,
        "translate": tuple(args.translate) if args.translate else None,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(req, key, value)
    return req


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
    ]
    lines += [f"note:            {n}" for n in info.notes]
    return "\n".join(lines)


def _run(args) -> int:
    if args.command in (None, "gui"):
        from .app import main as gui_main

        return gui_main(getattr(args, "model", None))

    from .engine import load_model
    from .engine.render import render

    model = load_model(args.model, device=args.device, network=args.network, resolution=args.resolution)
    if args.command == "info":
        print(json.dumps(model.info.to_dict(), indent=2) if args.json else _info_text(model.info))
        return 0

    # render
    from PIL import Image

    req = _request(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        req.seeds = [(seed, 1.0)]
        result = render(model, req)
        path = args.out / f"seed{seed:04d}.png"
        Image.fromarray(result.image).save(path)
        print(f"{path}  ({result.timings['total'] * 1000:.0f} ms)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `explorer` command."""
    args = build_parser().parse_args(argv)
    from .engine.errors import LoadError

    try:
        return _run(args)
    except (LoadError, ValueError) as e:
        print(f"explorer: error: {e}", file=sys.stderr)
        return RUN_ERROR
    except KeyboardInterrupt:
        print("explorer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
