"""Projection: the round trip on a fixture model, W against W+, cancel, the losses, latents files and
the projected state as a render request, and `explorer project` end to end."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from conftest import fixtures_dir
from PIL import Image

from explorer.cli import main
from explorer.engine import load_model
from explorer.engine.projector import (
    VGG16_CONVS,
    ProjectionSettings,
    laplacian_pyramid,
    load_latents,
    make_loss,
    prepare_target,
    project,
    psnr,
    resolve_loss,
    save_latents,
)
from explorer.engine.render import RenderRequest, render

# The round trip: an image the model drew from a known W (seed 3, psi 0.7, its stored noise) is
# projected for ROUND_TRIP_STEPS steps with the Laplacian loss. The noise maps start random and are
# fitted, which bounds the PSNR on this random-weight model whose noise is strong: measured 24.1 dB
# (W) and 24.6 dB (W+); keeping the model's stored noise instead gives 29.2 dB (W). The start, the
# average w, is 15.5 dB.
ROUND_TRIP_STEPS = 100
MIN_PSNR_FITTED_NOISE = 22.0
MIN_PSNR_MODEL_NOISE = 27.0
W_STD_SAMPLES = 1000  # the paper's 10000 changes the spread estimate by little and costs time


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sg2():
    return load_model(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl")


@pytest.fixture(scope="module")
def target(sg2):
    return render(sg2, RenderRequest(seeds=[(3, 1.0)], truncation_psi=0.7)).image


def _settings(**kwargs) -> ProjectionSettings:
    """The Laplacian loss unless told (the fixture carries a discriminator, which 'auto' would take)."""
    return ProjectionSettings(w_std_samples=W_STD_SAMPLES, **{"loss": "laplacian", **kwargs})


@pytest.fixture(scope="module")
def projections(sg2, target):
    """The three round trips, each on the same budget."""
    runs = {"W": {}, "W+": {"w_plus": True}, "W, model noise": {"optimize_noise": False}}
    return {name: project(sg2, target, _settings(steps=ROUND_TRIP_STEPS, **kw)) for name, kw in runs.items()}


def test_round_trip_psnr(sg2, target, projections):
    start = psnr(target, render(sg2, RenderRequest(truncation_psi=0.0)).image)
    for name, minimum in (("W", MIN_PSNR_FITTED_NOISE), ("W+", MIN_PSNR_FITTED_NOISE),
                          ("W, model noise", MIN_PSNR_MODEL_NOISE)):
        result = projections[name]
        print(f"round trip {name}: {result.psnr:.2f} dB after {ROUND_TRIP_STEPS} steps (start {start:.2f} dB)")
        assert result.psnr >= minimum, name
        assert result.psnr > start + 6, name
        assert len(result.losses) == len(result.distances) == ROUND_TRIP_STEPS
        assert result.ws.shape == (1, sg2.info.num_ws, sg2.info.w_dim) and result.ws.dtype == np.float32
    assert [n.shape for n in projections["W"].noise] == [(1, 1, r, r) for _, r in sg2.info.noise_layers]
    assert projections["W, model noise"].noise == []
    np.testing.assert_array_equal(projections["W"].ws, np.repeat(projections["W"].ws[:, :1], sg2.info.num_ws, 1))


def test_wplus_reaches_lower_loss_than_w(projections):
    assert projections["W+"].distance < projections["W"].distance


def test_fitted_noise_stays_unit_noise(projections):
    for n in projections["W"].noise:
        assert abs(n.mean()) < 1e-5 and abs(n.std() - 1) < 1e-4


def test_result_renders_as_current_state(sg2, projections, tmp_path):
    """A projection becomes a render request (explicit ws + noise file) that draws the same pixels."""
    result = projections["W+"]
    npz = save_latents(tmp_path / "projected_w.npz", result.ws, result.noise)
    req = RenderRequest(ws=result.ws[0].tolist(), noise_file=str(npz))
    back = RenderRequest.from_json(req.to_json())
    assert back == req
    np.testing.assert_array_equal(render(sg2, back).image, result.image)

    kept = projections["W, model noise"]
    np.testing.assert_array_equal(render(sg2, RenderRequest(ws=kept.ws[0].tolist())).image, kept.image)


def test_explicit_ws_truncate_mix_and_validate(sg2, projections):
    ws = projections["W+"].ws[0].tolist()
    average = render(sg2, RenderRequest(truncation_psi=0.0)).image
    np.testing.assert_array_equal(render(sg2, RenderRequest(ws=ws, truncation_psi=0.0)).image, average)
    mixed = render(sg2, RenderRequest(ws=ws, mix_seed=5, mix_layers=[0, 1])).ws
    seed5 = render(sg2, RenderRequest(seeds=[(5, 1.0)])).ws
    torch.testing.assert_close(mixed[:, :2], seed5[:, :2])
    torch.testing.assert_close(mixed[:, 2:], torch.tensor(projections["W+"].ws[:, 2:]))
    with pytest.raises(ValueError, match=r"ws have shape \[8, 3\]; this model takes \[8, 512\]"):
        render(sg2, RenderRequest(ws=[[0.0] * 3] * 8))


def test_same_seed_same_result(sg2, target):
    a, b = (project(sg2, target, _settings(steps=3, seed=1)) for _ in range(2))
    c = project(sg2, target, _settings(steps=3, seed=2))
    np.testing.assert_array_equal(a.ws, b.ws)
    assert a.losses == b.losses
    assert not np.array_equal(a.ws, c.ws)


def test_cancel_stops_within_one_step_and_keeps_nothing(sg2, target):
    state = {k: v.clone() for k, v in sg2.generator.state_dict().items()}
    cancel = threading.Event()
    steps_seen = []

    def progress(p):
        steps_seen.append(p.step)
        if p.step == 2:
            cancel.set()

    assert project(sg2, target, _settings(steps=50), progress=progress, cancel=cancel) is None
    assert steps_seen == [1, 2]
    assert project(sg2, target, _settings(steps=50), progress=steps_seen.append, cancel=cancel) is None
    assert steps_seen == [1, 2]  # cancelled before the first step: no report at all
    for key, value in sg2.generator.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_progress_previews(sg2, target):
    reports = []
    result = project(sg2, target, _settings(steps=8, preview_every=3), progress=reports.append)
    assert [r.step for r in reports] == list(range(1, 9))
    assert [r.step for r in reports if r.image is not None] == [3, 6, 8]  # every 3rd, and the last
    np.testing.assert_array_equal(reports[-1].image, result.image)
    assert [r.loss for r in reports] == result.losses
    lrs = [r.lr for r in reports]  # the paper's schedule: from 0 up to 0.1, down along a cosine at the end
    assert lrs[0] == 0 and max(lrs) == pytest.approx(0.1) and 0 < lrs[-1] < 0.1


def test_prepare_target_crops_the_centre():
    wide = np.zeros([60, 90, 3], np.uint8)
    wide[:, 15:75] = 200  # the centre square is flat grey, the sides black
    t = prepare_target(wide, 32)
    assert t.crop_box == (15, 0, 75, 60) and t.source_size == (90, 60)
    assert t.pixels.shape == (32, 32, 3) and (t.pixels == 200).all()
    tall = prepare_target(Image.new("L", (40, 100)), 16)
    assert tall.crop_box == (0, 30, 40, 70) and tall.pixels.shape == (16, 16, 3)
    square = np.random.RandomState(0).randint(0, 256, [32, 32, 3]).astype(np.uint8)
    np.testing.assert_array_equal(prepare_target(square, 32).pixels, square)


def test_laplacian_pyramid_reconstructs():
    x = torch.randn(1, 3, 32, 32)
    levels = laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [32, 16, 8, 4]
    up = levels[-1]
    for band in reversed(levels[:-1]):
        up = band + torch.nn.functional.interpolate(up, size=band.shape[-2:], mode="bilinear", align_corners=False)
    torch.testing.assert_close(up, x)


def _tiny_vgg(widths=(4, 8, 16, 32, 32), lin=True, layout="torchvision") -> dict[str, torch.Tensor]:
    """Random weights in VGG16's layout with narrow layers: exercises loading without the real file."""
    gen = torch.Generator().manual_seed(0)
    per_block = (2, 2, 3, 3, 3)
    channels = [c for c, n in zip(widths, per_block, strict=True) for _ in range(n)]
    state, cin = {}, 3
    for i, cout in zip(VGG16_CONVS, channels, strict=True):
        block = next(b for b, last in enumerate((3, 8, 15, 22, 29)) if i < last) + 1
        prefix = f"features.{i}" if layout == "torchvision" else f"net.slice{block}.{i}"
        state[f"{prefix}.weight"] = torch.randn([cout, cin, 3, 3], generator=gen) * 0.3
        state[f"{prefix}.bias"] = torch.randn([cout], generator=gen) * 0.1
        cin = cout
    if lin:
        state.update({f"lin{k}.model.1.weight": torch.rand([1, c, 1, 1], generator=gen) for k, c in enumerate(widths)})
    return state


