"""The models `explorer` offers with no download: the trained face models in `assets/`, and an
untrained placeholder that the program writes itself.

The trained models (64x64 faces, made by `explorer/training/`; provenance in `assets/README.md`)
come first in `BUNDLED_MODELS`, so `explorer` with no arguments opens the first of them. The
placeholder is a small StyleGAN2 with seeded random weights, written in our own format on first
use: it shows abstract colour patterns, not faces, and is what opens when the assets are missing
(a copy of the package without the repository's `assets/`).
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
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
# (menu label, file in ASSETS_DIR, first picture): the first model present is the default one, and the
# label starts with the family's name. The first picture is a request (as JSON) picked by eye to show a
# clear face (seed 0 of the StyleGAN2 model is its darkest); ψ 0.7 trades a little variety for cleaner
# faces, as the StyleGAN papers show them (ProGAN's paper does not truncate, so its picture is at ψ 1).
TRAINED = (
    ("StyleGAN2 faces, 64 px (trained)", "stylegan2-faces-64.pt", {"seeds": [[14, 1.0]], "truncation_psi": 0.7}),
    ("StyleGAN3-T faces, 64 px (trained)", "stylegan3t-faces-64.pt", {"seeds": [[12, 1.0]], "truncation_psi": 0.7}),
    ("StyleGAN3-R faces, 64 px (trained)", "stylegan3r-faces-64.pt", {"seeds": [[14, 1.0]], "truncation_psi": 0.7}),
    ("StyleGAN1 faces, 64 px (trained)", "stylegan1-faces-64.pt", {"seeds": [[20, 1.0]], "truncation_psi": 0.7}),
    ("ProGAN faces, 64 px (trained)", "progan-faces-64.pt", {"seeds": [[2, 1.0]]}),
)


@dataclass(frozen=True)
class BundledModel:
    """An entry of the GUI's bundled-models menu: a label and how to get its file."""

    label: str
    path: Callable[[], Path]     # where the file is (cheap: no torch, no disk writes)
    prepare: Callable[[], Path]  # make sure the file exists (may build it: run off the GUI thread)
    start: dict | None = None    # the request (JSON fields) to show first, unless a session of it is restored


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


def _trained(label: str, name: str, start: dict) -> BundledModel:
    path = ASSETS_DIR / name
    return BundledModel(label, lambda: path, lambda: path, start)


BUNDLED_MODELS = tuple(_trained(*entry) for entry in TRAINED if (ASSETS_DIR / entry[1]).is_file()) + (
    BundledModel("Untrained placeholder (random weights)", default_model_path, ensure_default_model),
)
