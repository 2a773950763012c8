"""What every format reader hands back: our generator module plus what the file said about it."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class Checkpoint:
    """A generator rebuilt from a file, and where it came from."""

    generator: nn.Module         # Has .mapping (z, c -> ws) and .synthesis (ws -> image).
    family: str                  # 'progan', 'stylegan1', 'stylegan2', 'stylegan3-t' or 'stylegan3-r'.
    source: str                  # The implementation that wrote the file, e.g. 'nvlabs-stylegan3'.
    format: str                  # How the file is stored, e.g. 'nvidia-persistence-pickle'.
    config: dict                 # Constructor arguments of `generator` (re-savable in our format).
    network: str                 # Which network of the file this is, as the file names it.
    networks: tuple[str, ...]    # Every generator network the file holds.
    notes: list[str] = field(default_factory=list)  # Anything a user should know (guesses, estimates).
    resolution_guessed: bool = False  # The file does not record its resolution; it was guessed.
    w_avg_estimated: bool = False     # The file holds no average w; it was estimated.
