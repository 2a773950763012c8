"""StyleGAN (1): the format-specific behaviour of the TF and rosinality loaders, beyond fixture parity."""

import shutil

import pytest
import torch
from conftest import fixtures_dir

from explorer.engine import load_model
from explorer.engine.errors import LoadError
from explorer.engine.formats import native, read_checkpoint, rosinality_sg1, rosinality_sg2
from explorer.engine.networks.stylegan1 import StyleLayer

TF_CASE = "tf/stylegan1_32"
GRUNNING = "community/rosinality_sg1_grunning_128"
TRAINSTEP = "community/rosinality_sg1_trainstep_32"


def _model_file(case: str):
    return next((fixtures_dir() / case).glob("model.*"))


def _copy(case: str, tmp_path, name: str):
    target = tmp_path / name
    shutil.copyfile(_model_file(case), target)
    return target


# ---------------------------------------------------------------------------------------------
# Resolution of rosinality files: explicit, from the file name, or guessed and flagged.

@pytest.mark.parametrize("name, expected", [
    ("ffhq-256px.model", 256),
    ("celeba_128PX.model", 128),
    ("ffhq_256.model", 256),
    ("faces-64-final.model", 64),
    ("010000.model", None),           # an iteration number
    ("train_step-4.model", None),     # a training step, not a resolution
    ("ffhq_0256.model", None),        # leading zero: a counter
    ("ffhq_100.model", None),         # not a power of two
    ("a_256_512.model", None),        # ambiguous
    ("256.model", None),              # the first token alone is not a clear hint
    ("model.model", None),
])
def test_resolution_hint(name, expected):
    assert rosinality_sg1.resolution_hint(name) == expected


def test_resolution_explicit():
    model = load_model(_model_file(GRUNNING), resolution=64)
    assert model.info.resolution == 64 and model.info.num_ws == 10 and not model.info.resolution_guessed
    assert model.synthesize(model.map(torch.zeros([1, model.info.z_dim]))).shape == (1, 3, 64, 64)
    for bad in (2048, 100):
        with pytest.raises(LoadError, match="resolution"):
            load_model(_model_file(GRUNNING), resolution=bad)


def test_resolution_from_file_name(tmp_path):
    model = load_model(_copy(GRUNNING, tmp_path, "ffhq-32px.model"))
    assert model.info.resolution == 32 and not model.info.resolution_guessed
    assert any("file name" in n for n in model.info.notes)
    assert load_model(_copy(GRUNNING, tmp_path, "faces_16.model")).info.resolution == 16
    # An explicit resolution wins over the name.
    assert load_model(tmp_path / "ffhq-32px.model", resolution=8).info.resolution == 8


def test_resolution_guessed_is_flagged(tmp_path):
    # Every block of the fixture has trained (non-zero) biases and noise strengths: the largest.
    model = load_model(_model_file(GRUNNING))
    assert model.info.resolution == 1024 and model.info.resolution_guessed
    assert any("guessed 1024" in n for n in model.info.notes)

    # Blocks that never left their initial state (zero biases and noise strengths) are not counted.
    sd = torch.load(_model_file(GRUNNING), map_location="cpu", weights_only=True)
    for key in sd:
        parts = key.split(".")
        if parts[1] in ("progression", "to_rgb") and int(parts[2]) >= 3 and \
                (key.endswith("bias") or ".noise" in key):
            sd[key] = torch.zeros_like(sd[key])
    path = tmp_path / "partly_trained.model"
    torch.save(sd, path)
    model = load_model(path)
    assert model.info.resolution == 16 and model.info.resolution_guessed


# ---------------------------------------------------------------------------------------------
# Networks of a file.

def test_default_and_named_network():
    default = read_checkpoint(_model_file(TRAINSTEP), resolution=32)
    named = read_checkpoint(_model_file(TRAINSTEP), network="generator", resolution=32)
    assert default.network == "g_running" and named.network == "generator"
    assert default.networks == named.networks == ("g_running", "generator")
    assert default.format == "rosinality-sg1-train-step" and default.family == "stylegan1"
    w_default = default.generator.state_dict()["synthesis.b32.conv1.weight"]
    assert not torch.equal(w_default, named.generator.state_dict()["synthesis.b32.conv1.weight"])

    bare = read_checkpoint(_model_file(GRUNNING), resolution=32)
    assert bare.network == "g_running" and bare.networks == ("g_running",) and bare.format == "torch-state-dict"
    assert read_checkpoint(_model_file(GRUNNING), network="g_running", resolution=32).network == "g_running"


@pytest.mark.parametrize("case, network, message", [
    (TRAINSTEP, "discriminator", "not a generator"),
    (TRAINSTEP, "G_ema", "g_running"),
    (GRUNNING, "generator", "single network"),
])
def test_bad_network(case, network, message):
    with pytest.raises(LoadError, match=message):
        load_model(_model_file(case), network=network, resolution=32)


