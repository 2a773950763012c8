"""Our generator networks, one module per family; `build_generator` makes one from a saved config."""

from __future__ import annotations

from torch import nn

from ..errors import LoadError


def _families() -> dict[str, type[nn.Module]]:
    from . import progan, stylegan1, stylegan2, stylegan3

    return {
        "progan": progan.Generator,
        "stylegan1": stylegan1.Generator,
        "stylegan2": stylegan2.Generator,
        "stylegan3-t": stylegan3.Generator,
        "stylegan3-r": stylegan3.Generator,
    }


def build_generator(family: str, config: dict) -> nn.Module:
    """Construct an (untrained) generator of a family from its constructor arguments."""
    families = _families()
    if family not in families:
        raise LoadError(f"unknown network family {family!r} (known: {', '.join(families)})")
    return families[family](**config)
