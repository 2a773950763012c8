"""Our own format: one `torch.save` file with the family, the constructor config (as JSON) and the
state dict; loads with `weights_only=True`. It is what `assets/` ships."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import LoadError
from ..networks import build_generator
from .checkpoint import Checkpoint

FORMAT = "latent-explorer"
VERSION = 1


def matches(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def save(ckpt: Checkpoint, path: str | Path) -> None:
    """Write a checkpoint in our format (through a temporary file, so a failure leaves no half file)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "family": ckpt.family,
        "source": ckpt.source,
        "config": json.dumps(ckpt.config),
        "notes": list(ckpt.notes),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in ckpt.generator.state_dict().items()},
    }
    tmp = path.with_name(path.name + ".part")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load(path: Path, obj: dict, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    if obj.get("version") != VERSION:
        raise LoadError(f"{path}: written by a newer version of this program (format version {obj.get('version')})")
    if network not in (None, "G_ema"):
        raise LoadError(f"{path}: holds a single network; there is no {network!r}")
    try:
        family, config = str(obj["family"]), json.loads(obj["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise LoadError(f"{path}: a damaged {FORMAT} file: no family, or a config that is not JSON "
                        f"({type(e).__name__}: {e})") from None
    notes = obj.get("notes", [])
    if not isinstance(notes, list):
        raise LoadError(f"{path}: a damaged {FORMAT} file: its notes are a {type(notes).__name__}, not a list")
    try:
        generator = build_generator(family, config)
        generator.load_state_dict(obj["state_dict"], strict=True)
    except LoadError as e:  # an unknown family: build_generator does not know the file
        raise LoadError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - any inconsistency in the file is reported, not raised raw
        raise LoadError(f"{path}: a damaged {FORMAT} file ({type(e).__name__}: {e})") from None
    return Checkpoint(generator=generator, family=family, source=str(obj.get("source", FORMAT)), format=FORMAT,
                      config=config, network="G_ema", networks=("G_ema",), notes=[str(n) for n in notes])
