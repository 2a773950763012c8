"""The training side: teacher network, SWD metric, and a few steps of each trainer with resume.

Nothing here downloads: the trainers' smoke tests stream faces from a randomly initialised teacher.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from explorer.engine import load_model
from explorer.training import swd as swd_mod
from explorer.training import teacher
from explorer.training.loop import CHECKPOINT

# The shipped teacher state dict, as `gan_face_generate/weights.tar` of gan-face-generate 1.1.1 holds it.
TEACHER_SHAPES = {
    "main.0.weight": (100, 512, 4, 4), "main.3.weight": (512, 256, 4, 4), "main.6.weight": (256, 128, 4, 4),
    "main.9.weight": (128, 64, 4, 4), "main.12.weight": (64, 3, 4, 4),
    **{f"main.{i}.{k}": (c,) for i, c in ((1, 512), (4, 256), (7, 128), (10, 64))
       for k in ("weight", "bias", "running_mean", "running_var")},
    **{f"main.{i}.num_batches_tracked": () for i in (1, 4, 7, 10)},
}


def test_teacher_definition_matches_the_shipped_state_dict():
    state = teacher.DCGANGenerator().state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == TEACHER_SHAPES


def test_face_stream_is_seeded_and_in_range():
    net = teacher.DCGANGenerator().eval()
    a = teacher.FaceStream(3, seed=5, teacher=net).next()
    b = teacher.FaceStream(3, seed=5, teacher=net).next()
    small = teacher.FaceStream(3, seed=5, teacher=net, resolution=16).next()
    assert a.shape == (3, 3, 64, 64) and small.shape == (3, 3, 16, 16)
    assert torch.equal(a, b) and a.abs().max() <= 1


@pytest.mark.skipif(not teacher.wheel_path().is_file(), reason="teacher wheel not downloaded")
def test_real_teacher_makes_varied_images():
    img = teacher.FaceStream(8, seed=0).next()
    assert img.std(dim=0).mean() > 0.1  # not one image eight times


def _descriptors(images: torch.Tensor, seed: int = 0) -> swd_mod.Descriptors:
    d = swd_mod.Descriptors(seed=seed)
    for batch in images.split(16):
        d.add(batch)
    return d


def test_laplacian_pyramid_reconstructs_the_image():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    levels = swd_mod.laplacian_pyramid(x)
    assert [lvl.shape[-1] for lvl in levels] == [64, 32, 16]
    img = levels[-1]
    for lvl in reversed(levels[:-1]):
        img = lvl + swd_mod._up(img)
    assert torch.allclose(img, x, atol=1e-5)


def test_swd_identical_sets_is_zero_and_deterministic():
    x = torch.rand(32, 3, 64, 64) * 2 - 1
    same = swd_mod.swd(_descriptors(x), _descriptors(x))
    assert set(same) == {"swd64", "swd32", "swd16", "swd_avg"}
    assert all(v == pytest.approx(0, abs=1e-6) for v in same.values())
    y = torch.rand(32, 3, 64, 64) * 2 - 1
    first = swd_mod.swd(_descriptors(x, 1), _descriptors(y, 2), seed=3)
    again = swd_mod.swd(_descriptors(x, 1), _descriptors(y, 2), seed=3)
    assert first == again


def test_swd_separates_different_distributions():
    gen = torch.Generator().manual_seed(0)
    noise = [torch.rand(64, 3, 64, 64, generator=gen) * 2 - 1 for _ in range(2)]
    coarse = torch.rand(64, 3, 8, 8, generator=gen) * 2 - 1
    smooth = torch.nn.functional.interpolate(coarse, size=64, mode="bilinear", align_corners=False)
    base = swd_mod.swd(_descriptors(noise[0], 1), _descriptors(noise[1], 2))  # same distribution
    apart = swd_mod.swd(_descriptors(noise[0], 1), _descriptors(smooth, 2))   # other distribution
    assert all(apart[k] > 2 * base[k] for k in base), (apart, base)


TINY = {
    "stylegan2": ["--channel-base", "64", "--channel-max", "16", "--z-dim", "16"],
}


def _train(family: str, out, kimg: float, resume: bool = False) -> None:
    module = __import__(f"explorer.training.{family}", fromlist=["main"])
    args = ["--out", str(out), "--kimg", str(kimg), "--batch", "4", "--resolution", "16", "--log-seconds", "1e9",
            *TINY[family]]
    module.main([*args, "--resume"] if resume else args)


@pytest.mark.parametrize("family", sorted(TINY))
def test_trainer_steps_resume_and_export(family, tmp_path, monkeypatch):
    monkeypatch.setattr(teacher, "load_teacher", lambda *a, **k: teacher.DCGANGenerator().eval())
    threads = torch.get_num_threads()
    try:
        straight, split = tmp_path / "straight", tmp_path / "split"
        _train(family, straight, 0.016)          # four steps of four images
        _train(family, split, 0.008)             # two steps ...
        shutil.copy(split / CHECKPOINT, tmp_path / "half.pt")
        _train(family, split, 0.016, resume=True)  # ... then two more after a resume
    finally:
        torch.set_num_threads(threads)
    a = torch.load(straight / CHECKPOINT, weights_only=True)
    b = torch.load(split / CHECKPOINT, weights_only=True)
    half = torch.load(tmp_path / "half.pt", weights_only=True)
    assert a["progress"]["images_seen"] == b["progress"]["images_seen"] == 16
    assert half["progress"]["step"] == 2 and b["progress"]["step"] == 4
    for net in ("G", "G_ema", "D"):
        for key, value in a["trainer"][net].items():
            assert torch.equal(value, b["trainer"][net][key]), f"{net}.{key} differs after resume"
    assert (straight / "samples.png").is_file()
    model = load_model(straight / "G_ema.pt")
    img = model.synthesize(model.map(torch.randn(2, model.info.z_dim)))
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()


def test_unfused_modconv_renders_the_same_image():
    from explorer.engine.networks import build_generator
    from explorer.training.loop import unfused_modconv
    from explorer.training.stylegan2 import generator_config

    torch.manual_seed(0)
    G = build_generator("stylegan2", generator_config(16, channel_base=64, channel_max=16, z_dim=16))
    ws = G.mapping(torch.randn(3, 16))
    fused = G.synthesis(ws, noise_mode="const")
    assert torch.allclose(unfused_modconv(G).synthesis(ws, noise_mode="const"), fused, atol=1e-4)


def test_filtered_lrelu_fast_path_has_gradients():
    from explorer.engine.ops import filtered_lrelu, setup_filter

    x = torch.randn(2, 3, 12, 12, requires_grad=True)
    f = setup_filter([1, 3, 3, 1] * 2)
    y = filtered_lrelu(x, fu=f, fd=f, up=2, down=2, padding=3, gain=2 ** 0.5, clamp=0.5)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    with torch.no_grad():
        assert torch.equal(y, filtered_lrelu(x, fu=f, fd=f, up=2, down=2, padding=3, gain=2 ** 0.5, clamp=0.5))
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
