"""TensorFlow-era network pickles (ProGAN's `tfutil.Network`, StyleGAN/StyleGAN2's
`dnnlib.tflib.network.Network`), read as data without TensorFlow.

Each network pickles its static kwargs, its sub-networks and a list of (variable name, array); the
build source it also carries is ignored, never run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LoadError
from .nvidia_pickle import plain
from .safe_pickle import mistyped, restricted_load

WHAT = "a TensorFlow network pickle"
STATE_TYPES = {"variables": list, "components": dict, "static_kwargs": dict, "version": int}  # of a network's state


class _NetworkStub:
    """Stands in for the TF Network class while unpickling: keeps the state dict it is given."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, Mapping):
            raise TypeError("a network's pickled state is not a dict")
        self.state = dict(state)


@dataclass
class TFNetwork:
    """One TF network: its build function name, static kwargs, own variables and sub-networks."""

    name: str
    build_func_name: str
    static_kwargs: dict
    variables: dict[str, np.ndarray]
    components: dict[str, TFNetwork] = field(default_factory=dict)
    version: int = 0


def _to_network(stub: Any, where: str, outer: tuple = ()) -> TFNetwork:
    """`stub` as a TFNetwork; `outer` are the networks it is a component of."""
    state = getattr(stub, "state", None)
    if not isinstance(state, dict):
        raise LoadError(f"{where} is not a network")
    if any(stub is o for o in outer):
        raise LoadError(f"{where}: a network that is a component of itself")
    if wrong := mistyped(state, STATE_TYPES):
        key, value, kind = wrong
        raise LoadError(f"{where}: its {key!r} is a {type(value).__name__}, not a {kind.__name__}")
    variables = {}
    for item in state.get("variables") or []:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], (np.ndarray, np.generic))):
            raise LoadError(f"{where}: a malformed variable entry")
        variables[str(item[0])] = np.asarray(item[1])
    components = {str(k): _to_network(v, f"{where}/{k}", (*outer, stub))
                  for k, v in (state.get("components") or {}).items()}
    try:
        static_kwargs = plain(state.get("static_kwargs") or {})
    except ValueError as e:
        raise LoadError(f"{where}: its static_kwargs are damaged: {e}") from None
    names = [k for k in static_kwargs if not isinstance(k, str)]
    if names:
        raise LoadError(f"{where}: its static_kwargs are damaged: a key {names[0]!r} that is not a name")
    return TFNetwork(
        name=str(state.get("name", "")),
        build_func_name=str(state.get("build_func_name", "")),
        static_kwargs=static_kwargs,
        variables=variables,
        components=components,
        version=int(state.get("version", 0)),
    )


ALLOWED = {"tfutil.Network": _NetworkStub, "dnnlib.tflib.network.Network": _NetworkStub}


def read_tf_pickle(path: str | Path, data: bytes | None = None) -> dict[str, TFNetwork]:
    """The networks of a TF pickle: a training snapshot `(G, D, Gs)` gives {'G', 'D', 'Gs'};
    a single pickled network gives {'Gs': network}.

    Raises:
        LoadError: not such a pickle, or it names anything outside the allow-list.
    """
    obj = restricted_load(path, WHAT, allowed=ALLOWED, data=data)
    if isinstance(obj, _NetworkStub):
        return {"Gs": _to_network(obj, f"{path}: Gs")}
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(o, _NetworkStub) for o in obj):
        return {k: _to_network(o, f"{path}: {k}") for k, o in zip(("G", "D", "Gs"), obj, strict=True)}
    raise LoadError(f"{path}: {WHAT} was expected, but the file holds a {type(obj).__name__}")
