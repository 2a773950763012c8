"""What every trainer shares: the command line, the training loop over the teacher's face stream,
resumable checkpoints written atomically, the EMA generator, sample grids and the export of the
EMA generator to our own format (what `assets/` ships).

A trainer is an object with `step(reals, images_seen) -> dict of floats`, `sample(z)`, `G`, `g_ema`,
`ema_rampup`, `g_held`, `family`, `config`, `state_dict()` and `load_state_dict()`
(`gan.GANTrainer` has most of it);
`run(trainer, args)` does the rest. Everything a resumed run needs is in `<out>/checkpoint.pt`
(networks, optimisers, counters, the torch and data-stream random states), so stopping and resuming
continues the very same run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..engine.cpu_heap import keep_freed_memory
from ..engine.formats import native, read_checkpoint
from ..engine.formats.checkpoint import Checkpoint
from .teacher import FaceStream

CHECKPOINT = "checkpoint.pt"
SAMPLE_SEED = 0  # the fixed z of every sample grid, so grids of one run compare


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, log, grids, export)")
    p.add_argument("--kimg", type=float, required=True, help="train until this many thousand real images were seen")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: leave cores to others)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]; a run may resume on another device")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop after this many minutes (with a checkpoint), for time-limited sessions")
    p.add_argument("--resolution", type=int, default=64, help="image size (a divisor of 64; tests use 16)")
    p.add_argument("--ckpt-minutes", type=float, default=10, help="checkpoint, sample grid and export interval")
    p.add_argument("--log-seconds", type=float, default=60)
    p.add_argument("--snapshot-kimg", type=float, default=50,
                   help="also keep the export as G_ema-<kimg>.pt each time this many kimg passed (0: never)")
    p.add_argument("--init-generator", type=Path, default=None,
                   help="start from this export's generator (G and G_ema) with a fresh D and optimisers")
    p.add_argument("--d-warmup-kimg", type=float, default=0,
                   help="train D alone for the run's first this many thousand images, while a fresh D catches up")


def add_model_args(p: argparse.ArgumentParser, lr: float, ema_kimg: float = 5.0) -> None:
    """The network size, learning rate and EMA half-life, with a family's defaults."""
    p.add_argument("--channel-base", type=int, default=1024, help="channels at resolution r: min(base / r, max)")
    p.add_argument("--channel-max", type=int, default=128)
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--ema-kimg", type=float, default=ema_kimg, help="EMA half-life in thousands of images")


