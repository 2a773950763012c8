"""Malformed and randomly corrupted checkpoints of every format: `load_model` answers with a LoadError that names
the file and what is wrong, never with another exception, and never hangs.

The malformed files are genuine fixtures read as data by the project's own safe readers, changed in one place and
written back in their container. The fuzz mutates the fixtures' bytes, mostly where their structure is (pickle
opcodes, zip headers, the first KB), also anywhere.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import pickletools
import random
import re
import signal
import sys
import threading
import time
import types
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import fixtures_dir

from explorer.engine import LoadError, load_model
from explorer.engine.formats import native, nvidia_pickle, pgan_zoo, read_checkpoint, sniff, tf_pickle, torch_files
from explorer.engine.formats.safe_pickle import restricted_load

pytestmark = pytest.mark.usefixtures("one_thread")

NVIDIA = "nvidia/stylegan2-ada-32/model.pkl"
NVIDIA_SG3 = "nvidia/stylegan3-t-32/model.pkl"
TF_PROGAN = "tf/progan_32/model.pkl"
TF_SG1 = "tf/stylegan1_32/model.pkl"
TF_SG2 = "tf/stylegan2_32/model.pkl"
ROS_SG2 = "community/rosinality_sg2_convert_64/model.pt"         # legacy torch file
ROS_SG2_TRAIN = "community/rosinality_sg2_train_32/model.pt"     # zip, with train.py's argparse Namespace
ROS_SG1 = "community/rosinality_sg1_grunning_128/model.model"   # zip, a bare state dict
ROS_SG1_STEP = "community/rosinality_sg1_trainstep_32/model.model"  # legacy, a train_step dict
PGAN = "community/facebook_pgan_16/model.pth"                   # legacy, with a pickled config object
AKANIMAX = "community/akanimax_progan_32/model.bin"               # zip
NATIVE = "native"  # the project's own format: `native_file` converts TF_SG2 into it
ALL_FILES = (NVIDIA, NVIDIA_SG3, TF_PROGAN, TF_SG1, TF_SG2, ROS_SG2, ROS_SG2_TRAIN, ROS_SG1, ROS_SG1_STEP, PGAN,
             AKANIMAX, NATIVE)

FUZZ_MUTATIONS = int(os.environ.get("EXPLORER_FUZZ_MUTATIONS", "300"))  # per file, ~70 s for all; more searches longer
LOAD_LIMIT_S = 5.0  # a fixture loads in well under a second; a mutant taking this long counts as a hang

# Foreign globals the formats pickle (and the project's readers map to stand-ins of their own).
PERSISTENT_OBJ = "torch_utils.persistence._reconstruct_persistent_obj"  # NVIDIA: every module is a call of it
TF_NETWORK_CLASS = "dnnlib.tflib.network.Network"
PGAN_CONFIG_CLASS = "models.utils.config.BaseConfig"
TF_STUB = tf_pickle.ALLOWED[TF_NETWORK_CLASS]  # the TF reader's stand-in for a network


@pytest.fixture(scope="module")
def native_file(tmp_path_factory) -> Path:
    """A file in the project's own format, written by `native.save` as `explorer` itself writes them."""
    path = tmp_path_factory.mktemp("native") / "model.pt"
    native.save(read_checkpoint(fixtures_dir() / TF_SG2), path)
    return path


@pytest.fixture(scope="module")
def source(native_file) -> Callable[[str], Path]:
    """name in ALL_FILES -> the genuine file."""
    return lambda name: native_file if name == NATIVE else fixtures_dir() / name


def _assert_load_error(path: Path, *words: str) -> str:
    """Load `path`: a LoadError naming the file and every one of `words` (case-insensitive) must come out."""
    with pytest.raises(LoadError) as err:
        load_model(path)
    msg = str(err.value)
    assert str(path) in msg, msg
    problem = msg.replace(str(path), "").lower()  # the words must be in what is said about the file, not its path
    for word in words:
        assert word.lower() in problem, f"{word!r} not in: {msg}"
    return msg


