"""Semantic directions in W, found without labels, for sliders and direction sheets.

Two finders, each a cancellable job with progress:

- PCA in W (GANSpace, Härkönen et al. 2020): the principal axes of many mapped samples, ranked by
  the variance of w along them.
- Closed-form factorisation (SeFa, Shen & Zhou 2021): the directions a chosen range of layers' style
  affines stretch most, the top eigenvectors of A^T A with A the stacked affine weights [outputs, w_dim],
  each output's weight vector normalised to unit length (the paper's column normalisation: its
  weights are stored transposed).

Every direction comes with its spread σ, the standard deviation of untruncated w along it, so a
slider can run over ±3σ whatever the model. Sampling W is the only slow part; its moments are
cached per model file (content hash, network and sampling parameters) in the user's cache folder or
$EXPLORER_CACHE_DIR. Directions from elsewhere (InterFaceGAN boundaries, saved GANSpace components)
load with `load_direction`; edits are applied to a request by `render.apply_edits`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .default_model import cache_dir as user_cache_dir
from .grid import draw_label, save_png, synthesize_batches
from .model import Model
from .render import DirectionEdit, RenderRequest, request_ws
from .video import Progress, ProgressMeter, partial_path

METHODS = ("pca", "sefa")
CACHE_ENV = "EXPLORER_CACHE_DIR"  # overrides where cached W statistics live (tests use a temp dir)
CACHE_VERSION = 1                 # bump when what the cache holds changes meaning
SHEET_EXTENT = 3.0                # a direction sheet runs from -3σ to +3σ
SHEET_STEPS = tuple(np.linspace(-SHEET_EXTENT, SHEET_EXTENT, 7).tolist())  # its columns, in σ


@dataclass(frozen=True)
class WStats:
    """Mean and covariance of untruncated w over seeded samples: what PCA and every σ derive from."""

    mean: np.ndarray   # [w_dim] float64
    cov: np.ndarray    # [w_dim, w_dim] float64, unbiased
    samples: int
    seed: int


@dataclass(frozen=True)
class Directions:
    """Ranked unit directions in W with how much each matters; strongest first."""

    method: str                # 'pca' or 'sefa'
    vectors: np.ndarray        # [K, w_dim] float64, orthonormal rows
    values: np.ndarray         # [K] variance of w along each (PCA) or eigenvalue of A^T A (SeFa)
    total: float               # sum of all eigenvalues, also those left out by `top`
    sigma: np.ndarray          # [K] standard deviation of untruncated w along each: the slider's unit
    layers: tuple[int, ...]    # the ws they belong to: SeFa's factorised layers; PCA: all
    samples: int               # mapped samples behind the statistics
    seed: int                  # their seed

    @property
    def explained(self) -> np.ndarray:
        """[K] each direction's share of the total: explained variance (PCA) or of the eigenvalue sum (SeFa)."""
        return self.values / self.total if self.total > 0 else np.zeros_like(self.values)

    def name(self, i: int) -> str:
        """The default name of direction i ('PC0', 'SeFa0', ...), until a user gives it a better one."""
        return f"{'PC' if self.method == 'pca' else 'SeFa'}{i}"

    def top(self, k: int) -> Directions:
        """The k strongest directions (all if fewer)."""
        return dataclasses.replace(self, vectors=self.vectors[:k], values=self.values[:k], sigma=self.sigma[:k])

    def edit(self, i: int, sigmas: float, layers: Sequence[int] | None = None) -> DirectionEdit:
        """The request edit of a slider at `sigmas` σ along direction i.

        Args:
            i: which direction.
            sigmas: the slider's position in units of the direction's σ.
            layers: the ws it moves (None: `self.layers`).

        Returns:
            A `DirectionEdit` for `RenderRequest.edits`, amount in W units.
        """
        layers = list(self.layers if layers is None else sorted(set(layers)))
        return DirectionEdit(direction=self.vectors[i].tolist(), amount=float(sigmas * self.sigma[i]),
                             layers=layers, name=self.name(i))


# ---------------------------------------------------------------------------------------------------
# Cache.


def cache_dir() -> Path:
    """Where cached W statistics live: $EXPLORER_CACHE_DIR, else the program's user cache folder."""
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir() / "directions")


_file_hashes: dict[tuple[str, int, int], str] = {}


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's content, remembered per (path, size, mtime) so a big checkpoint is read once."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _file_hashes:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _file_hashes[key] = digest.hexdigest()
    return _file_hashes[key]


