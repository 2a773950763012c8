"""Files written by `torch.save` (zip or legacy): opened weights-only, then told apart by their keys."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import LoadError
from . import akanimax, native, pgan_zoo, rosinality_sg1, rosinality_sg2
from .checkpoint import Checkpoint

# (matches(obj), load(path, obj, network, resolution)) per format, tried in order.
READERS: list[tuple[Callable[[Any], bool], Callable[..., Checkpoint]]] = [
    (native.matches, native.load),
    (rosinality_sg2.matches, rosinality_sg2.load),
    (pgan_zoo.matches, pgan_zoo.load),
    (akanimax.matches, akanimax.load),
    (rosinality_sg1.matches, rosinality_sg1.load),
]
# Plain attribute bags that some formats pickle beside their tensors: allowed into the weights-only load.
# A `(stub, "module.Name")` entry maps a foreign class the file names to a stand-in of ours (torch's
# safe-globals aliasing): only that name is allowed, and it builds our stub, never the original class.
SAFE_GLOBALS: list[type | tuple[type, str]] = [
    *rosinality_sg2.SAFE_GLOBALS,
    *((stub, name) for name, stub in pgan_zoo.STUBS.items()),
]


def torch_load(path: Path, data: bytes, safe_globals: list | None = None) -> Any:
    """`torch.load(weights_only=True)` with its errors turned into a LoadError naming the file."""
    try:
        with torch.serialization.safe_globals(safe_globals or []):
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        detail = next((line for line in first if "GLOBAL" in line or "Unsupported" in line), first[0] if first else "")
        raise LoadError(f"{path}: refused to load: the file references something outside the weights-only "
                        f"allow-list, and nothing in it was run ({detail.strip()})") from None
    except Exception as e:  # noqa: BLE001 - truncated zips, bad headers, ...: all become one message
        raise LoadError(f"{path}: not a readable torch file ({type(e).__name__}: {e})") from None


def load(path: Path, data: bytes, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    obj = torch_load(path, data, safe_globals=SAFE_GLOBALS)
    for matches, read in READERS:
        if matches(obj):
            return read(path, obj, network, resolution)
    keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, dict) else type(obj).__name__
    raise LoadError(f"{path}: a torch file, but not a generator checkpoint this program knows (it holds: {keys})")