def channel_table(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels per resolution from 4x4 up, min(base / res, max): the rule of the StyleGAN2 generator,
    which the other families' generators and the discriminator follow too."""
    res, table = 4, {}
    while res <= resolution:
        table[res] = min(channel_base // res, channel_max)
        res *= 2
    return table


RUN_ONLY_ARGS = ("out", "kimg", "resume", "threads", "device", "minutes", "ckpt_minutes", "log_seconds",
                 "snapshot_kimg")
# Training settings a resumed run takes from its command line when given there (a run that stalls may go
# on with, say, a lower learning rate); the network, data and seed stay what the run was started with.
TUNABLE_ARGS = ("lr", "lr_d", "r1_gamma", "mixing", "pl_weight", "ema_kimg", "gp_weight", "d_warmup_kimg")


def given_args(p: argparse.ArgumentParser, argv: list[str] | None, keys) -> set[str]:
    """Which of the parser's `keys` `argv` names (as opposed to leaving them at their defaults)."""
    unset = object()
    marked = argparse.Namespace(**{key: unset for key in keys})
    return {key for key, value in vars(p.parse_args(argv, namespace=marked)).items() if value is not unset}


def resumed_args(p: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's settings; with --resume, those the run was started with instead, except the
    RUN_ONLY_ARGS and the TUNABLE_ARGS this command line gives. So resuming needs no more than
    `--out DIR --kimg N --resume`, and naming a setting that cannot change is refused."""
    args = p.parse_args(argv)
    path = args.out / CHECKPOINT
    if not (args.resume and path.is_file()):
        return args
    given = given_args(p, argv, vars(args))
    saved = json.loads(torch.load(path, map_location="cpu", weights_only=True)["args"])
    for key, value in saved.items():
        if key in RUN_ONLY_ARGS or not hasattr(args, key):
            continue
        if key not in given:
            setattr(args, key, value)
        elif getattr(args, key) != value:
            if key not in TUNABLE_ARGS:
                p.error(f"--{key.replace('_', '-')} cannot change when a run resumes (the run has {value})")
            print(f"{key}: {value} -> {getattr(args, key)} from here on", flush=True)
    return args


def setup(p: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """The settings of this run (see `resumed_args`), torch's thread count, and the seed that the
    networks' initial weights are drawn from (call before building them)."""
    args = resumed_args(p, argv)
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions
    return args


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """Images [N, 3, H, W] in [-1, 1] as one PNG, `nrow` per row."""
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = torch.full([rows * nrow, c, h, w], -1.0)
    grid[:n] = images.detach().float().cpu().clamp(-1, 1)
    grid = grid.reshape(rows, nrow, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, nrow * w, c)
    arr = ((grid + 1) * 127.5).round().to(torch.uint8).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format="PNG")
    os.replace(tmp, path)


def atomic_save(obj, path: Path) -> None:
    """torch.save through a temporary file: a crash never leaves a half-written checkpoint."""
    tmp = path.with_name(path.name + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """Parameters of `ema` move toward `net` by (1 - beta); buffers (w_avg, magnitudes, noise) are copied."""
    for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
        pe.lerp_(p, 1 - beta)
    for be, b in zip(ema.buffers(), net.buffers(), strict=True):
        be.copy_(b)


def ema_beta(batch: int, images_seen: int, ema_kimg: float, rampup: float | None) -> float:
    """Per-step EMA decay for a half-life of `ema_kimg` thousand images, shortened early on by `rampup`
    (half-life at most rampup x images seen), as the StyleGAN2-ADA paper does."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


def sample_latents(z_dim: int, n: int = 64) -> torch.Tensor:
    return torch.randn([n, z_dim], generator=torch.Generator().manual_seed(SAMPLE_SEED))


def export(trainer, path: Path, progress: Progress) -> None:
    """The EMA generator in our own format (CPU tensors), with how long it trained in its notes (after
    those of the export the run started from, if any)."""
    what = "trained on with a fresh discriminator" if progress.earlier else "trained by latent-explorer"
    notes = [*progress.earlier, f"{what} on DCGAN teacher faces (gan-face-generate 1.1.1): "
             f"{progress.images_seen / 1000:.0f} kimg, {progress.hours_text()}"]
    ckpt = Checkpoint(generator=trainer.g_ema, family=trainer.family, source="latent-explorer-training",
                      format=native.FORMAT, config=trainer.config, network="G_ema", networks=("G_ema",),
                      notes=notes)
    native.save(ckpt, path)


class Progress:
    """Counters a run carries across resumes: steps, images seen and training time, of which how much on a
    GPU (a run may move between devices), and the notes of the export it started from (`--init-generator`)."""

    def __init__(self):
        self.step = 0
        self.images_seen = 0
        self.seconds = 0.0
        self.gpu_seconds = 0.0
        self.earlier: list[str] = []

    def add_time(self, seconds: float, device: torch.device, cpu_seconds: float | None = None) -> None:
        """Count a step of `seconds` wall time. On the CPU no more than the process's CPU time in it
        (`cpu_seconds`), so a trainer paused with SIGSTOP (to measure something beside it) does not count
        the pause."""
        if device.type == "cpu" and cpu_seconds is not None:
            seconds = min(seconds, cpu_seconds)
        self.seconds += seconds
        if device.type != "cpu":
            self.gpu_seconds += seconds

    def hours_text(self) -> str:
        """'2.3 CPU hours', '0.4 GPU hours' or '2.3 CPU hours + 0.4 GPU hours'."""
        cpu, gpu = (self.seconds - self.gpu_seconds) / 3600, self.gpu_seconds / 3600
        parts = [f"{cpu:.1f} CPU hours"] * (cpu > 0 or gpu == 0) + [f"{gpu:.1f} GPU hours"] * (gpu > 0)
        return " + ".join(parts)

    def state_dict(self) -> dict:
        return {"step": self.step, "images_seen": self.images_seen, "seconds": self.seconds,
                "gpu_seconds": self.gpu_seconds, "earlier": self.earlier}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.images_seen = int(state["step"]), int(state["images_seen"])
        self.seconds = float(state["seconds"])
        self.gpu_seconds = float(state.get("gpu_seconds", 0.0))  # runs saved before GPU training was possible
        self.earlier = [str(note) for note in state.get("earlier", [])]


def init_generator(trainer, path: Path, progress: Progress) -> None:
    """Start the run from an export of ours: G and g_ema take its weights (D and the optimisers stay fresh),
    and its notes go before the run's own. Its network must be the one the run's settings build."""
    ckpt = read_checkpoint(path)
    ours = {k: v for k, v in trainer.config.items() if k != "lod"}
    theirs = {k: v for k, v in ckpt.config.items() if k != "lod"}
    if ckpt.family != trainer.family or theirs != ours:
        raise SystemExit(f"{path}: a {ckpt.family} generator with {theirs}, not the {trainer.family} one "
                         f"this run builds ({ours})")
    if ckpt.config.get("lod", 0) != 0:
        raise SystemExit(f"{path}: a generator still growing (lod {ckpt.config['lod']}), not a full-size one")
    state = ckpt.generator.state_dict()
    for net in (trainer.G, trainer.g_ema):
        net.load_state_dict(state)
    progress.earlier = list(ckpt.notes)


def on_cpu(obj):
    """A nested state (dicts, lists, tensors) with every tensor on the CPU: a checkpoint written on a GPU then
    opens with a plain torch.load on a machine without one."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_cpu(v) for v in obj)
    return obj


def save_checkpoint(out: Path, trainer, progress: Progress, stream: FaceStream, args: dict) -> None:
    atomic_save({
        "trainer": on_cpu(trainer.state_dict()),
        "progress": progress.state_dict(),
        "stream": stream.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "args": json.dumps(args),
    }, out / CHECKPOINT)


def load_checkpoint(out: Path, trainer, progress: Progress, stream: FaceStream) -> dict:
    """Restore a run in place; returns the arguments it was started with."""
    state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    trainer.load_state_dict(state["trainer"])
    progress.load_state_dict(state["progress"])
    stream.load_state_dict(state["stream"])
    torch.set_rng_state(state["torch_rng"])
    return json.loads(state["args"])


def run(trainer, args: argparse.Namespace, stream: FaceStream | None = None) -> Progress:
    """Train until `args.kimg` thousand images were seen (or `args.minutes` passed), checkpointing every
    `args.ckpt_minutes` (and at the end): `checkpoint.pt`, `samples.png` (latest) + `samples-<kimg>.png`,
    `G_ema.pt` (native format) and a line per log interval in `log.jsonl`. The first checkpoint after each
    `args.snapshot_kimg` also keeps its export as `G_ema-<kimg>.pt`: a GAN's quality does not only
    rise with training, so the best one is picked by its SWD afterwards."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    trainer.to(device)  # before a resume, so the optimisers' restored state lands beside the weights
    stream = stream or FaceStream(args.batch, seed=args.seed, resolution=args.resolution, device=device)
    progress = Progress()
    run_args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    if args.resume and (out / CHECKPOINT).is_file():
        load_checkpoint(out, trainer, progress, stream)
        print(f"resumed at {progress.images_seen / 1000:.1f} kimg, step {progress.step}", flush=True)
    elif args.init_generator is not None:
        init_generator(trainer, args.init_generator, progress)
    if args.init_generator is not None:
        trainer.ema_rampup = None  # g_ema starts trained: no short half-life while the run is young
    warmup = int(args.d_warmup_kimg * 1000)
    z_fixed = sample_latents(trainer.g_ema.z_dim).to(device)
    snapshot_images = int(args.snapshot_kimg * 1000)
    snapshots_passed = progress.images_seen // snapshot_images if snapshot_images > 0 else 0

    def checkpoint() -> None:
        nonlocal snapshots_passed
        save_checkpoint(out, trainer, progress, stream, run_args)
        with torch.no_grad():
            img = trainer.sample(z_fixed)
        kimg = progress.images_seen // 1000
        save_grid(img, out / "samples.png")
        save_grid(img, out / f"samples-{kimg:06d}.png")
        export(trainer, out / "G_ema.pt", progress)
        if snapshot_images > 0 and progress.images_seen // snapshot_images > snapshots_passed:
            snapshots_passed = progress.images_seen // snapshot_images
            export(trainer, out / f"G_ema-{kimg:06d}.pt", progress)

    target = int(args.kimg * 1000)
    last_log = last_ckpt = time.time()
    deadline = last_log + args.minutes * 60 if args.minutes is not None else float("inf")
    window: dict[str, list[float]] = {}
    window_start, window_images = time.time(), 0
    while progress.images_seen < target and time.time() < deadline:
        t0, cpu0 = time.time(), time.process_time()
        reals = stream.next()
        trainer.g_held = progress.images_seen < warmup
        stats = trainer.step(reals, progress.images_seen)  # its .item() calls wait for the GPU
        progress.step += 1
        progress.images_seen += reals.shape[0]
        progress.add_time(time.time() - t0, device, time.process_time() - cpu0)
        window_images += reals.shape[0]
        for k, v in stats.items():
            window.setdefault(k, []).append(v)
        now = time.time()
        if now - last_log >= args.log_seconds or progress.images_seen >= target:
            line = {"kimg": round(progress.images_seen / 1000, 3), "step": progress.step,
                    "img_per_s": round(window_images / (now - window_start), 2),
                    "hours": round(progress.seconds / 3600, 3),
                    **{k: round(sum(v) / len(v), 4) for k, v in window.items()}}
            print(json.dumps(line), flush=True)
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")
            window, window_start, window_images, last_log = {}, now, 0, now
        if now - last_ckpt >= args.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    checkpoint()
    return progress
