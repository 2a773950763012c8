"""The model `explorer` opens when given none, until trained bundled models ship in `assets/`.

It is a small StyleGAN2 (64x64) with seeded random weights that this program writes itself, in its
own format, on first use: untrained, so it shows abstract colour patterns rather than faces, but it
exercises every control except the StyleGAN3 transform and renders fast on a CPU. Bundled models are
entries of `BUNDLED_MODELS`; the trained ones will be added there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ENV_PATH = "EXPLORER_DEFAULT_MODEL"  # where the placeholder is written (tests point it at a temp dir)
FILE_NAME = "default-untrained-stylegan2-64-v1.pt"
FAMILY = "stylegan2"
CONFIG = {
    "z_dim": 64,
    "w_dim": 64,
    "c_dim": 0,
    "img_resolution": 64,
    "img_channels": 3,
    "channel_base": 1024,
    "channel_max": 64,
    "mapping_kwargs": {"num_layers": 2},
}
SEED = 0


@dataclass(frozen=True)
class BundledModel:
    """An entry of the GUI's bundled-models menu: a label and how to get its file."""

    label: str
    path: Callable[[], Path]     # where the file is (cheap: no torch, no disk writes)
    prepare: Callable[[], Path]  # make sure the file exists (may build it: run off the GUI thread)


def cache_dir() -> Path:
    """The user's cache folder for this program (XDG on Linux, ~/.cache elsewhere)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "latent-explorer"


def default_model_path() -> Path:
    """Where the placeholder model lives: $EXPLORER_DEFAULT_MODEL, else the cache folder."""
    return Path(os.environ.get(ENV_PATH) or cache_dir() / FILE_NAME)


def build_default_checkpoint():
    """The placeholder generator with weights drawn from a fixed seed, as a `Checkpoint`."""
    import torch

    from .formats.checkpoint import Checkpoint
    from .networks import build_generator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        generator = build_generator(FAMILY, CONFIG)
    return Checkpoint(
        generator=generator, family=FAMILY, source="latent-explorer-default", format="latent-explorer",
        config=CONFIG, network="G_ema", networks=("G_ema",),
        notes=["untrained placeholder with random weights: it shows abstract patterns, not faces"],
    )


def ensure_default_model(path: str | Path | None = None) -> Path:
    """Write the placeholder model to `path` (default: `default_model_path()`) unless it is there."""
    from .formats import native

    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        native.save(build_default_checkpoint(), path)
    return path


BUNDLED_MODELS = (
    BundledModel("Default (untrained placeholder)", default_model_path, ensure_default_model),
)
