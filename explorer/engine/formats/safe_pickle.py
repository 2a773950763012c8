"""A restricted unpickler: checkpoints are data, never code.

Every global a pickle stream names is looked up in an allow-list that maps it to a function or
class of ours (or a vetted library function that only builds data). Anything else is refused with
a `LoadError` naming the reference, before it can be called. The stubs below stand in for the
foreign classes the formats need: records of their pickled state, never the original classes.
"""

from __future__ import annotations

import collections
import io
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy._core import multiarray

from ..errors import LoadError
from .checkpoint import ByteReader, read_file


class RecordDict(dict):
    """Stands in for a dict subclass such as dnnlib's EasyDict: keeps the items, nothing else."""

    def __setstate__(self, state: Any) -> None:
        """An EasyDict pickles no attribute state we need."""


class ObjectRecord:
    """Stands in for a foreign object (e.g. a torch.nn container): keeps its pickled state."""

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _load_torch_bytes(data: bytes) -> Any:
    """`torch.storage._load_from_bytes`: an embedded torch.save blob, opened weights-only."""
    if not isinstance(data, bytes):
        raise TypeError("embedded tensor storage is not a byte string")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """`torch._utils._rebuild_tensor_v2` without hooks or metadata: a view of a loaded storage."""
    if isinstance(storage, torch.TypedStorage):
        dtype, storage = storage.dtype, storage._untyped_storage
    elif isinstance(storage, torch.UntypedStorage):
        dtype = torch.uint8
    else:
        raise TypeError(f"tensor storage is a {type(storage).__name__}, not a torch storage")
    t = torch.empty((0,), dtype=dtype, device=storage.device)
    return t.set_(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    """`torch._utils._rebuild_parameter`: parameters come back as plain tensors."""
    if not isinstance(data, torch.Tensor):
        raise TypeError("parameter data is not a tensor")
    return data


def _encode_text(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode`: how protocol-2 pickles from Python 2 spell byte strings."""
    return str(text).encode(encoding)


# Globals that only build data; each format adds its own stubs to these.
DATA_GLOBALS: dict[str, Callable] = {
    "collections.OrderedDict": collections.OrderedDict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.slice": slice,
    "builtins.complex": complex,
    "builtins.bytearray": bytearray,
    "_codecs.encode": _encode_text,
    "numpy.dtype": np.dtype,
    "numpy.ndarray": np.ndarray,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch.storage._load_from_bytes": _load_torch_bytes,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1.x and 2.x names
    DATA_GLOBALS[f"{_mod}._reconstruct"] = multiarray._reconstruct
    DATA_GLOBALS[f"{_mod}.scalar"] = multiarray.scalar


def mistyped(state: Mapping, types: Mapping[str, type]) -> tuple[str, Any, type] | None:
    """The first entry of a pickled object's state that is set to something other than its type in `types`, as
    (key, value, type); None when all fit. Empty values pass: the readers take them for none."""
    for key, kind in types.items():
        value = state.get(key)
        if value and not isinstance(value, kind):
            return key, value, kind
    return None


class _Opcodes(dict):
    """The unpickler's opcode table; a byte that is no opcode is reported as the C unpickler words it."""

    def __missing__(self, key: int):
        raise pickle.UnpicklingError(f"invalid load key, {bytes([key])!r}")


# The pure-Python unpickler: the C one sizes its memo table by the largest index a stream names, so a damaged
# LONG_BINPUT makes it allocate (and zero) gigabytes; this one keeps the memo in a dict, and is as fast here, where
# the time goes into the tensors. BYTEARRAY8 is left out: it allocates the length it names before reading, and no
# checkpoint holds one.
class _RestrictedUnpickler(pickle._Unpickler):
    dispatch = _Opcodes((k, v) for k, v in pickle._Unpickler.dispatch.items() if k != pickle.BYTEARRAY8[0])

    def __init__(self, file, allowed: Mapping[str, Callable], prefixes: Mapping[str, Callable]):
        super().__init__(file)
        self._allowed = allowed
        self._prefixes = prefixes

    def find_class(self, module: str, name: str) -> Callable:
        ref = f"{module}.{name}"
        if ref in self._allowed:
            return self._allowed[ref]
        for prefix, stub in self._prefixes.items():
            if ref.startswith(prefix):
                return stub
        raise _Refused(ref)

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {pid!r}")


class _Refused(Exception):
    """A reference outside the allow-list; becomes a LoadError naming it."""


def restricted_load(
    path: str | Path,
    what: str,
    allowed: Mapping[str, Callable] | None = None,
    prefixes: Mapping[str, Callable] | None = None,
    data: bytes | None = None,
) -> Any:
    """Unpickle a file allowing only data-building globals.

    Args:
        path: the file (also named in error messages).
        what: the format being read, for messages ("an NVIDIA network pickle").
        allowed: extra `module.name` -> callable entries on top of `DATA_GLOBALS`.
        prefixes: `module.prefix` -> stub class, for whole families of foreign classes.
        data: the file's bytes when already read.

    Returns:
        The unpickled object, built only from allowed globals.

    Raises:
        LoadError: the file is empty, truncated, not a pickle, or names anything not allowed.
    """
    path = Path(path)
    data = read_file(path, data)
    table = {**DATA_GLOBALS, **(allowed or {})}
    reader = ByteReader(data)
    try:
        return _RestrictedUnpickler(reader, table, prefixes or {}).load()
    except _Refused as e:
        raise LoadError(
            f"{path}: refused to load: the file references {e}, which is not allowed in {what}; "
            "it may be corrupt or malicious, and nothing in it was run"
        ) from None
    except LoadError as e:
        raise LoadError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - any malformed stream ends here with a readable message
        if reader.ran_out:
            raise LoadError(f"{path}: the file is truncated (it ends in the middle of {what})") from None
        raise LoadError(f"{path}: not readable as {what} ({type(e).__name__}: {e})") from None
