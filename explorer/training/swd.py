"""Multi-scale sliced Wasserstein distance (SWD), the quality figure of the ProGAN paper
(Karras et al. 2018, appendix D), implemented from its description.

Each image is split into a Laplacian pyramid down to 16x16. From every level, 128 random 7x7
neighbourhoods per image are taken as 147-dimensional descriptors; each set's descriptors are
normalised per colour channel (its own mean and standard deviation). The distance between the two
sets at a level is the sliced Wasserstein distance: project both onto random unit directions
(128 per repeat, 4 repeats), sort, and average the absolute differences. Values are reported x1e3,
as in the paper; lower is better. The finest level (64 at 64x64) measures fine detail, the coarsest
(16) overall shape and colour layout.

Run `python -m explorer.training.swd --help` for teacher-vs-teacher and model-vs-teacher figures.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.cpu_heap import keep_freed_memory

PATCH = 7
DESCRIPTORS_PER_IMAGE = 128
DIRS_PER_REPEAT = 128
REPEATS = 4
MIN_RESOLUTION = 16
# Images per synthesis call. A StyleGAN3-R batch of 100 peaks at 3.2 GB, past the 2 GB that the
# kept heap holds (cpu_heap), so every batch faulted its pages in again: as much kernel time as
# arithmetic. 25 peak at 1 GB. The z and patches are drawn per batch as before, so the figures of
# noise-free models (ProGAN, StyleGAN3) do not change.
SYNTHESIS_CHUNK = 25
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur(x: torch.Tensor) -> torch.Tensor:
    """5x5 binomial (Gaussian-like) low-pass with reflected borders, per channel."""
    k = (_BINOMIAL[:, None] * _BINOMIAL[None, :]).to(x)
    k = k.expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, [2, 2, 2, 2], mode="reflect"), k, groups=x.shape[1])


def _down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def _up(x: torch.Tensor) -> torch.Tensor:
    y = torch.zeros([*x.shape[:2], x.shape[2] * 2, x.shape[3] * 2], dtype=x.dtype, device=x.device)
    y[:, :, ::2, ::2] = x
    return _blur(y) * 4  # the zeros take three quarters of the energy


def laplacian_pyramid(img: torch.Tensor, min_resolution: int = MIN_RESOLUTION) -> list[torch.Tensor]:
    """Band-pass levels from full resolution down, the last being the low-pass `min_resolution` image."""
    levels = []
    while img.shape[-1] > min_resolution:
        small = _down(img)
        levels.append(img - _up(small))
        img = small
    levels.append(img)
    return levels


def _patches(level: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """`count` random PATCHxPATCH neighbourhoods per image: [N*count, C, PATCH, PATCH]."""
    n, c, h, w = level.shape
    ys = torch.randint(0, h - PATCH + 1, [n, count, 1, 1, 1], generator=gen)
    xs = torch.randint(0, w - PATCH + 1, [n, count, 1, 1, 1], generator=gen)
    off = torch.arange(PATCH)
    rows = ys + off.reshape(1, 1, 1, PATCH, 1)
    cols = xs + off.reshape(1, 1, 1, 1, PATCH)
    ni = torch.arange(n).reshape(n, 1, 1, 1, 1)
    ci = torch.arange(c).reshape(1, 1, c, 1, 1)
    return level[ni, ci, rows, cols].reshape(n * count, c, PATCH, PATCH)


class Descriptors:
    """The descriptors of one image set, gathered batch by batch (images in [-1, 1], [N, 3, H, W])."""

    def __init__(self, seed: int = 0, per_image: int = DESCRIPTORS_PER_IMAGE):
        self.gen = torch.Generator().manual_seed(seed)
        self.per_image = per_image
        self.levels: list[list[torch.Tensor]] = []
        self.resolutions: list[int] = []
        self.num_images = 0

    def add(self, images: torch.Tensor) -> None:
        pyramid = laplacian_pyramid(images.detach().to("cpu", torch.float32))
        if not self.levels:
            self.levels = [[] for _ in pyramid]
            self.resolutions = [lvl.shape[-1] for lvl in pyramid]
        for store, lvl in zip(self.levels, pyramid, strict=True):
            store.append(_patches(lvl, self.per_image, self.gen).half())  # half: 10k images fit in memory
        self.num_images += images.shape[0]

    def finalize(self, level: int) -> torch.Tensor:
        """One level's [M, C*PATCH*PATCH] descriptors, normalised per colour channel (one level at a
        time: at 10k images a level is 0.75 GB in float32)."""
        d = torch.cat(self.levels[level]).float()  # [M, C, P, P]
        mean = d.mean(dim=(0, 2, 3), keepdim=True)
        std = d.std(dim=(0, 2, 3), keepdim=True)
        return d.sub_(mean).div_(std).reshape(d.shape[0], -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, gen: torch.Generator,
                       dirs_per_repeat: int = DIRS_PER_REPEAT, repeats: int = REPEATS, chunk: int = 32) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance between the projections
    of the equally sized descriptor sets `a` and `b` ([M, D])."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    total = 0.0
    for _ in range(repeats):
        dirs = torch.randn([a.shape[1], dirs_per_repeat], generator=gen)
        dirs /= dirs.norm(dim=0, keepdim=True)
        for d in dirs.t().split(chunk):  # chunks keep the sort's memory small
            # numpy's sort: many times faster than torch.sort on the CPU, which also builds indices.
            pa = np.sort((d @ a.t()).numpy(), axis=1)
            pb = np.sort((d @ b.t()).numpy(), axis=1)
            total += float(np.abs(pa - pb).mean(axis=1).sum())
    return total / (repeats * dirs_per_repeat)


def swd(a: Descriptors, b: Descriptors, seed: int = 0) -> dict[str, float]:
    """SWD x1e3 per pyramid level ('swd64', 'swd32', 'swd16' at 64x64) and their mean ('swd_avg')."""
    if a.num_images != b.num_images or a.resolutions != b.resolutions:
        raise ValueError("both sets need the same number of images at the same resolution")
    gen = torch.Generator().manual_seed(seed)
    result = {}
    for level, res in enumerate(a.resolutions):
        result[f"swd{res}"] = 1e3 * sliced_wasserstein(a.finalize(level), b.finalize(level), gen)
    result["swd_avg"] = sum(result.values()) / len(result)
    return result


def collect(batches: Iterable[torch.Tensor], num_images: int, seed: int = 0,
            progress: Callable[[int], None] | None = None) -> Descriptors:
    """Descriptors of the first `num_images` images of an iterable of batches."""
    desc = Descriptors(seed=seed)
    for batch in batches:
        batch = batch[: num_images - desc.num_images]
        desc.add(batch)
        if progress:
            progress(desc.num_images)
        if desc.num_images >= num_images:
            return desc
    raise ValueError(f"only {desc.num_images} images, wanted {num_images}")


def generator_batches(path: str, batch_size: int = 100, seed: int = 0, truncation_psi: float = 1.0):
    """Endless batches from a checkpoint (any format `load_model` reads), z from torch seed `seed`."""
    from ..engine import load_model

    model = load_model(path, device="cpu")
    gen = torch.Generator().manual_seed(seed)
    # Every synthesis call draws fresh noise (a fixed noise seed would repeat it every chunk).
    noise_seeds = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        while True:
            z = torch.randn([batch_size, model.info.z_dim], generator=gen)
            ws = model.map(z, truncation_psi=truncation_psi)
            yield torch.cat([model.synthesize(w, noise_mode="random",
                                              noise_seed=int(torch.randint(2**62, [], generator=noise_seeds)))
                             for w in ws.split(SYNTHESIS_CHUNK)]).clamp(-1, 1)


def main(argv: list[str] | None = None) -> None:
    from .teacher import FaceStream, load_teacher

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", help="checkpoint to measure against the teacher; none = teacher vs teacher")
    p.add_argument("--num", type=int, default=10_000, help="images per set")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--seed", type=int, default=0,
                   help="draw other image sets and projections (0 = the published figures); figures for several "
                        "seeds show how far apart two measurements of the same model fall")
    args = p.parse_args(argv)
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.time()

    def progress(n: int) -> None:
        if n % (10 * args.batch) == 0 or n == args.num:
            print(f"  {n}/{args.num} images, {time.time() - t0:.0f} s", flush=True)

    teacher = load_teacher()
    # The teacher set uses stream seed 2k+1; the other set (model or baseline teacher set) 2k+2: disjoint draws.
    real_seed, other_seed = 2 * args.seed + 1, 2 * args.seed + 2
    if args.model:
        other_images, what = generator_batches(args.model, args.batch, seed=args.seed), args.model
    else:
        other_images, what = FaceStream(args.batch, seed=other_seed, teacher=teacher), "teacher (disjoint set)"
    real = collect(FaceStream(args.batch, seed=real_seed, teacher=teacher), args.num, seed=real_seed,
                   progress=progress)
    other = collect(other_images, args.num, seed=other_seed, progress=progress)
    result = swd(real, other, seed=args.seed)
    result.update(num_images=args.num, seed=args.seed, seconds=round(time.time() - t0, 1))
    print(f"SWD x1e3, {what} vs teacher, {args.num} images each: "
          + ", ".join(f"{k} {v:.2f}" for k, v in result.items() if k.startswith("swd")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, **{k: (round(v, 3) if isinstance(v, float) and not math.isnan(v) else v)
                                               for k, v in result.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