# --- Malformed files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.98])
@pytest.mark.parametrize("name", ALL_FILES)
def test_truncated(tmp_path, source, name, fraction):
    """A file cut short, in its structure (2 %) or in its tensor data: the message says it is truncated."""
    data = source(name).read_bytes()
    path = tmp_path / f"cut{source(name).suffix}"
    path.write_bytes(data[: int(len(data) * fraction)])
    _assert_load_error(path, "truncated")


# Writing the fixtures' content back: the project's stand-ins (records of foreign objects) become objects that pickle
# under the foreign names the original code wrote, registered in sys.modules only while pickling.

_FOREIGN: dict[str, type] = {}


def _foreign(ref: str) -> type:
    """A class that pickles as the foreign global `ref` ('module.name') while `_foreign_names` is active."""
    if ref not in _FOREIGN:
        module, name = ref.rsplit(".", 1)
        _FOREIGN[ref] = type(name, (), {"__module__": module, "__qualname__": name})
    return _FOREIGN[ref]


@contextlib.contextmanager
def _foreign_names() -> Iterator[None]:
    """Make every `_foreign` class importable under its foreign name (stand-in modules where needed), so that
    `pickle` can name it."""
    with pytest.MonkeyPatch.context() as mp:
        for ref, cls in _FOREIGN.items():
            parts = ref.split(".")
            for module in (".".join(parts[:i]) for i in range(1, len(parts))):
                if module not in sys.modules:
                    mp.setitem(sys.modules, module, types.ModuleType(module))
            mp.setattr(sys.modules[".".join(parts[:-1])], parts[-1], cls, raising=False)
        yield


class _Call:
    """Pickles as a call of the foreign callable `ref` with `args` (how NVIDIA's persistent modules are written)."""

    def __init__(self, ref: str, *args: Any):
        self.func, self.args = _foreign(ref), args

    def __reduce__(self):
        return self.func, self.args


def _foreign_object(ref: str, state: Mapping) -> Any:
    """An object of the foreign class `ref` whose pickled state is `state`."""
    obj = _foreign(ref)()
    obj.__dict__.update(state)
    return obj


