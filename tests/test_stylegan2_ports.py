"""StyleGAN2 from other code bases: rosinality's torch checkpoints and NVlabs' TF pickles."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from conftest import fixtures_dir

from explorer.engine import load_model
from explorer.engine.errors import LoadError
from explorer.engine.formats import native, read_checkpoint
from explorer.engine.networks import build_generator
from explorer.engine.networks.stylegan2 import channel_kwargs

CHANNELS = {4: 8, 8: 6, 16: 4}  # a table that channel_base // res cannot express
W_DIM = 8
N_MLP = 2
PAYLOAD_RAN: list = []


def _mark_ran(*args):
    PAYLOAD_RAN.append(args)
    return argparse.Namespace()


class _Payload:
    """Unpickles by calling `_mark_ran`: a stand-in for code hidden in a checkpoint."""

    def __reduce__(self):
        return (_mark_ran, ("the payload ran",))


def _rosinality_state(seed: int, channels: dict[int, int] = CHANNELS) -> dict[str, torch.Tensor]:
    """A random generator state dict in rosinality's stylegan2-pytorch layout."""
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(shape, generator=gen)

    def kernel():
        k = torch.tensor([1.0, 2.0 + torch.rand([], generator=gen).item(), 2.0, 1.0])
        k = k + k.flip(0)  # symmetric, not the default [1, 3, 3, 1]
        return torch.outer(k, k) / k.sum() ** 2 * 4

    def styled(prefix, cin, cout, up=False):
        sd[f"{prefix}.conv.weight"] = rnd(1, cout, cin, 3, 3)
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = kernel()
        sd[f"{prefix}.conv.modulation.weight"] = rnd(cin, W_DIM)
        sd[f"{prefix}.conv.modulation.bias"] = 1 + 0.1 * rnd(cin)
        sd[f"{prefix}.noise.weight"] = 0.1 * rnd(1)
        sd[f"{prefix}.activate.bias"] = 0.1 * rnd(cout)

    def to_rgb(prefix, cin, up=False):
        sd[f"{prefix}.bias"] = 0.1 * rnd(1, 3, 1, 1)
        if up:
            sd[f"{prefix}.upsample.kernel"] = kernel()
        sd[f"{prefix}.conv.weight"] = rnd(1, 3, cin, 1, 1)
        sd[f"{prefix}.conv.modulation.weight"] = rnd(cin, W_DIM)
        sd[f"{prefix}.conv.modulation.bias"] = 1 + 0.1 * rnd(cin)

    sd: dict[str, torch.Tensor] = {}
    for i in range(1, N_MLP + 1):
        sd[f"style.{i}.weight"] = rnd(W_DIM, W_DIM) * 100  # stored / lr_mul, as rosinality initialises
        sd[f"style.{i}.bias"] = rnd(W_DIM)
    res = sorted(channels)
    sd["input.input"] = rnd(1, channels[4], 4, 4)
    styled("conv1", channels[4], channels[4])
    to_rgb("to_rgb1", channels[4])
    for j, r in enumerate(res[1:]):
        styled(f"convs.{2 * j}", channels[r // 2], channels[r], up=True)
        styled(f"convs.{2 * j + 1}", channels[r], channels[r])
        to_rgb(f"to_rgbs.{j}", channels[r], up=True)
    sizes = [4] + [r for r in res[1:] for _ in range(2)]
    for i, r in enumerate(sizes):
        sd[f"noises.noise_{i}"] = rnd(1, 1, r, r)
    return sd


def _train_checkpoint(tmp_path, args=None, **extra):
    """A rosinality train.py-style checkpoint file: g, g_ema and the argparse args."""
    if args is None:
        args = argparse.Namespace(size=max(CHANNELS), latent=W_DIM, n_mlp=N_MLP, channel_multiplier=2,
                                  arch="stylegan2")
    path = tmp_path / "train.pt"
    torch.save({"g": _rosinality_state(1), "g_ema": _rosinality_state(2), "args": args, "ada_aug_p": 0.0,
                **extra}, path)
    return path


def _render(model, seed=0):
    z = np.random.RandomState(seed).randn(2, model.info.z_dim).astype(np.float32)
    return model.synthesize(model.map(z, truncation_psi=0.7))


# --- rosinality: networks, arguments and safety --------------------------------------------------


def test_rosinality_default_and_named_network(tmp_path):
    path = _train_checkpoint(tmp_path)
    default = load_model(path)
    assert default.info.network == "g_ema"
    assert default.info.networks == ("g_ema", "g")
    assert default.info.source == "rosinality-stylegan2-pytorch"
    assert default.info.source_format == "rosinality-train-checkpoint"
    assert (default.info.resolution, default.info.z_dim, default.info.w_dim, default.info.num_ws) == (16, 8, 8, 6)
    g = load_model(path, network="g")
    assert g.info.network == "g"
    assert not torch.equal(_render(default), _render(g))
    assert torch.equal(_render(default), _render(load_model(path, network="g_ema")))


def test_rosinality_unknown_network_lists_what_exists(tmp_path):
    path = _train_checkpoint(tmp_path)
    with pytest.raises(LoadError, match=r"'d'.*g_ema, g"):
        load_model(path, network="d")


def test_rosinality_args_must_agree_with_weights(tmp_path):
    args = argparse.Namespace(size=32, latent=W_DIM, n_mlp=N_MLP, channel_multiplier=2)
    with pytest.raises(LoadError, match="size=32"):
        load_model(_train_checkpoint(tmp_path, args=args))


def test_rosinality_other_pickled_class_is_refused_and_not_run(tmp_path):
    path = _train_checkpoint(tmp_path, extra_object=_Payload())
    with pytest.raises(LoadError, match="refused"):
        load_model(path)
    assert PAYLOAD_RAN == []


def test_rosinality_wrong_resolution_is_refused(tmp_path):
    with pytest.raises(LoadError, match="16x16"):
        load_model(_train_checkpoint(tmp_path), resolution=32)


def test_rosinality_w_avg_estimate_is_deterministic_and_flagged(tmp_path):
    path = _train_checkpoint(tmp_path)
    a, b = load_model(path), load_model(path)
    assert a.info.w_avg_estimated and b.info.w_avg_estimated
    assert any("average w" in note for note in a.info.notes)
    assert torch.equal(a.w_avg, b.w_avg)
    z = torch.randn([20000, a.info.z_dim], generator=torch.Generator().manual_seed(123))
    w = a.map(z)[:, 0]
    assert torch.allclose(a.w_avg, w.mean(dim=0), atol=5 * float(w.std(dim=0).max()) / 100)


def test_rosinality_stored_latent_avg_is_used(tmp_path):
    latent_avg = torch.arange(W_DIM, dtype=torch.float32)
    path = tmp_path / "converted.pt"
    torch.save({"g_ema": _rosinality_state(3), "latent_avg": latent_avg}, path)
    model = load_model(path)
    assert not model.info.w_avg_estimated
    assert model.info.source_format == "rosinality-convert-weight"
    assert torch.equal(model.w_avg, latent_avg)


def test_rosinality_unknown_tensor_is_refused(tmp_path):
    sd = _rosinality_state(4)
    sd["convs.0.conv.extra"] = torch.zeros(1)
    path = tmp_path / "odd.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(W_DIM)}, path)
    with pytest.raises(LoadError, match="convs.0.conv.extra"):
        load_model(path)


def test_rosinality_config_rebuilds_through_json_and_native_format(tmp_path):
    ckpt = read_checkpoint(_train_checkpoint(tmp_path))
    assert ckpt.config["block_channels"] == {str(k): v for k, v in CHANNELS.items()}
    rebuilt = build_generator("stylegan2", json.loads(json.dumps(ckpt.config)))
    rebuilt.load_state_dict(ckpt.generator.state_dict(), strict=True)
    native.save(ckpt, tmp_path / "ours.pt")
    ours = load_model(tmp_path / "ours.pt")
    assert torch.equal(_render(ours), _render(load_model(tmp_path / "train.pt")))


def test_channel_kwargs():
    assert channel_kwargs({res: min(32768 // res, 512) for res in (4, 8, 16, 32, 64, 128, 256)}) == {
        "channel_base": 32768, "channel_max": 512}
    assert channel_kwargs({4: 64, 8: 64, 16: 32, 32: 16}) == {"channel_base": 512, "channel_max": 64}
    assert channel_kwargs(CHANNELS) == {"block_channels": {"4": 8, "8": 6, "16": 4}}


# --- fixture files -------------------------------------------------------------------------------


def test_rosinality_fixture_networks():
    path = fixtures_dir() / "community" / "rosinality_sg2_train_32" / "model.pt"
    default, g = load_model(path), load_model(path, network="g")
    assert (default.info.network, g.info.network, default.info.networks) == ("g_ema", "g", ("g_ema", "g"))
    assert default.info.w_avg_estimated
    assert not torch.allclose(_render(default), _render(g))
    converted = load_model(fixtures_dir() / "community" / "rosinality_sg2_convert_64" / "model.pt")
    assert converted.info.networks == ("g_ema",) and not converted.info.w_avg_estimated
    with pytest.raises(LoadError, match="g_ema"):
        load_model(fixtures_dir() / "community" / "rosinality_sg2_convert_64" / "model.pt", network="g")


def test_tf_stylegan2_fixture_networks():
    path = fixtures_dir() / "tf" / "stylegan2_32" / "model.pkl"
    gs, g = load_model(path), load_model(path, network="G")
    assert (gs.info.network, g.info.network) == ("Gs", "G")
    assert gs.info.source == "nvlabs-stylegan2-tf" and gs.info.source_format == "tf-legacy-pickle"
    assert not gs.info.w_avg_estimated
    assert not torch.allclose(_render(gs), _render(g))
    with pytest.raises(LoadError, match="not a generator"):
        load_model(path, network="D")
