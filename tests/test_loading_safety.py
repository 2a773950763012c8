"""Hostile and broken files: always a LoadError that names the problem, and nothing from the file runs."""

from __future__ import annotations

import os
import pickle
import sys
import types
from pathlib import Path

import pytest
import torch
from conftest import fixtures_dir

from explorer.engine import LoadError, load_model


class _Payload:
    """Pickles as a call to os.system that would create a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _fake_module(name: str, **attrs) -> types.ModuleType:
    """A stand-in module so `pickle` can name foreign globals the way real checkpoints do."""
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        value.__module__, value.__qualname__ = name, key
        setattr(mod, key, value)
    return mod


@pytest.fixture
def foreign_modules(monkeypatch):
    """Make `torch_utils.persistence` and `dnnlib.tflib.network` importable while pickling."""

    def _reconstruct_persistent_obj(meta):  # never called: only its name is pickled
        raise AssertionError

    class Network:  # TF network stand-in: pickles its __dict__ as state
        pass

    mods = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": _fake_module("torch_utils.persistence",
                                                _reconstruct_persistent_obj=_reconstruct_persistent_obj),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.tflib": types.ModuleType("dnnlib.tflib"),
        "dnnlib.tflib.network": _fake_module("dnnlib.tflib.network", Network=Network),
    }
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return mods


class _Persistent:
    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        recon = sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj
        return (recon, (dict(type="class", version=6, module_src="", class_name="Generator", state=self.state),))


def _assert_refused(path: Path, marker: Path, *words: str) -> None:
    with pytest.raises(LoadError) as err:
        load_model(path)
    msg = str(err.value)
    assert str(path) in msg
    for word in words:
        assert word in msg, msg
    assert not marker.exists(), "the payload ran"


def test_nvidia_pickle_with_os_system_is_refused(tmp_path, foreign_modules):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    state = {"_parameters": {}, "_buffers": {}, "_modules": {}, "_init_kwargs": {"hook": _Payload(marker)}}
    path.write_bytes(pickle.dumps({"G_ema": _Persistent(state)}, protocol=4))
    _assert_refused(path, marker, "posix.system", "refused")


def test_tf_pickle_with_os_system_is_refused(tmp_path, foreign_modules):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_tf.pkl"
    net = foreign_modules["dnnlib.tflib.network"].Network()
    net.__dict__.update(version=4, name="G", static_kwargs={}, components={}, build_func_name="G_main",
                        variables=[("x", _Payload(marker))])
    path.write_bytes(pickle.dumps(net, protocol=4))
    _assert_refused(path, marker, "posix.system", "refused")


def test_torch_file_with_os_system_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {"w": _Payload(marker)}}, path)
    _assert_refused(path, marker, "refused")


def test_plain_pickle_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil2.pkl"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    _assert_refused(path, marker, "not of a checkpoint format")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ("empty",)),
        (b"hello, I am a text file\n", ("not a checkpoint",)),
        (pickle.dumps({"a": 1}, protocol=4), ("not of a checkpoint format",)),
    ],
)
def test_not_a_checkpoint(tmp_path, content, words):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    _assert_refused(path, tmp_path / "none", *words)


def test_missing_file(tmp_path):
    _assert_refused(tmp_path / "nope.pkl", tmp_path / "none", "cannot read")


@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_truncated_nvidia_pickle(tmp_path, fraction):
    data = (fixtures_dir() / "nvidia/stylegan3-t-32/model.pkl").read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: int(len(data) * fraction)])
    _assert_refused(path, tmp_path / "none", "truncated")


def test_truncated_torch_file(tmp_path):
    data = (fixtures_dir() / "community/rosinality_sg2_train_32/model.pt").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    _assert_refused(path, tmp_path / "none", "not a readable torch file")


def test_pickle_without_generator(tmp_path, foreign_modules):
    path = tmp_path / "nogen.pkl"
    disc = _Persistent({"_parameters": {}, "_buffers": {}, "_modules": {}})
    blob = pickle.dumps({"D": disc}, protocol=4).replace(b"Generator", b"Discrimin")
    path.write_bytes(blob)
    _assert_refused(path, tmp_path / "none", "no generator")


def test_named_networks():
    path = fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl"
    assert load_model(path).info.network == "G_ema"
    g = load_model(path, network="G")
    assert g.info.network == "G"
    assert not torch.equal(g.generator.mapping.fc0.weight, load_model(path).generator.mapping.fc0.weight)
    with pytest.raises(LoadError, match="Discriminator, not a generator"):
        load_model(path, network="D")
    with pytest.raises(LoadError, match="no network 'X'.*G_ema"):
        load_model(path, network="X")
