"""TF legacy pickles -> our modules: pick the network, then hand it to the builder of its family."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import LoadError
from .checkpoint import Checkpoint
from .tf_pickle import TFNetwork, read_tf_pickle

FORMAT = "tf-legacy-pickle"
DEFAULT_NETWORKS = ("Gs", "G")

# build_func_name of the top-level network -> module in this package with
# `build(path, net: TFNetwork, resolution) -> Checkpoint`.
BUILDERS = {
    "G_paper": "tf_progan",
    "G_style": "tf_stylegan1",
    "G_main": "tf_stylegan2",
}


def load(path: Path, data: bytes, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    """Read the pickle as data and rebuild the chosen generator (default: Gs, the averaged one)."""
    nets = read_tf_pickle(path, data=data)
    generators = [k for k, v in nets.items() if v.build_func_name in BUILDERS]
    if network is None:
        name = next((n for n in DEFAULT_NETWORKS if n in generators), None)
        if name is None:
            funcs = ", ".join(sorted({v.build_func_name for v in nets.values()}))
            raise LoadError(f"{path}: no generator this program knows in the pickle (build functions: {funcs})")
    elif network not in nets:
        raise LoadError(f"{path}: no network {network!r} in the file (it has: {', '.join(nets)})")
    elif network not in generators:
        raise LoadError(f"{path}: network {network!r} ({nets[network].build_func_name}) is not a generator")
    else:
        name = network
    net: TFNetwork = nets[name]
    module = importlib.import_module(f"{__package__}.{BUILDERS[net.build_func_name]}")
    ckpt = module.build(path, net, resolution)
    ckpt.network, ckpt.networks, ckpt.format = name, tuple(generators), FORMAT
    return ckpt
