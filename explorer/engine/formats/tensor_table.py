"""A checkpoint's named tensors (or TF variables) that remember which were used, so leftovers are reported.

The converting loaders read every entry they understand through `table[name]`, mark what they skip
on purpose with `ignore`, and end with `check_all_used`: an entry nobody read means a layout this
program does not know, and is refused rather than silently dropped. They read widths from the entries'
shapes and index, transpose and reshape them inside `converting`, so that an entry of an unexpected rank
or size is refused by name.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import LoadError
from .tf_pickle import TFNetwork

_reads = itertools.count()  # orders the reads of all tables, so that `converting` can tell which entry came last


def numpy_tensor(a: np.ndarray) -> torch.Tensor:
    """A numpy array as a contiguous float32 torch tensor."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class TensorTable:
    """name -> array or tensor of one network, remembering which entries were used.

    Messages name the file, the network, the entry and the layout that was expected; `noun` says
    what the entries are called in them ('variable' for TF, 'tensor' for state dicts).
    """

    def __init__(self, path: Path, network: str, tensors: Mapping[str, Any], layout: str, noun: str):
        self.path, self.network, self.tensors = path, network, tensors
        self.layout, self.noun = layout, noun
        self.used: set[str] = set()
        self.last: tuple[int, str] | None = None  # (read number, name) of the entry read last
        empty = next((k for k, v in tensors.items() if 0 in v.shape), None)  # widths are read from the shapes
        if empty is not None:
            raise LoadError(f"{path}: {network}'s {noun} {empty!r} has shape {list(tensors[empty].shape)}, "
                            f"with no elements")

    @classmethod
    def from_tf(cls, path: Path, net: TFNetwork, layout: str) -> TensorTable:
        """The variables of a TF network, as numpy arrays."""
        return cls(path, net.name, net.variables, layout, "variable")

    @classmethod
    def from_state_dict(cls, path: Path, network: str, sd: Mapping, layout: str) -> TensorTable:
        """A torch state dict: every value must be a tensor; kept as contiguous float32."""
        if not isinstance(sd, Mapping):
            raise LoadError(f"{path}: {network}: a state dict was expected, found a {type(sd).__name__}")
        tensors = {}
        for k, v in sd.items():
            if not isinstance(v, torch.Tensor):
                raise LoadError(f"{path}: {network}[{k!r}] is a {type(v).__name__}, not a tensor")
            tensors[str(k)] = v.detach().to(torch.float32).contiguous()  # converter output may be non-contiguous
        return cls(path, network, tensors, layout, "tensor")

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __getitem__(self, name: str) -> Any:
        if name not in self.tensors:
            raise LoadError(f"{self.path}: {self.network} has no {self.noun} {name!r}; not a {self.layout} layout "
                            f"this program knows")
        self.used.add(name)
        self.last = (next(_reads), name)
        return self.tensors[name]

    def ignore(self, pattern: str) -> None:
        """Count every entry whose whole name matches `pattern` as used."""
        self.used |= {k for k in self.tensors if re.fullmatch(pattern, k)}

    def count(self, pattern: str) -> int:
        """How many entries' whole names match `pattern`."""
        return sum(1 for k in self.tensors if re.fullmatch(pattern, k))

    def check_all_used(self) -> None:
        left = sorted(set(self.tensors) - self.used)
        if left:
            raise LoadError(f"{self.path}: {self.network} has {self.noun}s this program does not know how to use: "
                            f"{', '.join(left[:6])}{' ...' if len(left) > 6 else ''}")


@contextmanager
def converting(*tables: TensorTable) -> Iterator[None]:
    """Report what numpy and torch raise on an entry of an unexpected rank or size while the block reads shapes
    from the tables' entries or converts them, as a LoadError naming the entry read last: the one at fault."""
    try:
        yield
    except (IndexError, ValueError, TypeError, RuntimeError) as e:
        read = [t for t in tables if t.last is not None]
        if not read:
            raise
        table = max(read, key=lambda t: t.last)
        name = table.last[1]
        raise LoadError(f"{table.path}: {table.network}'s {table.noun} {name!r} has shape "
                        f"{list(table.tensors[name].shape)}, which does not fit a {table.layout} layout "
                        f"({type(e).__name__}: {e})") from None