def _as_written(value: Any) -> Any:
    """The data as the original code pickled it: the project's stand-ins back to the foreign classes, recursively."""
    if isinstance(value, nvidia_pickle.ModuleRecord):
        meta = dict(type="class", version=6, module_src="", class_name=value.class_name, state=_as_written(value.state))
        return _Call(PERSISTENT_OBJ, meta)
    if isinstance(value, TF_STUB):
        return _foreign_object(TF_NETWORK_CLASS, _as_written(value.state))
    if isinstance(value, pgan_zoo.PGANConfig):
        return _foreign_object(PGAN_CONFIG_CLASS, value.values)
    if isinstance(value, OrderedDict):
        return OrderedDict((k, _as_written(v)) for k, v in value.items())
    if isinstance(value, dict):  # RecordDict (EasyDict) included
        return {k: _as_written(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_as_written(v) for v in value)
    return value


def _variant(tmp_path: Path, source: Path, edit: Callable[[Any], Any]) -> Path:
    """`source`'s content read as data, changed by `edit`, written back in the same container (NVIDIA or TF pickle,
    or torch file)."""
    data = source.read_bytes()
    kind = sniff(data)
    if kind == "nvidia":
        obj = restricted_load(source, "", allowed=nvidia_pickle.ALLOWED, prefixes=nvidia_pickle.PREFIXES)
    elif kind == "tf":
        obj = restricted_load(source, "", allowed=tf_pickle.ALLOWED)
    else:
        obj = torch_files.torch_load(source, data, torch_files.SAFE_GLOBALS)
    edit(obj)
    return _write(_as_written(obj), tmp_path / f"variant{source.suffix}", torch_file=kind == "torch")


def _write(obj: Any, path: Path, torch_file: bool = False) -> Path:
    """`obj` as a torch file or a pickle, its stand-ins named as the foreign globals they stand for."""
    with _foreign_names():
        if torch_file:
            torch.save(obj, path)
        else:
            path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def _state(record: Any, module: str = "") -> dict:
    """The pickled `__dict__` of an NVIDIA record or TF network, or of its submodule / component `module` (dotted)."""
    state = record.state
    for part in filter(None, module.split(".")):
        state = (state.get("_modules") or state["components"])[part].state
    return state


def _g_ema(obj: dict, module: str = "") -> dict:
    """NVIDIA: the state of G_ema or of its submodule `module`."""
    return _state(obj["G_ema"], module)


def _gs(obj: tuple, component: str = "") -> dict:
    """TF: the state of Gs (the averaged generator of a (G, D, Gs) snapshot) or of its `component`."""
    return _state(obj[2], component)


def _edit(table: Mapping | list, key: str, rename: str | None = None,
          change: Callable[[Any], Any] | None = None) -> None:
    """Rename the entry `key` of a state dict or of a TF variable list [(name, array)] and/or change its value,
    in place and keeping the order."""
    items = list(table.items()) if isinstance(table, Mapping) else list(table)
    i = next(i for i, (k, _) in enumerate(items) if k == key)
    value = items[i][1]
    items[i] = (rename or key, change(value) if change else value)
    if isinstance(table, Mapping):
        table.clear()
        table.update(items)
    else:
        table[:] = items


def _grown(a: Any) -> Any:
    """Zeros of `a`'s rank and type, one longer in the first dimension."""
    shape = (a.shape[0] + 1, *a.shape[1:])
    return np.zeros(shape, a.dtype) if isinstance(a, np.ndarray) else torch.zeros(shape, dtype=a.dtype)


def _scalar(a: Any) -> Any:
    """A 0-d array of `a`'s type: the wrong rank for any weight."""
    return np.zeros((), a.dtype) if isinstance(a, np.ndarray) else torch.zeros((), dtype=a.dtype)


def _emptied(a: Any) -> Any:
    """`a` with none of its first dimension: a width of 0 where one is read from the shape."""
    return a[:0]


def _case(file: str, what: str, edit: Callable[[Any], Any], *words: str):
    """A malformed variant of `file` made by `edit`; the LoadError must name the file and contain `words`."""
    return pytest.param(file, edit, words, id=f"{file.split('/')[1] if '/' in file else file}-{what}")


MALFORMED = [
    # NVIDIA persistence pickles: the records of G_ema and its submodules.
    _case(NVIDIA, "no-init-kwargs", lambda o: _g_ema(o).pop("_init_kwargs"),
          "'G_ema'", "constructor arguments"),
    _case(NVIDIA, "init-kwargs-not-dict", lambda o: _g_ema(o).update(_init_kwargs=[512, 512]),
          "_init_kwargs of a pickled Generator is a list"),
    _case(NVIDIA, "parameters-not-dict", lambda o: _g_ema(o, "mapping.fc0").update(_parameters=[1.0]),
          "_parameters of a pickled FullyConnectedLayer is a list"),
    _case(NVIDIA, "modules-not-dict", lambda o: _g_ema(o, "mapping").update(_modules=3),
          "_modules of a pickled MappingNetwork is a int"),
    _case(NVIDIA, "synthesis-kwargs-not-dict", lambda o: _g_ema(o)["_init_kwargs"].update(synthesis_kwargs=[8]),
          "'G_ema' records its synthesis_kwargs as a list, not a dict"),
    _case(NVIDIA, "z-dim-zero", lambda o: _g_ema(o)["_init_kwargs"].update(z_dim=0),
          "'G_ema' does not fit a stylegan2 generator", "division by zero"),
    _case(NVIDIA, "unknown-tensor", lambda o: _g_ema(o, "mapping.fc0")["_parameters"].update(extra=torch.zeros(3)),
          "'G_ema'", "unexpected", "mapping.fc0.extra"),
    _case(NVIDIA, "renamed-tensor", lambda o: _edit(_g_ema(o, "mapping.fc0")["_parameters"], "weight", "weigth"),
          "missing", "mapping.fc0.weight", "unexpected", "mapping.fc0.weigth"),
    _case(NVIDIA, "shape", lambda o: _edit(_g_ema(o, "mapping.fc0")["_parameters"], "weight", change=_grown),
          "size mismatch for mapping.fc0.weight", "shape"),
    _case(NVIDIA_SG3, "rank", lambda o: _edit(_g_ema(o, "synthesis.input")["_buffers"], "freqs", change=_scalar),
          "size mismatch for synthesis.input.freqs", "shape"),
    # TF pickles: Gs and its components.
    _case(TF_SG2, "variables-not-list", lambda o: _gs(o, "mapping").update(variables=5),
          "Gs/mapping: its 'variables' is a int, not a list"),
    _case(TF_SG1, "components-not-dict", lambda o: _gs(o).update(components=["mapping"]),
          "Gs: its 'components' is a list, not a dict"),
    _case(TF_PROGAN, "static-kwargs-not-dict", lambda o: _gs(o).update(static_kwargs=[1]),
          "Gs: its 'static_kwargs' is a list, not a dict"),
    _case(TF_SG2, "version-not-int", lambda o: _gs(o).update(version="4"),
          "Gs: its 'version' is a str, not a int"),
    _case(TF_SG1, "static-kwargs-key-not-name", lambda o: _gs(o, "mapping")["static_kwargs"].update({(64, 128): 1}),
          "Gs/mapping: its static_kwargs are damaged: a key (64, 128) that is not a name"),
    _case(TF_PROGAN, "unknown-variable", lambda o: _gs(o)["variables"].append(("8x8/Extra/weight", np.zeros(3))),
          "variables this program does not know how to use: 8x8/Extra/weight"),
    _case(TF_SG2, "unknown-variable", lambda o: _gs(o, "mapping")["variables"].append(("Dense0/extra", np.zeros(3))),
          "G_mapping has variables this program does not know how to use: Dense0/extra"),
    _case(TF_SG1, "renamed-variable", lambda o: _edit(_gs(o, "synthesis")["variables"], "8x8/Conv1/bias", "8x8/C/b"),
          "G_synthesis has no variable '8x8/Conv1/bias'"),
    _case(TF_PROGAN, "shape", lambda o: _edit(_gs(o)["variables"], "8x8/Conv1/weight", change=_grown),
          "size mismatch for synthesis.b8.conv1.weight", "shape"),
    _case(TF_SG1, "shape", lambda o: _edit(_gs(o, "synthesis")["variables"], "8x8/Conv1/StyleMod/weight",
                                           change=_grown),
          "size mismatch for synthesis.b8.conv1.affine.weight", "shape"),
    _case(TF_SG2, "rank", lambda o: _edit(_gs(o, "synthesis")["variables"], "8x8/Conv1/weight", change=_scalar),
          "G_synthesis's variable '8x8/Conv1/weight' has shape []"),
    _case(TF_PROGAN, "rank", lambda o: _edit(_gs(o)["variables"], "4x4/Dense/bias", change=_scalar),
          "Gs's variable '4x4/Dense/bias' has shape []"),
    # rosinality StyleGAN2.
    _case(ROS_SG2, "g-ema-not-dict", lambda o: o.update(g_ema=list(o["g_ema"].values())),
          "not a generator checkpoint", "g_ema (list)"),
    _case(ROS_SG2_TRAIN, "g-ema-not-dict", lambda o: o.update(g_ema="weights"),
          "g_ema: a state dict was expected, found a str"),
    _case(ROS_SG2_TRAIN, "unknown-tensor", lambda o: o["g_ema"].update({"convs.0.extra": torch.zeros(3)}),
          "g_ema has tensors this program does not know how to use: convs.0.extra"),
    _case(ROS_SG2, "renamed-tensor", lambda o: _edit(o["g_ema"], "to_rgbs.0.bias", "to_rgbs.0.b"),
          "g_ema has no tensor 'to_rgbs.0.bias'"),
    _case(ROS_SG2, "shape", lambda o: _edit(o["g_ema"], "convs.0.conv.modulation.weight", change=_grown),
          "size mismatch for synthesis.b8.conv0.affine.weight", "shape"),
    _case(ROS_SG2_TRAIN, "rank", lambda o: _edit(o["g_ema"], "convs.1.conv.weight", change=_scalar),
          "g_ema's tensor 'convs.1.conv.weight' has shape []"),
    _case(ROS_SG2_TRAIN, "args-size", lambda o: setattr(o["args"], "size", 64),
          "the training arguments say size=64, the weights 32"),
    _case(ROS_SG2_TRAIN, "args-size-not-int", lambda o: setattr(o["args"], "size", "big"),
          "the training arguments say size='big'"),
    # rosinality StyleGAN (1).
    _case(ROS_SG1_STEP, "g-running-not-dict", lambda o: o.update(g_running=7),
          "'g_running' (int) is not a generator state dict"),
    _case(ROS_SG1, "unknown-tensor", lambda o: o.update({"generator.progression.0.extra": torch.zeros(3)}),
          "g_running has tensors this program does not know how to use: generator.progression.0.extra"),
    _case(ROS_SG1, "shape", lambda o: _edit(o, "generator.progression.1.adain1.style.linear.weight_orig",
                                            change=_grown),
          "size mismatch for synthesis.b8.conv0.affine.weight", "shape"),
    _case(ROS_SG1, "empty-tensor", lambda o: _edit(o, "generator.progression.2.conv2.conv.weight_orig",
                                                   change=_emptied),
          "g_running's tensor 'generator.progression.2.conv2.conv.weight_orig' has shape [0, 16, 3, 3], with no "
          "elements"),
    _case(ROS_SG1_STEP, "rank", lambda o: _edit(o["g_running"], "style.1.linear.weight_orig", change=_scalar),
          "g_running's tensor 'style.1.linear.weight_orig' has shape []"),
    # pytorch_GAN_zoo PGAN.
    _case(PGAN, "avgG-not-dict", lambda o: o.update(avgG=[1, 2]),
          "avgG: a state dict was expected, found a list"),
    _case(PGAN, "config-not-number", lambda o: o["config"].values.update(alpha="half"),
          "config has alpha='half', not a number"),
    _case(PGAN, "unknown-tensor", lambda o: o["avgG"].update({"scaleLayers.0.2.module.weight": torch.zeros(3)}),
          "avgG has tensors this program does not know how to use: scaleLayers.0.2.module.weight"),
    _case(PGAN, "shape", lambda o: _edit(o["avgG"], "scaleLayers.0.1.module.weight", change=_grown),
          "size mismatch for synthesis.b8.conv1.weight", "shape"),
    _case(PGAN, "rank", lambda o: _edit(o["avgG"], "formatLayer.module.weight", change=_scalar),
          "avgG's tensor 'formatLayer.module.weight' has shape []"),
    # akanimax pro_gan_pytorch.
    _case(AKANIMAX, "network-not-dict", lambda o: o.update(shadow_generator=None),
          "network 'shadow_generator' is a NoneType"),
    _case(AKANIMAX, "state-dict-not-dict", lambda o: o["shadow_generator"].update(state_dict="weights"),
          "shadow_generator: a state dict was expected, found a str"),
    _case(AKANIMAX, "unknown-tensor",
          lambda o: o["shadow_generator"]["state_dict"].update({"rgb_converters.0.extra": torch.zeros(3)}),
          "shadow_generator has tensors this program does not know how to use: rgb_converters.0.extra"),
    _case(AKANIMAX, "renamed-tensor", lambda o: _edit(o["shadow_generator"]["state_dict"], "rgb_converters.1.bias",
                                                      "rgb_converters.1.b"),
          "shadow_generator has no tensor 'rgb_converters.1.bias'"),
    _case(AKANIMAX, "shape", lambda o: _edit(o["shadow_generator"]["state_dict"], "layers.1.conv_1.weight",
                                             change=_grown),
          "size mismatch for synthesis.b8.conv0.weight", "shape"),
    _case(AKANIMAX, "rank", lambda o: _edit(o["shadow_generator"]["state_dict"], "layers.0.conv_1.weight",
                                            change=_scalar),
          "shadow_generator's tensor 'layers.0.conv_1.weight' has shape []"),
    # The project's own format.
    _case(NATIVE, "config-not-json", lambda o: o.update(config="{z_dim: 64"), "config that is not JSON"),
    _case(NATIVE, "unknown-family", lambda o: o.update(family="styleganr"), "unknown network family 'styleganr'"),
    _case(NATIVE, "notes-not-list", lambda o: o.update(notes=3), "its notes are a int, not a list"),
    _case(NATIVE, "state-dict-not-dict", lambda o: o.update(state_dict=[1, 2]), "state_dict", "list"),
    _case(NATIVE, "unknown-tensor", lambda o: o["state_dict"].update({"synthesis.extra": torch.zeros(3)}),
          "unexpected", "synthesis.extra"),
    _case(NATIVE, "shape", lambda o: _edit(o["state_dict"], "mapping.fc0.weight", change=_grown),
          "size mismatch for mapping.fc0.weight", "shape"),
]


@pytest.mark.parametrize(("name", "edit", "words"), MALFORMED)
def test_malformed(tmp_path, source, name, edit, words):
    """Wrong structure, unknown or renamed entries, mismatched shapes: the message names the file and the problem."""
    _assert_load_error(_variant(tmp_path, source(name), edit), *words)


def test_values_that_contain_themselves(tmp_path):
    """A pickle can make a dict hold itself, or a network be its own component: refused, never followed forever."""
    kwargs: dict = {"z_dim": 8}
    kwargs["itself"] = kwargs
    meta = dict(type="class", version=6, module_src="", class_name="Generator", state={"_init_kwargs": kwargs})
    _assert_load_error(_write({"G_ema": _Call(PERSISTENT_OBJ, meta)}, tmp_path / "nvidia.pkl"),
                       "_init_kwargs of a pickled Generator", "contains itself")

    def network(**state) -> Any:
        return _foreign_object(TF_NETWORK_CLASS, dict(name="Gs", build_func_name="G_main", variables=[], **state))

    _assert_load_error(_write(network(static_kwargs=kwargs), tmp_path / "tf_kwargs.pkl"),
                       "Gs: its static_kwargs are damaged: a value contains itself")
    gs = network(static_kwargs={})
    gs.components = {"mapping": gs}
    path = _write(gs, tmp_path / "tf_components.pkl")
    _assert_load_error(path, "Gs/mapping: a network that is a component of itself")


@pytest.mark.parametrize("name", [NVIDIA, TF_SG2, PGAN, ROS_SG2_TRAIN])
def test_unedited_variant_loads_as_the_original(tmp_path, source, name):
    """The variant writer itself changes nothing: so each malformed variant differs only by its edit."""
    ours, original = (load_model(path).generator.state_dict()
                      for path in (_variant(tmp_path, source(name), lambda o: None), source(name)))
    assert ours.keys() == original.keys()
    assert all(torch.equal(ours[k], original[k]) for k in ours)


# --- Fuzz -------------------------------------------------------------------------------------------------------


class _Hang(BaseException):
    """Raised in a load that runs past LOAD_LIMIT_S; a BaseException, so no `except Exception` in a reader eats it."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block with _Hang after `seconds` (where SIGALRM exists and this is the main thread)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise _Hang

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _opcode_offsets(data: bytes, start: int = 0, streams: int = 8) -> list[int]:
    """Where the opcodes of the pickle streams from `start` begin (a legacy torch file is several streams in a row,
    then raw storage bytes)."""
    offsets: list[int] = []
    f = io.BytesIO(data)
    f.seek(start)
    with contextlib.suppress(ValueError):  # the end of the last stream
        for _ in range(streams):
            offsets += [start + pos for _op, _arg, pos in pickletools.genops(f)]
            start = f.tell()
    return offsets


class _Target:
    """A fixture's bytes and where their structure lies; `mutant(seed)` is one reproducible corruption of them."""

    PICKLE_MEMBER = re.compile(r"(.*/)?data\.pkl")

    def __init__(self, data: bytes):
        self.data = data
        self.member: zipfile.ZipInfo | None = None
        if data.startswith(torch_files.ZIP_MAGIC):  # fuzz the pickle member (re-zipped), and the zip itself
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                self.member = next(i for i in z.infolist() if self.PICKLE_MEMBER.fullmatch(i.filename))
                self.stream = z.read(self.member)
            self.container = [m.start() for m in re.finditer(rb"PK(\x01\x02|\x03\x04|\x05\x06)", data)]
        else:
            self.stream = data
        self.opcodes = _opcode_offsets(self.stream)

    def mutant(self, seed: int) -> tuple[bytes, str]:
        """(bytes, what was done) for `seed`."""
        rng = random.Random(seed)
        if self.member is not None and rng.random() < 0.25:
            out, what = _mutate(self.data, self.container, rng)
            return out, f"zip container: {what}"
        out, what = _mutate(self.stream, self.opcodes, rng)
        if self.member is None:
            return out, what
        return self._rezip(out), f"{self.member.filename}: {what}"

    def _rezip(self, stream: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(self.data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, stream if info.filename == self.member.filename else src.read(info))
        return buf.getvalue()


def _mutate(data: bytes, structure: list[int], rng: random.Random) -> tuple[bytes, str]:
    """One random corruption: a byte flip, an overwritten run, an insertion, a deletion or a truncation, at a
    structural offset (half the time), in the first 4 KB (a quarter) or anywhere."""
    where = rng.random()
    if where < 0.5 and structure:
        pos = min(rng.choice(structure) + rng.randrange(6), len(data) - 1)
    elif where < 0.75:
        pos = rng.randrange(min(len(data), 4096))
    else:
        pos = rng.randrange(len(data))
    kind = rng.choice(("flip", "overwrite", "insert", "delete", "truncate"))
    n = rng.randint(1, 16)
    junk = bytes(rng.randrange(256) for _ in range(n))
    if kind == "flip":
        out = data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1:]
    elif kind == "overwrite":
        out = data[:pos] + junk + data[pos + n:]
    elif kind == "insert":
        out = data[:pos] + junk + data[pos:]
    elif kind == "delete":
        out = data[:pos] + data[pos + n:]
    else:
        out = data[:pos]
    return out, f"{kind} at {pos}" + (f" ({n} bytes)" if kind in ("overwrite", "insert", "delete") else "")


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch comments on some damaged pickles before refusing them
@pytest.mark.parametrize("name", ALL_FILES)
def test_fuzz(tmp_path, source, name):
    """Corrupted copies of a fixture: each loads (a change inside tensor data is harmless) or raises a LoadError
    naming the file, within LOAD_LIMIT_S; anything else fails with the seed that reproduces it
    (`_Target(data).mutant(seed)`)."""
    target = _Target(source(name).read_bytes())
    path = tmp_path / f"mutant{source(name).suffix}"
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    start = time.perf_counter()
    for seed in range(FUZZ_MUTATIONS):
        data, what = target.mutant(seed)
        path.write_bytes(data)
        try:
            with _time_limit(LOAD_LIMIT_S):
                load_model(path)
            outcomes["loaded"] += 1
        except LoadError as e:
            outcomes["LoadError"] += 1
            if str(path) not in str(e):
                failures.append(f"seed {seed} ({what}): the message does not name the file: {e}")
        except _Hang:
            failures.append(f"seed {seed} ({what}): no answer within {LOAD_LIMIT_S} s")
        except Exception as e:  # noqa: BLE001 - what the test is looking for
            failures.append(f"seed {seed} ({what}): {type(e).__name__}: {e}")
    elapsed = time.perf_counter() - start
    print(f"\nfuzz {name}: {FUZZ_MUTATIONS} mutants in {elapsed:.1f} s: {dict(outcomes)}")
    assert not failures, f"{name}: {len(failures)} of {FUZZ_MUTATIONS} mutants escaped:\n" + "\n".join(failures[:20])
