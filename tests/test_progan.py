"""ProGAN: the three checkpoint formats (network choice, refusals) and the generator's own behaviour."""

from __future__ import annotations

import math
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import fixtures_dir, rel_err

from explorer.engine import LoadError, load_model
from explorer.engine.formats import native, read_checkpoint
from explorer.engine.formats.pgan_zoo import PGANConfig
from explorer.engine.networks import build_generator
from explorer.engine.networks.progan import ConvLayer, Generator

# case folder, model file, default network, another generator, a non-generator network of the file
CASES = {
    "tf": ("tf/progan_32", "model.pkl", "Gs", "G", "D"),
    "pgan": ("community/facebook_pgan_16", "model.pth", "avgG", "netG", "netD"),
    "akanimax": ("community/akanimax_progan_32", "model.bin", "shadow_generator", "generator", "discriminator"),
}


def _path(kind: str) -> Path:
    folder, file, *_ = CASES[kind]
    return fixtures_dir() / folder / file


def _z(kind: str, n: int = 2) -> np.ndarray:
    z_dim = 64 if kind == "tf" else 48
    return np.random.RandomState(7).randn(n, z_dim).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Choosing the network.


@pytest.mark.parametrize("kind", list(CASES))
def test_default_network_is_the_averaged_one(kind):
    _, _, default, other, _ = CASES[kind]
    model = load_model(_path(kind))
    info = model.info
    assert info.family == "progan" and info.network == default
    assert set(info.networks) == {default, other}
    assert (info.num_ws, info.w_dim, info.noise_layers, info.ws_resolutions) == (1, info.z_dim, (), (4,))
    assert not model.w_avg.any()


@pytest.mark.parametrize("kind", list(CASES))
def test_named_network_loads_other_weights(kind):
    _, _, default, other, _ = CASES[kind]
    a, b = load_model(_path(kind)), load_model(_path(kind), network=other)
    assert b.info.network == other
    z = _z(kind)
    img_a, img_b = (m.synthesize(m.map(z), noise_mode="none") for m in (a, b))
    assert rel_err(img_b, img_a) > 0.1, "the named network rendered the same image as the default one"
    assert load_model(_path(kind), network=default).synthesize(a.map(z)).equal(img_a)


@pytest.mark.parametrize("kind", list(CASES))
def test_unknown_network_name_is_a_load_error(kind):
    _, _, default, other, _ = CASES[kind]
    with pytest.raises(LoadError) as err:
        load_model(_path(kind), network="no_such_net")
    msg = str(err.value)
    assert "no_such_net" in msg and default in msg and other in msg


@pytest.mark.parametrize("kind", list(CASES))
def test_non_generator_network_is_a_load_error(kind):
    *_, not_generator = CASES[kind]
    with pytest.raises(LoadError, match="not a generator"):
        load_model(_path(kind), network=not_generator)


@pytest.mark.parametrize("kind", list(CASES))
def test_wrong_resolution_is_a_load_error(kind):
    with pytest.raises(LoadError, match="not 64x64"):
        load_model(_path(kind), resolution=64)


# ---------------------------------------------------------------------------------------------
# Hostile PGAN-like files: refused, nothing runs.


