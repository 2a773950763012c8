"""The discriminator of NVIDIA's training snapshots: read as data from each fixture pickle, strictly, and
a real function of its input; `orig` and `skip` build too. Projection with its features is in test_projector."""

from __future__ import annotations

import pytest
import torch
from conftest import fixtures_dir

from explorer.engine import LoadError, load_model
from explorer.engine.formats import read_discriminator
from explorer.engine.formats.nvidia_pickle import ModuleRecord
from explorer.engine.networks.discriminator import Discriminator, minibatch_stddev
from explorer.engine.projector import DiscriminatorFeatureLoss

# Fixture: (channels of the block outputs at 16, 8 and 4, c_dim).
CASES = {
    "stylegan2-ada-32": ((32, 32, 32), 0),
    "stylegan2-32-cond": ((64, 64, 64), 4),
    "stylegan3-t-32": ((64, 64, 64), 0),
    "stylegan3-r-32": ((32, 64, 64), 0),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _pkl(name: str):
    return fixtures_dir() / "nvidia" / name / "model.pkl"


def _smooth_noise(n: int, res: int, seed: int) -> torch.Tensor:
    """Low-frequency random images in [-1, 1]: not what a GAN draws."""
    coarse = torch.randn([n, 3, 4, 4], generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=(res, res), mode="bicubic", align_corners=False).clamp(-1, 1)


@pytest.mark.parametrize("name", CASES)
def test_loads_from_each_fixture_and_runs(name):
    channels, c_dim = CASES[name]
    model = load_model(_pkl(name))
    assert model.info.discriminator == "D"
    d = model.discriminator()
    assert isinstance(d, Discriminator) and d is model.discriminator()  # read once, then kept
    assert not any(p.requires_grad for p in d.parameters())
    c = torch.eye(c_dim)[:4] if c_dim else None
    img = model.synthesize(model.map(torch.randn([4, model.info.z_dim]), c))
    feats = d.features(img)
    assert [tuple(f.shape) for f in feats] == [(4, ch, r, r) for ch, r in zip(channels, (16, 8, 4), strict=True)]
    logits = d(img, c)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    # Features of a sample do not depend on the rest of the batch.
    torch.testing.assert_close(d.features(img[1:2])[-1], feats[-1][1:2])


def test_logits_and_features_follow_the_image():
    """A real function of its input: D's logits on the fixture's own images and on smooth noise differ (its
    weights are random, so which it prefers means nothing), and features of identical images are at
    distance zero, of different ones not."""
    model = load_model(_pkl("stylegan2-ada-32"))
    d = model.discriminator()
    images = model.synthesize(model.map(torch.randn([8, model.info.z_dim], generator=torch.Generator().manual_seed(1))))
    noise = _smooth_noise(8, 32, seed=2)
    on_images, on_noise = d(images).flatten(), d(noise).flatten()
    assert (on_images - on_noise).abs().max() > 0.1 and on_images.std() > 0.01 and on_noise.std() > 0.01

    loss = DiscriminatorFeatureLoss(images[:1], d)
    assert loss(images[:1].clone()).item() == pytest.approx(0.0, abs=1e-10)
    assert loss(images[1:2]).item() > 0.1 and loss(noise[:1]).item() > 0.1


def test_files_without_a_discriminator():
    path = fixtures_dir() / "tf" / "stylegan2_32" / "model.pkl"
    assert read_discriminator(path) is None
    model = load_model(path)
    assert model.info.discriminator is None and model.discriminator() is None
    with pytest.raises(LoadError, match="not an NVIDIA pickle"):
        read_discriminator(path, "D")
    with pytest.raises(LoadError, match=r"network 'G_ema' \(Generator\) is not a discriminator"):
        read_discriminator(_pkl("stylegan2-ada-32"), "G_ema")


@pytest.mark.parametrize(("change", "message"), [
    ("missing", r"Missing key\(s\) in state_dict: \"b16.skip.weight\""),
    ("unexpected", r"Unexpected key\(s\) in state_dict: \"b16.extra\""),
    ("shape", r"size mismatch for b8.conv0.weight"),
])
def test_tensors_that_do_not_fit_are_a_load_error(monkeypatch, change, message):
    original = ModuleRecord.state_dict

    def altered(self):
        state = original(self)
        if self.class_name == "Discriminator":
            if change == "missing":
                del state["b16.skip.weight"]
            elif change == "unexpected":
                state["b16.extra"] = torch.zeros(1)
            else:
                state["b8.conv0.weight"] = state["b8.conv0.weight"][:, :-1]
        return state

    monkeypatch.setattr(ModuleRecord, "state_dict", altered)
    with pytest.raises(LoadError, match=f"(?s)network 'D' does not fit a StyleGAN2 discriminator.*{message}"):
        read_discriminator(_pkl("stylegan2-ada-32"))


def test_unknown_constructor_arguments_are_a_load_error(monkeypatch):
    original = ModuleRecord.init_kwargs.fget
    monkeypatch.setattr(ModuleRecord, "init_kwargs",
                        property(lambda self: {**original(self), "architecture": "dense"}))
    with pytest.raises(LoadError, match="unknown discriminator architecture 'dense'"):
        read_discriminator(_pkl("stylegan2-ada-32"))


@pytest.mark.parametrize("architecture", ["orig", "skip"])
def test_other_architectures_build_and_run(architecture):
    d = Discriminator(c_dim=0, img_resolution=16, channel_base=128, channel_max=16, architecture=architecture)
    keys = d.state_dict().keys()
    assert ("b8.fromrgb.weight" in keys) == (architecture == "skip") and ("b4.fromrgb.weight" in keys) == (
        architecture == "skip")
    assert not any(".skip." in k for k in keys)
    img = _smooth_noise(2, 16, seed=0)
    assert [tuple(f.shape) for f in d.features(img)] == [(2, 16, 8, 8), (2, 16, 4, 4)]
    assert torch.isfinite(d(img)).all()


def test_minibatch_stddev_groups():
    x = torch.randn([4, 6, 2, 2])
    y = minibatch_stddev(x, group_size=2, num_channels=2)
    assert y.shape == (4, 8, 2, 2)
    torch.testing.assert_close(y[:, :6], x)
    # Samples 0 and 2 form a group (NVIDIA's layout); channels 0-2 give the first feature.
    expected = x[[0, 2], :3].std(dim=0, unbiased=False).mean()
    torch.testing.assert_close(y[0, 6], torch.full([2, 2], float(expected)), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(y[2, 6], y[0, 6])
    with pytest.raises(ValueError, match="multiple of 4"):
        minibatch_stddev(torch.zeros([6, 1, 1, 1]), group_size=4)