def _cache_path(model: Model, method: str, params: dict) -> Path | None:
    """The cache file of a result, or None for a model that was not loaded from a file."""
    source = Path(model.info.path)
    if not source.is_file():
        return None
    key = {"file": file_hash(source), "network": model.info.network, "resolution": model.info.resolution,
           "method": method, "params": params, "version": CACHE_VERSION}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / f"{method}-{digest}.npz"


def _read_cache(path: Path | None) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or None if it is missing or unreadable (then it is recomputed)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return None


def _write_cache(path: Path | None, arrays: dict[str, np.ndarray]) -> None:
    """Write a cache file under a temporary name, then rename; a cache that cannot be written only warns."""
    if path is None:
        return
    tmp = partial_path(path, ".npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"cannot write the directions cache {path}: {e}", stacklevel=3)


# ---------------------------------------------------------------------------------------------------
# Statistics of W and the two finders.


def w_statistics(
    model: Model,
    samples: int = 10_000,
    seed: int = 0,
    batch_size: int = 1000,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> WStats | None:
    """Mean and covariance of untruncated w over `samples` seeded latents, from the cache when there.

    z is drawn from `np.random.RandomState(seed)` (and classes of a conditional model, uniformly,
    from a second stream), so the result does not depend on `batch_size`. Sums run in float64 about
    `w_avg`, which keeps the covariance accurate however far w sits from the origin.

    Args:
        model: the generator.
        samples: latents to map (at least 2).
        seed: seed of the latents.
        batch_size: latents per mapping call.
        progress: called after every batch with the samples done so far (once, complete, on a cache hit).
        cancel: stop before the next batch once set.

    Returns:
        The statistics, or None if cancelled.
    """
    if samples < 2:
        raise ValueError(f"W statistics need at least 2 samples, not {samples}")
    info = model.info
    meter = ProgressMeter(samples, progress)
    path = _cache_path(model, "w-stats", {"samples": samples, "seed": seed})
    cached = _read_cache(path)
    if cached is not None and cached["cov"].shape == (info.w_dim, info.w_dim):
        meter.update(samples)
        return WStats(mean=cached["mean"], cov=cached["cov"], samples=samples, seed=seed)

    z_rng, c_rng = np.random.RandomState(seed), np.random.RandomState([seed, 1])
    shift = model.w_avg.detach().to(device="cpu", dtype=torch.float64)  # [W]
    s1 = torch.zeros(info.w_dim, dtype=torch.float64)                  # [W] sum of w - shift
    s2 = torch.zeros(info.w_dim, info.w_dim, dtype=torch.float64)      # [WW] sum of outer products
    for start in range(0, samples, batch_size):
        if cancel is not None and cancel.is_set():
            return None
        n = min(batch_size, samples - start)
        z = z_rng.standard_normal((n, info.z_dim)).astype(np.float32)
        c = np.eye(info.c_dim, dtype=np.float32)[c_rng.randint(info.c_dim, size=n)] if info.c_dim else None
        w = model.map(z, c)[:, 0].to(device="cpu", dtype=torch.float64) - shift  # [NW]
        s1 += w.sum(0)
        s2 += w.T @ w
        meter.update(start + n)

    # Moments about the shift, then the mean back in place.
    mean = s1 / samples
    cov = (s2 - samples * torch.outer(mean, mean)) / (samples - 1)
    stats = WStats(mean=(mean + shift).numpy(), cov=cov.numpy(), samples=samples, seed=seed)
    _write_cache(path, {"mean": stats.mean, "cov": stats.cov})
    return stats


def _eigen(matrix: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, >= 0) and unit eigenvectors as rows of a symmetric float64 matrix.

    Signs are fixed (the largest component of each vector is positive) so a direction and its
    slider mean the same on every run and machine.
    """
    values, vectors = torch.linalg.eigh(matrix)  # ascending; vectors in columns
    values, vectors = values.flip(0).clamp_min(0), vectors.flip(1).T  # [K], [KW]
    peak = vectors.abs().argmax(dim=1, keepdim=True)
    vectors = vectors * vectors.gather(1, peak).sign()
    return values.numpy(), vectors.numpy()


def direction_sigma(vector, stats: WStats) -> float:
    """The spread of untruncated w along a direction, in the direction's own units.

    A move of `amount` adds amount * vector to the edited ws; one σ is the amount that moves them by
    one standard deviation of w along the vector. For a per-layer direction V [num_ws, w_dim], W+
    holds the same w in every row, so w's projection onto V is w · Σ_l V_l.

    Args:
        vector: [w_dim] or [num_ws, w_dim].
        stats: from `w_statistics`.

    Returns:
        σ in units of `vector` (0 for a zero vector).
    """
    v = np.asarray(vector, dtype=np.float64)
    u = v.reshape(-1, v.shape[-1]).sum(0)  # [W]
    norm2 = float((v * v).sum())
    return float(np.sqrt(max(u @ stats.cov @ u, 0.0)) / norm2) if norm2 > 0 else 0.0


def pca_directions(
    model: Model,
    samples: int = 10_000,
    seed: int = 0,
    batch_size: int = 1000,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Directions | None:
    """GANSpace: the principal axes of w over seeded samples, ranked by explained variance.

    Args:
        model: the generator (any family; a ProGAN's "w" is its normalised z).
        samples: latents to map; the first few hundred directions need many more than w_dim.
        seed: seed of the latents.
        batch_size: latents per mapping call.
        progress: called after every batch (see `w_statistics`).
        cancel: stop before the next batch once set.

    Returns:
        All w_dim directions (orthonormal, variance descending, σ = √variance), or None if cancelled.
    """
    stats = w_statistics(model, samples, seed, batch_size, progress, cancel)
    if stats is None:
        return None
    values, vectors = _eigen(torch.from_numpy(stats.cov))
    return Directions(method="pca", vectors=vectors, values=values, total=float(values.sum()),
                      sigma=np.sqrt(values), layers=tuple(range(model.info.num_ws)),
                      samples=samples, seed=seed)


def style_affines(model: Model) -> list[tuple[int, str, nn.Module]]:
    """Every style affine of the synthesis network with the ws index that feeds it.

    StyleGAN: two layers per block, ws 2i and 2i+1. StyleGAN2: a block's convs take consecutive ws
    and its toRGB the next one, which the next block's first conv shares. StyleGAN3: ws 0 drives
    the Fourier input's transform, ws k+1 layer k.

    Args:
        model: the generator.

    Returns:
        [(ws index, module name under `synthesis`, affine with `.weight` [out, w_dim])], in ws order.
    """
    syn, family = model.generator.synthesis, model.info.family
    found: list[tuple[int, str, nn.Module]] = []
    if family == "stylegan1":
        for i, block in enumerate(syn.blocks):
            found += [(2 * i + j, f"b{block.resolution}.{name}.affine", getattr(block, name).affine)
                      for j, name in enumerate(("conv0", "conv1"))]
    elif family == "stylegan2":
        w_idx = 0
        for block in syn.blocks:
            convs = [name for name in ("conv0", "conv1") if hasattr(block, name)]
            found += [(w_idx + j, f"b{block.resolution}.{name}.affine", getattr(block, name).affine)
                      for j, name in enumerate(convs)]
            if hasattr(block, "torgb"):
                found.append((w_idx + len(convs), f"b{block.resolution}.torgb.affine", block.torgb.affine))
            w_idx += len(convs)
    elif family.startswith("stylegan3"):
        found.append((0, "input.affine", syn.input.affine))
        found += [(k + 1, f"{name}.affine", getattr(syn, name).affine) for k, name in enumerate(syn.layer_names)]
    else:
        raise ValueError(f"a {family} model has no style affines for closed-form factorisation: use PCA")
    return sorted(found, key=lambda item: item[0])


def sefa_directions(
    model: Model,
    layers: Sequence[int] | None = None,
    samples: int = 10_000,
    seed: int = 0,
    batch_size: int = 1000,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Directions | None:
    """SeFa: the eigenvectors of A^T A, A the stacked style-affine weights that read the chosen ws.

    Each affine output's weight row is normalised to unit length (the paper's normalisation), so
    every style channel counts alike whatever its scale; all-zero rows (an untrained StyleGAN3 input
    affine) are left out. The eigen-decomposition itself takes milliseconds; σ comes from the
    (cached) W statistics.

    Args:
        model: a StyleGAN, StyleGAN2 or StyleGAN3 generator.
        layers: the ws indices whose affines to factorise (None = all); edits built from the result
            move these ws.
        samples: latents behind σ (see `w_statistics`).
        seed: seed of the latents.
        batch_size: latents per mapping call.
        progress: called after every batch of the statistics.
        cancel: stop before the next batch once set.

    Returns:
        All w_dim directions (orthonormal, eigenvalue descending), or None if cancelled.
    """
    num_ws = model.info.num_ws
    layers = sorted(set(range(num_ws) if layers is None else layers))
    bad = [i for i in layers if not 0 <= i < num_ws]
    if bad or not layers:
        raise ValueError(f"SeFa layers must be a non-empty set of ws in 0..{num_ws - 1}, got {layers}")
    chosen = [affine.weight for i, _, affine in style_affines(model) if i in layers]

    # Stack, normalise each output's row, factorise.
    a = torch.cat([w.detach().to(device="cpu", dtype=torch.float64) for w in chosen])  # [OW]
    norms = a.norm(dim=1, keepdim=True)  # [O1]
    a = a[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
    if not len(a):
        raise ValueError(f"the style affines of ws {layers} are all zero: nothing to factorise")
    values, vectors = _eigen(a.T @ a)  # [W], [WW]

    stats = w_statistics(model, samples, seed, batch_size, progress, cancel)
    if stats is None:
        return None
    sigma = np.sqrt(np.maximum(np.einsum("kw,wv,kv->k", vectors, stats.cov, vectors), 0))
    return Directions(method="sefa", vectors=vectors, values=values, total=float(values.sum()), sigma=sigma,
                      layers=tuple(layers), samples=samples, seed=seed)


def find_directions(model: Model, method: str, **kwargs) -> Directions | None:
    """`pca_directions` or `sefa_directions` by name ('pca', 'sefa'), for menus and the CLI."""
    if method == "pca":
        return pca_directions(model, **kwargs)
    if method == "sefa":
        return sefa_directions(model, **kwargs)
    raise ValueError(f"unknown direction method {method!r}: use one of {', '.join(METHODS)}")


# ---------------------------------------------------------------------------------------------------
# Directions from files.


def load_direction(path: str | Path, num_ws: int, w_dim: int) -> np.ndarray:
    """Read one direction in W from a .npy or .pt file (e.g. an InterFaceGAN boundary).

    A .pt file is read with `torch.load(weights_only=True)` and must hold a single tensor. The
    [1, w_dim] shape InterFaceGAN writes is taken as [w_dim].

    Args:
        path: the file.
        num_ws: the model's ws count.
        w_dim: the model's w size.

    Returns:
        float64 [w_dim] (all layers) or [num_ws, w_dim] (one row per ws).

    Raises:
        ValueError: unreadable file, not one tensor, wrong shape, or values that are not finite.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif suffix in (".pt", ".pth"):
            data = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(data, torch.Tensor):
                raise ValueError(f"it holds a {type(data).__name__}, not a single tensor")
            data = data.detach().to(torch.float64).numpy()
        else:
            raise ValueError("use a .npy, .pt or .pth file")
    except (OSError, ValueError, RuntimeError, EOFError) as e:
        raise ValueError(f"{path}: cannot read a direction ({e})") from None
    vector = np.asarray(data, dtype=np.float64)
    if vector.shape == (1, w_dim):
        vector = vector[0]
    if vector.shape not in ((w_dim,), (num_ws, w_dim)):
        raise ValueError(f"{path}: a direction of shape {list(vector.shape)} does not fit this model, "
                         f"which takes [{w_dim}] (all layers) or [{num_ws}, {w_dim}] (one row per ws)")
    if not np.isfinite(vector).all():
        raise ValueError(f"{path}: the direction holds values that are not finite")
    return vector


# ---------------------------------------------------------------------------------------------------
# Direction sheets.


def sheet_request(base: RenderRequest, seed: int, edit: DirectionEdit) -> RenderRequest:
    """The request of one sheet cell: `base` on one seed with `edit` added after its own edits."""
    return dataclasses.replace(base, seeds=[(int(seed), 1.0)], edits=[*base.edits, edit])


@dataclass
class DirectionSheet:
    """The pictures of a direction sheet: each direction moved from -3σ to +3σ on a few seeds."""

    names: list[str]
    seeds: list[int]
    steps: list[float]       # σ multiples of the columns
    cells: np.ndarray        # uint8 [K, S, T, H, W, 3]: direction k on seed s at step t

    def compose(self, labels: bool = False) -> np.ndarray:
        """One picture: a row per (direction, seed), directions in blocks; a column per step.

        Args:
            labels: write direction and seed left of the rows and the steps above the columns.

        Returns:
            uint8 [H', W', 3].
        """
        k, s, t, h, w, _ = self.cells.shape
        image = self.cells.reshape(k * s, t, h, w, 3).transpose(0, 2, 1, 3, 4).reshape(k * s * h, t * w, 3)
        if not labels:
            return image
        rows = [f"{name} seed {seed}" for name in self.names for seed in self.seeds]
        cols = [f"{step:+g} sd" if step else "0" for step in self.steps]  # the default font has no σ
        return draw_label(image, rows, cols, h, w, sources=False)


def direction_sheet(
    model: Model,
    directions: Directions,
    seeds: Sequence[int],
    top: int = 5,
    steps: Sequence[float] = SHEET_STEPS,
    layers: Sequence[int] | None = None,
    base: RenderRequest | None = None,
    batch_size: int = 8,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> DirectionSheet | None:
    """Render a direction sheet (as GANSpace's figures) in batches, on the calling thread.

    Cell (k, s, t) is what `render` draws for `sheet_request(base, seed, directions.edit(k, step))`, up to
    float rounding (a batch may run other kernels than one image alone).

    Args:
        model: the generator.
        directions: from `pca_directions`, `sefa_directions` (or any `Directions`).
        seeds: a row of images per seed, for every direction.
        top: how many directions, strongest first.
        steps: the columns, in units of each direction's σ.
        layers: the ws the directions move (None: the directions' own layers).
        base: psi, noise, mixing, class, transform and edits of every picture (its seeds are replaced).
        batch_size: images per synthesis call.
        progress: called after every batch with the images done so far.
        cancel: stop before the next batch once set.

    Returns:
        The sheet, or None if cancelled.
    """
    base = base or RenderRequest()
    seeds, steps = [int(s) for s in seeds], [float(t) for t in steps]
    directions = directions.top(top)
    k = len(directions.values)
    if not seeds or not steps or k == 0:
        raise ValueError("a direction sheet needs at least one seed, one step and one direction")

    # Latents of every cell, through the request path `render` takes.
    requests = [sheet_request(base, seed, directions.edit(i, step, layers))
                for i in range(k) for seed in seeds for step in steps]
    requests[0].validate(model)
    ws = torch.cat([request_ws(model, r) for r in requests])  # [NLW]

    images = synthesize_batches(model, ws, base, batch_size, progress, cancel)  # [NHW3]
    if images is None:
        return None
    cells = images.reshape(k, len(seeds), len(steps), *images.shape[1:])
    return DirectionSheet(names=[directions.name(i) for i in range(k)], seeds=seeds, steps=steps, cells=cells)


# ---------------------------------------------------------------------------------------------------
# Jobs for the GUI's directions panel.


def file_direction(
    model: Model,
    path: str | Path,
    samples: int = 10_000,
    seed: int = 0,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[np.ndarray, float] | None:
    """A direction from a file (`load_direction`) with its σ (`direction_sigma`), for a slider.

    Args:
        model: the generator the direction must fit.
        path: a .npy, .pt or .pth file.
        samples: latents behind σ (cached; see `w_statistics`).
        seed: their seed.
        progress: called after every batch of the statistics.
        cancel: stop before the next batch once set.

    Returns:
        (direction [w_dim] or [num_ws, w_dim], σ), or None if cancelled.
    """
    vector = load_direction(path, model.info.num_ws, model.info.w_dim)
    stats = w_statistics(model, samples, seed, progress=progress, cancel=cancel)
    if stats is None:
        return None
    return vector, direction_sigma(vector, stats)


def save_direction_sheet(
    model: Model,
    directions: Directions,
    path: str | Path,
    seeds: Sequence[int],
    top: int = 5,
    layers: Sequence[int] | None = None,
    base: RenderRequest | None = None,
    labels: bool = True,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Path | None:
    """Render a direction sheet (`direction_sheet`) and write it as a PNG (no half file on cancel).

    Returns:
        The path written, or None if cancelled.
    """
    sheet = direction_sheet(model, directions, seeds, top=top, layers=layers, base=base,
                            progress=progress, cancel=cancel)
    if sheet is None:
        return None
    return save_png(sheet.compose(labels=labels), path)