@pytest.mark.parametrize("layout", ["torchvision", "lpips"])
def test_lpips_loads_a_state_dict(tmp_path, layout):
    path = tmp_path / "vgg.pth"
    torch.save(_tiny_vgg(layout=layout), path)
    a = np.random.RandomState(1).randint(0, 256, [32, 32, 3]).astype(np.uint8)
    b = np.random.RandomState(2).randint(0, 256, [32, 32, 3]).astype(np.uint8)
    loss = make_loss("lpips", a, [path])
    assert "learned" in loss.label and "vgg.pth" in loss.label
    img = (torch.as_tensor(b).permute(2, 0, 1)[None].float() / 127.5 - 1).requires_grad_(True)
    d = loss(img)
    d.backward()
    assert d.item() > 0 and img.grad.abs().sum() > 0
    assert loss(torch.as_tensor(a).permute(2, 0, 1)[None].float() / 127.5 - 1).item() < 1e-6


def test_lpips_without_linear_layers_and_bad_files(tmp_path):
    target = np.zeros([32, 32, 3], np.uint8)
    plain = tmp_path / "plain.pth"
    torch.save(_tiny_vgg(lin=False), plain)
    assert "equal" in make_loss("lpips", target, [plain]).label

    broken = _tiny_vgg()
    broken["features.5.weight"] = broken["features.5.weight"][:, :3]
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"features\.5: expected weight \[O, 4, 3, 3\]"):
        make_loss("lpips", target, [tmp_path / "broken.pth"])
    bad_lin = _tiny_vgg()
    bad_lin["lin2.model.1.weight"] = torch.ones([1, 5, 1, 1])
    torch.save(bad_lin, tmp_path / "bad_lin.pth")
    with pytest.raises(ValueError, match=r"lin2: expected shape \[1, 16, 1, 1\], found \[1, 5, 1, 1\]"):
        make_loss("lpips", target, [tmp_path / "bad_lin.pth"])
    torch.save({"classifier.0.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no VGG16 weights found"):
        make_loss("lpips", target, [tmp_path / "other.pth"])
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a plain state dict"):
        make_loss("lpips", target, [tmp_path / "junk.pth"])


def test_lpips_projection_runs(sg2, target, tmp_path):
    torch.save(_tiny_vgg(), tmp_path / "vgg.pth")
    result = project(sg2, target, _settings(steps=2, loss="lpips", lpips_weights=(str(tmp_path / "vgg.pth"),)))
    assert result.loss_label.startswith("LPIPS") and len(result.losses) == 2


def test_auto_takes_the_discriminator_features(sg2, target):
    """The fixture's snapshot carries D: 'auto' projects with its features, and the result says so."""
    start = psnr(target, render(sg2, RenderRequest(truncation_psi=0.0)).image)
    result = project(sg2, target, ProjectionSettings(steps=8, w_std_samples=W_STD_SAMPLES))
    assert result.loss_label == "discriminator features + Laplacian-pyramid L1" and result.settings.loss == "dfeat"
    assert result.distance < result.distances[0] and result.psnr > start


def test_which_loss_auto_takes(sg2, target):
    info, no_d = sg2.info, dataclasses.replace(sg2.info, discriminator=None)
    assert resolve_loss("auto", info) == "dfeat" and resolve_loss("auto", info, ["vgg.pth"]) == "lpips"
    assert resolve_loss("auto", no_d) == "laplacian" and resolve_loss("pixel", info) == "pixel"
    with pytest.raises(ValueError, match="carries a discriminator .NVIDIA.s training snapshots do.; this file has"):
        ProjectionSettings(loss="dfeat").validate(no_d)
    with pytest.raises(ValueError, match="needs a checkpoint that carries a discriminator"):
        make_loss("dfeat", target)


def test_latents_export_import_round_trip(sg2, projections, tmp_path):
    result = projections["W"]
    path = save_latents(tmp_path / "w.npz", result.ws, result.noise)
    with np.load(path) as data:
        assert data["w"].shape == (1, 8, 512)  # NVIDIA's projector's layout
    back = load_latents(path, sg2.info)
    np.testing.assert_array_equal(back.ws, result.ws)
    for a, b in zip(back.noise, result.noise, strict=True):
        np.testing.assert_array_equal(a, b)

    np.save(tmp_path / "plus.npy", result.ws[0])  # [num_ws, w_dim]
    np.testing.assert_array_equal(load_latents(tmp_path / "plus.npy", sg2.info).ws, result.ws)
    np.save(tmp_path / "one.npy", result.ws[0, 0])  # one w for every layer
    one = load_latents(tmp_path / "one.npy", sg2.info)
    np.testing.assert_array_equal(one.ws, result.ws)
    assert one.noise is None


@pytest.mark.parametrize("shape", [(1, 7, 512), (1, 8, 256), (2, 8, 512), (8, 512, 1)])
@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_import_of_wrong_shape_names_both_shapes(sg2, tmp_path, shape, suffix):
    path = tmp_path / f"w{suffix}"
    w = np.zeros(shape, np.float32)
    if suffix == ".npz":
        np.savez(path, w=w)
    else:
        np.save(path, w)
    found = str(list(shape)).replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(ValueError, match=rf"w has shape {found}; this model expects \[1, 8, 512\]"):
        load_latents(path, sg2.info)


def test_import_of_bad_noise_or_keys(sg2, tmp_path):
    w = np.zeros([1, 8, 512], np.float32)
    noise = [np.zeros([1, 1, r, r], np.float32) for _, r in sg2.info.noise_layers]
    save_latents(tmp_path / "few.npz", w, noise[:-1])
    with pytest.raises(ValueError, match="this model has 7 noise layers"):
        load_latents(tmp_path / "few.npz", sg2.info)
    save_latents(tmp_path / "size.npz", w, noise[:-1] + [np.zeros([1, 1, 16, 16], np.float32)])
    with pytest.raises(ValueError, match=r"noise_6 \(b32.conv1\) has shape \[1, 1, 16, 16\]; expected \[1, 1, 32"):
        load_latents(tmp_path / "size.npz", sg2.info)
    np.savez(tmp_path / "keys.npz", a=w, b=w)
    with pytest.raises(ValueError, match="no array named 'w' \\(found a, b\\)"):
        load_latents(tmp_path / "keys.npz", sg2.info)
    with pytest.raises(ValueError, match="this model has 7 noise layers"):
        render(sg2, RenderRequest(noise_file=str(tmp_path / "few.npz")))


def test_cli_project(sg2, tmp_path):
    torch.save(_tiny_vgg(), tmp_path / "vgg.pth")
    photo = np.random.RandomState(0).randint(0, 256, [48, 64, 3]).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    model = fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl"
    proc = subprocess.run(
        [sys.executable, "-m", "explorer", "project", str(model), str(tmp_path / "photo.png"), "--steps", "3",
         "--wplus", "--loss", "lpips", "--lpips-weights", str(tmp_path / "vgg.pth"), "--video", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "LPIPS (VGG16, learned" in proc.stderr and "step 3/3" in proc.stderr
    for name in ("projected_w.npz", "proj.png", "target.png", "request.json", "proj.mp4"):
        assert (out / name).stat().st_size > 0, name
    assert load_latents(out / "projected_w.npz", sg2.info).noise is not None
    req = RenderRequest.from_json((out / "request.json").read_text())
    np.testing.assert_array_equal(render(sg2, req).image, np.asarray(Image.open(out / "proj.png")))


def test_cli_project_errors(tmp_path, capsys):
    model = fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl"
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    assert main(["project", str(model), str(tmp_path / "x.png"), "--loss", "lpips", "--out", str(tmp_path)]) == 1
    assert "the LPIPS loss needs VGG16 weights" in capsys.readouterr().err
    assert main(["project", str(model), str(tmp_path / "missing.png"), "--out", str(tmp_path)]) == 1
    assert "missing.png" in capsys.readouterr().err


def test_cli_project_names_the_automatic_loss(tmp_path, capsys):
    Image.new("RGB", (40, 32), (200, 120, 60)).save(tmp_path / "x.png")
    model = fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl"
    assert main(["project", str(model), str(tmp_path / "x.png"), "--steps", "2", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "with discriminator features + Laplacian-pyramid L1, W, 2 steps" in err
    assert "PSNR" in out and "discriminator features + Laplacian-pyramid L1" in out
    no_d = fixtures_dir() / "tf/stylegan2_32/model.pkl"
    assert main(["project", str(no_d), str(tmp_path / "x.png"), "--loss", "dfeat", "--out", str(tmp_path)]) == 1
    assert "this file has none" in capsys.readouterr().err


def test_stylegan3_projection_without_noise():
    """StyleGAN3 has no noise inputs, and its fast filtered lrelu works in place: projection still runs."""
    sg3 = load_model(fixtures_dir() / "nvidia/stylegan3-t-32/model.pkl")
    target = render(sg3, RenderRequest(seeds=[(3, 1.0)], truncation_psi=0.7)).image
    result = project(sg3, target, _settings(steps=6, w_plus=True))
    assert result.noise == [] and result.ws.shape == (1, sg3.info.num_ws, sg3.info.w_dim)
    assert result.distance < result.distances[0]
    assert result.psnr > psnr(target, render(sg3, RenderRequest(truncation_psi=0.0)).image)