def test_matches_keeps_to_stylegan1():
    sg1 = torch.load(_model_file(GRUNNING), map_location="cpu", weights_only=True)
    assert rosinality_sg1.matches(sg1) and rosinality_sg1.matches({"g_running": sg1, "discriminator": {}})
    assert not rosinality_sg2.matches(sg1)
    sg2_like = {"style.1.weight": torch.zeros(1), "input.input": torch.zeros(1), "to_rgb1.conv.weight": torch.zeros(1)}
    assert not rosinality_sg1.matches(sg2_like)
    assert not rosinality_sg1.matches({"g_ema": sg2_like, "latent_avg": torch.zeros(1)})
    assert not rosinality_sg1.matches({"generator": {"something": torch.zeros(1)}})


# ---------------------------------------------------------------------------------------------
# What the rosinality files lack: w_avg and constant noise, made deterministically.

def test_w_avg_estimate_and_const_noise_are_deterministic():
    a = load_model(_model_file(TRAINSTEP), resolution=32)
    b = load_model(_model_file(TRAINSTEP), resolution=32)
    assert a.info.w_avg_estimated and any("w_avg" in n for n in a.info.notes)
    assert torch.equal(a.w_avg, b.w_avg) and a.w_avg.abs().sum() > 0
    ws = a.map(torch.randn([2, a.info.z_dim], generator=torch.Generator().manual_seed(3)), truncation_psi=0.5)
    assert torch.equal(a.synthesize(ws), b.synthesize(ws))
    # Both layers of a block add the block's one noise map, as rosinality does.
    for block in a.generator.synthesis.blocks:
        assert torch.equal(block.conv0.noise_const, block.conv1.noise_const)
    assert not torch.equal(a.synthesize(ws), a.synthesize(ws, noise_mode="none"))


def test_tf_w_avg_is_stored_and_resolution_checked():
    model = load_model(_model_file(TF_CASE))
    assert not model.info.w_avg_estimated and not model.info.resolution_guessed
    assert model.info.network == "Gs" and set(model.info.networks) == {"G", "Gs"}
    assert any("truncation_cutoff" in n for n in model.info.notes)
    assert load_model(_model_file(TF_CASE), resolution=32).info.resolution == 32
    with pytest.raises(LoadError, match="32x32"):
        load_model(_model_file(TF_CASE), resolution=64)


def test_random_noise_is_shared_within_a_block_for_rosinality():
    model = load_model(_model_file(TRAINSTEP), resolution=32)
    ws = model.map(torch.zeros([1, model.info.z_dim]))
    block_maps = [torch.randn([1, 1, r, r], generator=torch.Generator().manual_seed(r)) for r in (4, 8, 16, 32)]
    shared = model.synthesize(ws, noise=[m for m in block_maps for _ in range(2)])
    first_only = model.synthesize(ws, noise=[m if i % 2 == 0 else None for m in block_maps for i in range(2)])
    assert torch.equal(shared, first_only)
    r1 = model.synthesize(ws, noise_mode="random", noise_seed=7)
    assert torch.equal(r1, model.synthesize(ws, noise_mode="random", noise_seed=7))
    assert not torch.equal(r1, model.synthesize(ws, noise_mode="random", noise_seed=8))


# ---------------------------------------------------------------------------------------------
# Our module.

def test_fused_up_conv_is_the_up_conv_with_flipped_kernel():
    """The fused transposed conv (TF and rosinality from 128 px on) equals nearest up-sampling and
    a 3x3 conv with the spatially flipped kernel, the identity NVlabs' fused path relies on."""
    torch.manual_seed(0)
    kw = dict(in_channels=3, out_channels=4, w_dim=5, resolution=16, blur_filter=None, use_noise=False)
    fused, plain = StyleLayer(conv="fused_up", **kw), StyleLayer(conv="up", **kw)
    plain.load_state_dict(fused.state_dict())
    with torch.no_grad():
        plain.weight.copy_(fused.weight.flip([2, 3]))
    x, w = torch.randn([2, 3, 8, 8]), torch.randn([2, 5])
    torch.testing.assert_close(fused(x, w), plain(x, w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case, resolution", [(TF_CASE, None), (TRAINSTEP, 32)])
def test_native_round_trip(case, resolution, tmp_path):
    ckpt = read_checkpoint(_model_file(case), resolution=resolution)
    native.save(ckpt, tmp_path / "sg1.pt")
    a, b = load_model(_model_file(case), resolution=resolution), load_model(tmp_path / "sg1.pt")
    assert b.info.family == "stylegan1" and b.info.resolution == a.info.resolution
    z = torch.randn([2, a.info.z_dim], generator=torch.Generator().manual_seed(1))
    ws = a.map(z, truncation_psi=0.7)
    torch.testing.assert_close(b.map(z, truncation_psi=0.7), ws)
    torch.testing.assert_close(b.synthesize(ws), a.synthesize(ws))