class _Payload:
    """Pickles as a call to os.system that would create a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def pgan_config_class(monkeypatch):
    """A class that pickles under the name PGAN files use for their config."""

    class BaseConfig:
        pass

    names = ["models", "models.utils", "models.utils.config"]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    BaseConfig.__module__, BaseConfig.__qualname__ = "models.utils.config", "BaseConfig"
    sys.modules["models.utils.config"].BaseConfig = BaseConfig
    return BaseConfig


def _pgan_like(config) -> dict:
    sd = {"formatLayer.module.weight": torch.zeros(512, 48), "formatLayer.module.bias": torch.zeros(512)}
    return {"config": config, "netG": sd, "netD": {}, "avgG": sd}


@pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])
def test_pgan_file_calling_os_system_is_refused(tmp_path, zip_format):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save(_pgan_like(_Payload(marker)), path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(LoadError) as err:
        load_model(path)
    msg = str(err.value)
    assert str(path) in msg and "refused" in msg and "system" in msg  # os.system pickles as posix.system
    assert not marker.exists(), "the payload ran"


def test_payload_inside_the_pgan_config_is_refused(tmp_path, pgan_config_class):
    marker = tmp_path / "pwned"
    config = pgan_config_class()
    config.lossCriterion = _Payload(marker)  # the config name is allowed (as our stub), its contents are not
    path = tmp_path / "evil.pth"
    torch.save(_pgan_like(config), path, _use_new_zipfile_serialization=False)
    with pytest.raises(LoadError, match="refused.*system"):
        load_model(path)
    assert not marker.exists(), "the payload ran"


def test_pgan_config_becomes_our_stub_and_stays_scoped(tmp_path, pgan_config_class):
    config = pgan_config_class()
    config.lossCriterion, config.alpha = "DCGAN", 0
    path = tmp_path / "cfg.pth"
    torch.save({"config": config, "n": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(LoadError, match="not a generator checkpoint"):  # read fine, then not recognised
        load_model(path)
    from explorer.engine.formats.torch_files import SAFE_GLOBALS, torch_load
    obj = torch_load(path, path.read_bytes(), safe_globals=SAFE_GLOBALS)
    assert type(obj["config"]) is PGANConfig and obj["config"].get("lossCriterion") == "DCGAN"
    # Nothing stays allowed after the load: the plain weights-only load refuses the name again.
    with pytest.raises(LoadError, match="models.utils.config.BaseConfig"):
        torch_load(path, path.read_bytes())


# ---------------------------------------------------------------------------------------------
# Our generator.


def _small_generator(**overrides) -> Generator:
    torch.manual_seed(0)
    g = Generator(**{"z_dim": 8, "c_dim": 0, "img_resolution": 16, "channels": [16, 12, 8], **overrides}).eval()
    with torch.no_grad():
        for p in g.parameters():
            p.normal_()
    return g


@pytest.mark.parametrize("kind", list(CASES))
def test_config_rebuilds_the_generator_and_round_trips_our_format(kind, tmp_path):
    ckpt = read_checkpoint(_path(kind))
    rebuilt = build_generator("progan", ckpt.config)
    rebuilt.load_state_dict(ckpt.generator.state_dict(), strict=True)
    z = torch.as_tensor(_z(kind))
    with torch.no_grad():
        assert rebuilt.eval()(z).equal(ckpt.generator.eval()(z))
    native.save(ckpt, tmp_path / "ours.pt")
    a, b = load_model(_path(kind)), load_model(tmp_path / "ours.pt")
    assert b.info.family == "progan" and b.synthesize(b.map(z)).equal(a.synthesize(a.map(z)))


def test_truncation_lerps_the_normalised_latent_toward_zero():
    g = _small_generator()
    z = torch.randn(3, 8)
    ws = g.mapping(z)
    assert ws.shape == (3, 1, 8)
    assert torch.allclose(ws.square().mean(-1), torch.ones(3, 1), atol=1e-5)
    assert torch.allclose(g.mapping(z, truncation_psi=0.5), 0.5 * ws)
    assert not g.mapping(z, truncation_psi=0).any()
    assert g.mapping(z, truncation_psi=0.5, truncation_cutoff=0).equal(ws)


def test_conditional_latent_is_z_then_label_normalised_together():
    g = _small_generator(c_dim=3)
    z, c = torch.randn(2, 8), torch.eye(3)[:2]
    x = torch.cat([z, c], 1)
    assert torch.allclose(g.mapping(z, c)[:, 0], x * x.square().mean(1, keepdim=True).add(1e-8).rsqrt())
    with pytest.raises(ValueError):
        g.mapping(z)


def test_fused_upscale_is_nearest_upscale_and_flipped_conv():
    """TF's fused up-conv (kernel padded, four shifts summed, stride-2 transposed conv) equals a
    nearest-neighbour 2x up-sampling followed by the 3x3 conv with the kernel rotated 180 degrees."""
    torch.manual_seed(1)
    fused = ConvLayer(5, 4, 3, math.sqrt(2), equalized_lr=True, fused_up=True)
    x = torch.randn(2, 5, 6, 6)
    with torch.no_grad():
        ref = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"),
                       fused.weight.flip(2, 3) * fused.weight_gain, fused.bias, padding=1)
        assert torch.allclose(fused(x), ref, atol=1e-5)


def test_lod_fades_in_the_lower_resolutions():
    g0, g1, g_half = (_small_generator(lod=lod) for lod in (0.0, 1.0, 0.5))
    for g in (g1, g_half):
        g.load_state_dict(g0.state_dict())
    ws = g0.mapping(torch.randn(2, 8))
    with torch.no_grad():
        syn = g0.synthesis
        x8 = syn.b8(syn.b4(ws[:, 0]))
        lower = F.interpolate(syn.b8.torgb(x8), scale_factor=2, mode="nearest")
        full = g0.synthesis(ws)
        assert torch.allclose(g1.synthesis(ws), lower, atol=1e-6)
        assert torch.allclose(g_half.synthesis(ws), 0.5 * (full + lower), atol=1e-5)


def test_tanh_output_and_bad_inputs():
    g = _small_generator(output_activation="tanh")
    ws = g.mapping(torch.randn(2, 8))
    img = g.synthesis(ws)
    assert img.shape == (2, 3, 16, 16) and img.abs().max() <= 1
    with pytest.raises(ValueError):
        g.synthesis(ws, noise=[torch.zeros(1, 1, 4, 4)])
    with pytest.raises(ValueError):
        g.synthesis(ws.repeat(1, 2, 1))
    with pytest.raises(ValueError):
        Generator(z_dim=8, c_dim=0, img_resolution=16, channels=[8, 8])
