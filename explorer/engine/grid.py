"""Style-mixing grids, as in the StyleGAN paper: row seeds x column seeds, chosen layers swapped.

Cell (i, j) is row seed i with the ws of `layers` taken from column seed j: exactly what `render`
draws for `cell_request(base, row, col, layers)`, so a cell clicked in the GUI opens as the same
picture. The source images (the seeds unmixed) head the rows and columns.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .model import Model, ModelInfo
from .render import RenderRequest, frames_to_uint8, request_ws, synthesize_request
from .video import Progress, ProgressMeter, partial_path

PRESETS = ("coarse", "middle", "fine")


def layer_presets(ws_resolutions: Sequence[int]) -> dict[str, list[int]]:
    """The coarse / middle / fine ws indices of a model, from the resolution each ws drives.

    As the StyleGAN paper: coarse below 16 px (4-8: pose, face shape), middle 16-32 px (features,
    hair style), fine 64 px and up (colours, micro-structure). A model without all three bands (a
    small one, or StyleGAN3, whose layers run at 16 px and up) has its distinct resolutions split
    into three groups, lowest first; with fewer than three resolutions, its ws indices are split.

    Args:
        ws_resolutions: `model.info.ws_resolutions`.

    Returns:
        {'coarse': [...], 'middle': [...], 'fine': [...]}, each a non-empty list of ws indices.
    """
    res = list(ws_resolutions)
    if len(res) < 3:
        raise ValueError(f"style mixing needs a model with several ws; this one has {len(res)}")
    bands = {
        "coarse": [i for i, r in enumerate(res) if r < 16],
        "middle": [i for i, r in enumerate(res) if 16 <= r < 64],
        "fine": [i for i, r in enumerate(res) if r >= 64],
    }
    if all(bands.values()):
        return bands
    levels = sorted(set(res))
    if len(levels) >= 3:
        groups = [set(g.tolist()) for g in np.array_split(np.array(levels), 3)]
        return {name: [i for i, r in enumerate(res) if r in g] for name, g in zip(PRESETS, groups, strict=True)}
    groups = np.array_split(np.arange(len(res)), 3)
    return {name: g.tolist() for name, g in zip(PRESETS, groups, strict=True)}


def parse_layers(text: str, info: ModelInfo) -> list[int]:
    """'coarse', 'fine', 'all', '0-3,6' or combinations ('coarse,8') -> sorted ws indices.

    Args:
        text: comma-separated preset names, indices and ranges.
        info: the model's info (num_ws and ws_resolutions).

    Returns:
        Sorted, unique ws indices.
    """
    layers: set[int] = set()
    presets = None
    for part in (p.strip() for p in text.split(",")):
        if part in PRESETS:
            presets = presets or layer_presets(info.ws_resolutions)
            layers.update(presets[part])
        elif part == "all":
            layers.update(range(info.num_ws))
        else:
            lo, sep, hi = part.partition("-")
            try:
                first, last = int(lo), int(hi) if sep else int(lo)
            except ValueError:
                raise ValueError(f"not a layer list: {text!r} (use coarse, middle, fine, all or e.g. 0-3,6)") from None
            if not 0 <= first <= last < info.num_ws:
                raise ValueError(f"layers {part} are outside 0..{info.num_ws - 1}")
            layers.update(range(first, last + 1))
    return sorted(layers)


def cell_request(base: RenderRequest, row_seed: int, col_seed: int, layers: Sequence[int]) -> RenderRequest:
    """The request of one grid cell: `base` with the row seed, mixing `layers` from the column seed."""
    return dataclasses.replace(base, seeds=[(int(row_seed), 1.0)], mix_seed=int(col_seed), mix_layers=list(layers))


@dataclass
class MixingGrid:
    """The pictures of a style-mixing grid, for a live grid view or `compose` into one image."""

    row_seeds: list[int]
    col_seeds: list[int]
    layers: list[int]
    row_images: np.ndarray   # uint8 [R, H, W, 3]: the row seeds, unmixed
    col_images: np.ndarray   # uint8 [C, H, W, 3]: the column seeds, unmixed
    cells: np.ndarray        # uint8 [R, C, H, W, 3]: row seed with `layers` from the column seed

    def compose(self, sources: bool = True, labels: bool = False) -> np.ndarray:
        """One picture of the grid, as NVIDIA's style_mixing.py lays it out.

        Args:
            sources: head the columns and rows with the unmixed seeds (the top-left corner stays black).
            labels: write the seeds above the columns and left of the rows.

        Returns:
            uint8 [H', W', 3].
        """
        r, c, h, w, _ = self.cells.shape
        tiles = self.cells
        if sources:
            top = np.concatenate([np.zeros_like(self.col_images[:1]), self.col_images])[None]  # [1, C+1, H, W, 3]
            left = self.row_images[:, None]  # [R, 1, H, W, 3]
            tiles = np.concatenate([top, np.concatenate([left, tiles], axis=1)])
        rows, cols = tiles.shape[:2]
        image = tiles.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 3)
        if not labels:
            return image
        return draw_label(image, self.row_seeds, self.col_seeds, h, w, sources)


def _font(cell: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(10, min(cell // 8, 48)))


def draw_label(image: np.ndarray, row_seeds: Sequence[int], col_seeds: Sequence[int], h: int, w: int,
           sources: bool) -> np.ndarray:
    """Add a white band above and left of the grid with the seeds in black, centred on their tiles."""
    font = _font(min(h, w))
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    texts = [str(s) for s in (*row_seeds, *col_seeds)]
    boxes = [draw.textbbox((0, 0), t, font=font) for t in texts]
    pad = max(3, min(h, w) // 32)
    band_top = max(b[3] for b in boxes) + 2 * pad
    band_left = max(b[2] for b in boxes) + 2 * pad
    canvas = Image.new("RGB", (image.shape[1] + band_left, image.shape[0] + band_top), "white")
    canvas.paste(Image.fromarray(image), (band_left, band_top))
    draw = ImageDraw.Draw(canvas)
    skip = 1 if sources else 0
    for j, seed in enumerate(col_seeds):
        x = band_left + (j + skip) * w + w / 2
        draw.text((x, band_top / 2), str(seed), fill="black", font=font, anchor="mm")
    for i, seed in enumerate(row_seeds):
        y = band_top + (i + skip) * h + h / 2
        draw.text((band_left - pad, y), str(seed), fill="black", font=font, anchor="rm")
    return np.asarray(canvas)


def synthesize_batches(model: Model, ws: torch.Tensor, req: RenderRequest, batch_size: int,
                       progress: Callable[[Progress], None] | None = None,
                       cancel: threading.Event | None = None) -> np.ndarray | None:
    """Images of many latents [N, num_ws, w_dim] with one request's noise and transform, in batches:
    uint8 [N, H, W, 3], or None when cancelled between batches."""
    meter = ProgressMeter(len(ws), progress)
    images = []
    for start in range(0, len(ws), batch_size):
        if cancel is not None and cancel.is_set():
            return None
        images.append(frames_to_uint8(synthesize_request(model, ws[start:start + batch_size], req)))
        meter.update(start + len(images[-1]))
    return np.concatenate(images)


def mixing_grid(
    model: Model,
    row_seeds: Sequence[int],
    col_seeds: Sequence[int],
    layers: Sequence[int],
    base: RenderRequest | None = None,
    batch_size: int = 8,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> MixingGrid | None:
    """Render a style-mixing grid in batches, on the calling thread.

    Args:
        model: the generator.
        row_seeds: the seeds whose other layers are kept (one per row).
        col_seeds: the seeds whose `layers` are taken (one per column).
        layers: ws indices to take from the column seeds (see `parse_layers`, `layer_presets`).
        base: psi, cutoff, class, noise and transform of every picture (its seeds and mixing are replaced).
        batch_size: images per synthesis call.
        progress: called after every batch with the images done so far.
        cancel: stop before the next batch once set.

    Returns:
        The grid, or None if it was cancelled.
    """
    base = base or RenderRequest()
    row_seeds, col_seeds, layers = [int(s) for s in row_seeds], [int(s) for s in col_seeds], sorted(set(layers))
    if not row_seeds or not col_seeds:
        raise ValueError("a style-mixing grid needs at least one row seed and one column seed")
    if not layers:
        raise ValueError("choose at least one layer to take from the column seeds")
    if model.info.num_ws < 2:
        raise ValueError(f"a {model.info.family} model has a single w: it cannot mix styles")
    cell_request(base, row_seeds[0], col_seeds[0], layers).validate(model)

    # Latents: the unmixed seeds, then every cell as `request_ws` mixes it.
    unmixed = dataclasses.replace(base, mix_seed=None, mix_layers=[])
    seed_ws = {s: request_ws(model, dataclasses.replace(unmixed, seeds=[(s, 1.0)]))
               for s in dict.fromkeys(row_seeds + col_seeds)}  # {seed: [1LW]}
    idx = torch.as_tensor(layers, device=model.device)
    cells = []
    for r in row_seeds:
        for c in col_seeds:
            ws = seed_ws[r].clone()
            ws[:, idx] = seed_ws[c][:, idx]
            cells.append(ws)
    ws = torch.cat([seed_ws[s] for s in row_seeds] + [seed_ws[s] for s in col_seeds] + cells)  # [NLW]

    images = synthesize_batches(model, ws, unmixed, batch_size, progress, cancel)  # [NHW3]
    if images is None:
        return None
    nr, nc = len(row_seeds), len(col_seeds)
    return MixingGrid(row_seeds, col_seeds, layers, row_images=images[:nr], col_images=images[nr:nr + nc],
                      cells=images[nr + nc:].reshape(nr, nc, *images.shape[1:]))


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write uint8 [H, W, 3] as a PNG under a temporary name, then rename: no half file, ever.

    Args:
        image: the picture.
        path: the PNG to write (its folder is created).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path, ".png")
    try:
        Image.fromarray(image).save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
