"""NVIDIA's persistence pickles (stylegan2-ada-pytorch, stylegan3), read as data.

Their modules pickle as `torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta`
carries the class's source text (which the official loader executes), its name and the object's
`__dict__`. We keep the name and the state, ignore the source, and rebuild the tensors weights-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import LoadError
from .safe_pickle import ObjectRecord, RecordDict, mistyped, restricted_load

WHAT = "an NVIDIA network pickle"
# The entries of a pickled module's state that the readers take apart, and what each must be.
STATE_TYPES = {"_init_kwargs": dict, "_parameters": dict, "_buffers": dict, "_modules": dict,
               "_non_persistent_buffers_set": set}


@dataclass
class ModuleRecord:
    """One pickled persistent module: its class name and its `__dict__`, never its code."""

    class_name: str
    state: dict

    @property
    def init_kwargs(self) -> dict:
        """The constructor's keyword arguments, as plain nested dicts."""
        return plain(self.state.get("_init_kwargs") or {})

    @property
    def submodules(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters and persistent buffers under their dotted names, as `nn.Module` gives them."""
        return _flatten(self.state, "")


def _module_state(obj: Any) -> dict | None:
    """The `__dict__` of a pickled module (persistent record or plain torch container)."""
    if isinstance(obj, ModuleRecord):
        return obj.state
    if isinstance(obj, ObjectRecord) and isinstance(obj.state, dict) and "_modules" in obj.state:
        return obj.state
    return None


def _flatten(state: dict, prefix: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if isinstance(t, torch.Tensor) and name not in skip:
                out[f"{prefix}{name}"] = t  # a damaged key then shows as an unexpected name
    for name, sub in (state.get("_modules") or {}).items():
        sub_state = _module_state(sub)
        if sub_state is not None:
            out.update(_flatten(sub_state, f"{prefix}{name}."))
    return out


_BUSY = object()  # plain(): a container whose items are being converted


def plain(value: Any) -> Any:
    """EasyDicts and OrderedDicts to dicts, numpy scalars to Python numbers, recursively.

    Each container is converted once, however often the pickle refers to it (shared references can nest
    exponentially); one that contains itself, or nesting past the recursion limit, raises ValueError.
    """
    done: dict[int, Any] = {}  # id -> converted container, or _BUSY while its items are converted

    def convert(v: Any) -> Any:
        if not isinstance(v, (Mapping, list, tuple)):
            return v.item() if hasattr(v, "item") and getattr(v, "ndim", None) == 0 else v
        if done.get(id(v)) is _BUSY:
            raise ValueError("a value contains itself")
        if id(v) not in done:
            done[id(v)] = _BUSY
            done[id(v)] = ({k: convert(x) for k, x in v.items()} if isinstance(v, Mapping)
                           else type(v)(convert(x) for x in v))
        return done[id(v)]

    try:
        return convert(value)
    except RecursionError:
        raise ValueError("values nested too deeply") from None


def _reconstruct_persistent_obj(meta: Any) -> ModuleRecord:
    if not isinstance(meta, Mapping) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise TypeError("a persistent object record is malformed")
    class_name, state = str(meta.get("class_name")), meta["state"]
    if wrong := mistyped(state, STATE_TYPES):  # checked here, where the record is made
        key, value, kind = wrong
        raise TypeError(f"the {key} of a pickled {class_name} is a {type(value).__name__}, not a {kind.__name__}")
    try:
        plain(state.get("_init_kwargs"))
    except ValueError as e:
        raise TypeError(f"the _init_kwargs of a pickled {class_name}: {e}") from None
    return ModuleRecord(class_name=class_name, state=state)


ALLOWED = {
    "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
    "dnnlib.util.EasyDict": RecordDict,
}
PREFIXES = {"torch.nn.modules.": ObjectRecord}


def read_nvidia_pickle(path: str | Path, data: bytes | None = None) -> dict[str, ModuleRecord]:
    """Every network in an NVIDIA pickle by its snapshot key ('G_ema', 'G', 'D', ...).

    A pickle of a single network (no snapshot dict) comes back as {'G_ema': record}.

    Raises:
        LoadError: not such a pickle, or it names anything outside the allow-list.
    """
    obj = restricted_load(path, WHAT, allowed=ALLOWED, prefixes=PREFIXES, data=data)
    if isinstance(obj, ModuleRecord):
        return {"G_ema": obj}
    if isinstance(obj, Mapping):
        nets = {str(k): v for k, v in obj.items() if isinstance(v, ModuleRecord)}
        if nets:
            return nets
    raise LoadError(f"{path}: {WHAT} was expected, but the file holds no network (found {type(obj).__name__})")
