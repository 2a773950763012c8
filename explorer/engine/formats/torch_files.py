"""Files written by `torch.save` (zip or legacy): opened weights-only, then told apart by their keys."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import LoadError
from . import akanimax, native, pgan_zoo, rosinality_sg1, rosinality_sg2
from .checkpoint import ByteReader, Checkpoint

TORCH_LEGACY_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")  # torch.save's old (non-zip) header
ZIP_MAGIC = b"PK\x03\x04"

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


def _truncated(data: bytes, reader: ByteReader) -> bool:
    """Whether a failed load met a file cut short: a zip without the directory that ends it, or a legacy file that
    a read ran past the end of."""
    if data.startswith(ZIP_MAGIC):
        return not zipfile.is_zipfile(io.BytesIO(data))
    return reader.ran_out


def torch_load(path: Path, data: bytes, safe_globals: list | None = None) -> Any:
    """`torch.load(weights_only=True)` with its errors turned into a LoadError naming the file."""
    reader = ByteReader(data)
    try:
        with torch.serialization.safe_globals(safe_globals or []):
            return torch.load(reader, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated files, bad headers, refused globals: each its own message
        if _truncated(data, reader):
            raise LoadError(f"{path}: not a readable torch file: it is truncated (it ends in the middle of its "
                            f"data)") from None
        if isinstance(e, pickle.UnpicklingError):  # torch wraps the line that says what was wrong in advice
            lines = [line.strip() for line in str(e).splitlines() if line.strip()]
            refused = next((line for line in lines if "GLOBAL" in line), None)
            if refused is not None:
                raise LoadError(f"{path}: refused to load: the file references something outside the weights-only "
                                f"allow-list, and nothing in it was run ({refused})") from None
            said = str(e).split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
            raise LoadError(f"{path}: not a readable torch file: its pickled data is damaged "
                            f"({said[0] if said else ''})") from None
        raise LoadError(f"{path}: not a readable torch file ({type(e).__name__}: {e})") from None


def load(path: Path, data: bytes, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    obj = torch_load(path, data, safe_globals=SAFE_GLOBALS)
    for matches, read in READERS:
        if matches(obj):
            return read(path, obj, network, resolution)
    if isinstance(obj, dict):
        held = ", ".join(f"{k} ({type(v).__name__})" for k, v in list(obj.items())[:8])
    else:
        held = type(obj).__name__
    raise LoadError(f"{path}: a torch file, but not a generator checkpoint this program knows (it holds: {held})")
