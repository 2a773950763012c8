"""Pieces the synthesis networks of several families share: input checks and the block layout."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def check_synthesis_inputs(
    ws: torch.Tensor,
    num_ws: int,
    w_dim: int,
    noise: Sequence | None = None,
    num_noise: int | None = None,
    network: str | None = None,
) -> None:
    """Refuse ws that are not [N, num_ws, w_dim] and, where `num_noise` is given, a `noise` list
    that does not have one entry per noise layer. `network` (e.g. 'StyleGAN3') is named in the
    ws message when given."""
    if ws.ndim != 3 or ws.shape[1] != num_ws or ws.shape[2] != w_dim:
        which = f" for this {network} network" if network else ""
        raise ValueError(f"ws must have shape [N, {num_ws}, {w_dim}]{which}, got {list(ws.shape)}")
    if num_noise is not None and noise is not None and len(noise) != num_noise:
        raise ValueError(f"this model has {num_noise} noise layers, got {len(noise)} noise arrays")


def check_labels(c: torch.Tensor | None, c_dim: int) -> None:
    """A conditional model (c_dim > 0) needs labels c of shape [N, c_dim]."""
    if c_dim > 0 and (c is None or c.shape[-1] != c_dim):
        raise ValueError(f"this model is conditional: c must have shape [N, {c_dim}]")


class BlockLayout(nn.Module):
    """A synthesis network of one block `b<res>` per resolution in `block_resolutions`, from 4x4 up;
    its blocks list the names of their noise layers in `noise_layers`."""

    block_resolutions: list[int]

    @property
    def blocks(self) -> list[nn.Module]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    @property
    def noise_layers(self) -> list[tuple[str, int]]:
        """Name and resolution of every layer that takes noise, in the order `noise` lists them."""
        return [(f"b{b.resolution}.{name}", b.resolution) for b in self.blocks for name in b.noise_layers]

    @property
    def layer_names(self) -> list[str]:
        return [f"b{res}" for res in self.block_resolutions]
