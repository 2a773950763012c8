"""Checkpoint formats: recognise a file by its content (never its extension) and rebuild our module.

Pickle-based files are opened with a restricted unpickler; torch files with `weights_only=True`.
"""

from __future__ import annotations

import io
import pickletools
from pathlib import Path

from ..errors import LoadError
from ..networks.discriminator import Discriminator
from . import nvidia, tf, torch_files
from .checkpoint import Checkpoint, read_file
from .torch_files import TORCH_LEGACY_MAGIC, ZIP_MAGIC

__all__ = ["Checkpoint", "read_checkpoint", "read_discriminator", "sniff"]


def _first_global(data: bytes, max_ops: int = 4096) -> str | None:
    """The first `module.name` a pickle stream references, read from its opcodes without running it."""
    strings: list[str] = []
    try:
        for i, (op, arg, _pos) in enumerate(pickletools.genops(io.BytesIO(data))):
            if op.name == "GLOBAL":
                return str(arg).replace(" ", ".")
            if op.name == "STACK_GLOBAL" and len(strings) >= 2:
                return f"{strings[-2]}.{strings[-1]}"
            if isinstance(arg, str):
                strings.append(arg)
            if i >= max_ops:
                break
    except Exception:  # noqa: BLE001 - a malformed stream simply has no recognisable global
        return None
    return None


def sniff(data: bytes) -> str:
    """Name the container format of a file's bytes: 'torch', 'nvidia', 'tf' or 'unknown'."""
    if data.startswith(ZIP_MAGIC) or data.startswith(TORCH_LEGACY_MAGIC):
        return "torch"
    if data[:1] == b"\x80":
        ref = _first_global(data) or ""
        if ref.startswith("torch_utils.persistence."):
            return "nvidia"
        if ref.startswith(("dnnlib.tflib.", "tfutil.")):
            return "tf"
    return "unknown"


def read_checkpoint(path: str | Path, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    """Open any supported checkpoint as data and rebuild its generator.

    Raises:
        LoadError: the file cannot be read, is not a supported checkpoint, or is refused as unsafe.
    """
    path = Path(path)
    data = read_file(path)
    kind = sniff(data)
    if kind == "nvidia":
        return nvidia.load(path, data, network, resolution)
    if kind == "torch":
        return torch_files.load(path, data, network, resolution)
    if kind == "tf":
        return tf.load(path, data, network, resolution)
    if data[:1] == b"\x80":
        raise LoadError(f"{path}: a pickle, but not of a checkpoint format this program knows "
                        f"(it starts with a reference to {_first_global(data) or 'no class'})")
    raise LoadError(f"{path}: not a checkpoint (neither a pickle nor a torch file)")


def read_discriminator(path: str | Path, network: str | None = None) -> Discriminator | None:
    """Rebuild a checkpoint's discriminator (NVIDIA's training snapshots carry one, as `D`) as data.

    Args:
        path: the checkpoint file.
        network: its name in the file; None takes the one the file has.

    Returns:
        The discriminator, frozen, on the CPU; None when the file holds none (every other format).

    Raises:
        LoadError: the file cannot be read, or its discriminator does not fit ours.
    """
    path = Path(path)
    data = read_file(path)
    if sniff(data) != "nvidia":
        if network is not None:
            raise LoadError(f"{path}: not an NVIDIA pickle, so no discriminator {network!r}")
        return None
    return nvidia.load_discriminator(path, data, network)
