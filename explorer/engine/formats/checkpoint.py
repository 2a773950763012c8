"""What every format reader hands back: our generator module plus what the file said about it; and the
small steps several readers share."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import LoadError

W_AVG_SAMPLES = 10_000  # z drawn to estimate the average w of a file that stores none
W_AVG_SEED = 0          # their torch seed


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
    discriminator: str | None = None  # The file's discriminator network, read on demand (`read_discriminator`).
    notes: list[str] = field(default_factory=list)  # Anything a user should know (guesses, estimates).
    resolution_guessed: bool = False  # The file does not record its resolution; it was guessed.
    w_avg_estimated: bool = False     # The file holds no average w; it was estimated.


def read_file(path: Path, data: bytes | None = None) -> bytes:
    """The file's bytes (`data` when they were already read), refused with a LoadError when unreadable or empty."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise LoadError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if not data:
        raise LoadError(f"{path}: the file is empty")
    return data


class ByteReader(io.BytesIO):
    """A file's bytes that note whether a read asked for more than was left: a load that fails after that met a
    file cut short (or a damaged length inside it), which its error rarely says."""

    ran_out = False

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.ran_out |= size is not None and len(out) < size
        return out

    def readinto(self, buffer) -> int:
        n = super().readinto(buffer)
        self.ran_out |= n < memoryview(buffer).nbytes
        return n

    def readline(self, size: int | None = -1) -> bytes:
        out = super().readline(size)
        self.ran_out |= not out.endswith(b"\n") and (size is None or size < 0 or len(out) < size)
        return out


def pick_generator(path: Path, obj: Mapping, network: str | None, generators: Sequence[str],
                   others: Sequence[str]) -> str:
    """The requested network, refused unless it is one of the format's `generators` that the file has; None:
    the first of them it has, even a damaged one (reported by the reader, not passed over for the next).
    `others` are the format's known non-generator entries, named as such in the message."""
    present = [k for k in generators if k in obj]
    name = network or present[0]
    if name not in present:
        if name in obj and name in others:
            raise LoadError(f"{path}: network {name!r} is not a generator (generators: {', '.join(present)})")
        raise LoadError(f"{path}: no network {name!r} in the file (it has: {', '.join(present)})")
    return name


@torch.no_grad()
def estimate_w_avg(mapping: nn.Module, num: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED) -> torch.Tensor:
    """The mean of the mapping's w over `num` standard-normal z drawn from torch seed `seed`: [w_dim],
    deterministic. For files that store no average w."""
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros([mapping.w_dim], dtype=torch.float64)
    for start in range(0, num, 1000):
        z = torch.randn([min(1000, num - start), mapping.z_dim], generator=gen)  # [NZ]
        total += mapping(z, None)[:, 0].sum(dim=0).double()
    return (total / num).to(torch.float32)


def load_state(path: Path, generator: nn.Module, state: dict[str, torch.Tensor], what: str,
               keep: tuple[str, ...] = ()) -> None:
    """Load `state` into `generator` strictly. The generator's own entries whose names end with one of
    `keep` (what the file does not hold) stay as built where `state` lacks them; they are added to it.

    Raises:
        LoadError: '<path>: <what> (<why>)' when the tensors do not fit.
    """
    for key, value in generator.state_dict().items():
        if key not in state and key.endswith(keep):
            state[key] = value
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise LoadError(f"{path}: {what} ({e})") from None
