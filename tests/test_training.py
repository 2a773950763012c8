"""The training side: teacher network, SWD metric, and a few steps of each trainer with resume.

Nothing here downloads: the trainers' smoke tests stream faces from a randomly initialised teacher.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from explorer.engine import Model, load_model
from explorer.training import loop, teacher
from explorer.training import swd as swd_mod
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


SMALL = ["--channel-base", "64", "--channel-max", "16", "--z-dim", "16"]
# Each case: the trainer module and its tiny 16 px settings (batch 4, so four steps are 16 images).
TINY = {
    "progan": ("progan", [*SMALL, "--stable-kimg", "0.004", "--fade-kimg", "0.008"]),
    "stylegan1": ("stylegan1", SMALL),
    "stylegan2": ("stylegan2", SMALL),
    "stylegan3-t": ("stylegan3", [*SMALL, "--cfg", "t", "--num-layers", "4"]),
    "stylegan3-r": ("stylegan3", [*SMALL, "--cfg", "r", "--num-layers", "4"]),
}


def _main(module: str, argv: list[str]):
    """A trainer's main(argv), leaving torch's thread count as it was (the trainers set their own)."""
    threads = torch.get_num_threads()
    try:
        return __import__(f"explorer.training.{module}", fromlist=["main"]).main(argv)
    finally:
        torch.set_num_threads(threads)


def _train(family: str, out, kimg: float, resume: bool = False, more: tuple[str, ...] = ()):
    module, extra = TINY[family]
    args = ["--out", str(out), "--kimg", str(kimg), "--batch", "4", "--resolution", "16", "--log-seconds", "1e9",
            *extra, *more]
    return _main(module, [*args, "--resume"] if resume else args)


@pytest.fixture
def random_teacher(monkeypatch):
    monkeypatch.setattr(teacher, "load_teacher", lambda *a, **k: teacher.DCGANGenerator().eval())


def test_swd_command_seed_draws_other_sets(tmp_path, random_teacher):
    """--seed 0 repeats the published figures exactly; another seed measures the same thing on other draws."""
    def measure(seed: int) -> dict:
        torch.manual_seed(0)  # the same random teacher each time
        out = tmp_path / f"swd-{seed}.json"
        swd_mod.main(["--num", "20", "--batch", "10", "--seed", str(seed), "--json", str(out)])
        return json.loads(out.read_text())

    first, again, other = measure(0), measure(0), measure(1)
    assert first == {**again, "seconds": first["seconds"]}
    assert (first["seed"], other["seed"]) == (0, 1)
    assert all(first[k] > 0 and other[k] > 0 and first[k] != other[k] for k in ("swd64", "swd32", "swd16"))


def test_measured_models_render_in_small_chunks_with_the_same_images(monkeypatch):
    """A measurement's batch is synthesized SYNTHESIS_CHUNK images at a time (peak memory) and comes
    out as one call would have drawn it; every call draws other noise (a repeated noise seed would give
    StyleGAN (1) and 2 the same noise every chunk)."""
    path = Path(__file__).parents[1] / "assets" / "progan-faces-64.pt"
    calls, noise_seeds = [], []
    synthesize = Model.synthesize

    def recording(self, ws, **kw):
        calls.append(len(ws))
        noise_seeds.append(kw.get("noise_seed"))
        return synthesize(self, ws, **kw)

    monkeypatch.setattr(Model, "synthesize", recording)
    monkeypatch.setattr(swd_mod, "SYNTHESIS_CHUNK", 4)
    batches = swd_mod.generator_batches(str(path), batch_size=10, seed=3)
    images = next(batches)
    assert calls == [4, 4, 2]
    next(batches)
    assert None not in noise_seeds and len(set(noise_seeds)) == 6, noise_seeds

    model = load_model(path)
    z = torch.randn([10, model.info.z_dim], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole = synthesize(model, model.map(z)).clamp(-1, 1)
    assert images.shape == (10, 3, 64, 64)
    torch.testing.assert_close(images, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", sorted(TINY))
def test_trainer_steps_resume_and_export(family, tmp_path, random_teacher):
    straight, split = tmp_path / "straight", tmp_path / "split"
    trainer = _train(family, straight, 0.016)  # four steps of four images
    _train(family, split, 0.008)               # two steps ...
    shutil.copy(split / CHECKPOINT, tmp_path / "half.pt")
    _train(family, split, 0.016, resume=True)  # ... then two more after a resume
    a = torch.load(straight / CHECKPOINT, weights_only=True)
    b = torch.load(split / CHECKPOINT, weights_only=True)
    half = torch.load(tmp_path / "half.pt", weights_only=True)
    assert a["progress"]["images_seen"] == b["progress"]["images_seen"] == 16
    assert half["progress"]["step"] == 2 and b["progress"]["step"] == 4
    for net in ("G", "G_ema", "D"):
        for key, value in a["trainer"][net].items():
            assert torch.equal(value, b["trainer"][net][key]), f"{net}.{key} differs after resume"
    log = json.loads((straight / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss_g", "loss_d"} <= set(log) and all(math.isfinite(v) for v in log.values()), log
    assert (straight / "samples.png").is_file()

    model = load_model(straight / "G_ema.pt")
    assert model.info.family == trainer.family == family and model.info.resolution == 16
    z = torch.randn(2, model.info.z_dim)
    img = model.synthesize(model.map(z))
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()
    assert torch.allclose(img, trainer.sample(z), atol=1e-5)


def test_snapshots_keep_an_export_each_time_the_interval_passes(tmp_path, random_teacher, monkeypatch):
    written = []
    export = loop.export

    def recording_export(trainer, path, progress):
        written.append((path.name, progress.images_seen))
        export(trainer, path, progress)

    monkeypatch.setattr(loop, "export", recording_export)
    every_step = ("--ckpt-minutes", "0", "--snapshot-kimg", "0.008")  # a checkpoint after each step of 4 images
    _train("stylegan2", tmp_path, 0.012, more=every_step)
    _train("stylegan2", tmp_path, 0.020, resume=True, more=every_step)
    snapshots = [(name, n) for name, n in written if name != "G_ema.pt"]
    assert snapshots == [("G_ema-000000.pt", 8), ("G_ema-000000.pt", 16)]  # not again at 12 or 20, nor on resuming
    assert sum(name == "G_ema.pt" for name, _ in written) == (3 + 1) + (2 + 1)  # each step and each run's end
    a, b = (torch.load(tmp_path / name, weights_only=True) for name in ("G_ema-000000.pt", "G_ema.pt"))
    assert a["config"] == b["config"] and a["state_dict"].keys() == b["state_dict"].keys()
    assert not all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])  # 16 vs 20 images


def test_a_time_limit_stops_the_run_with_a_checkpoint(tmp_path, random_teacher):
    _train("stylegan2", tmp_path, 0.008)
    _train("stylegan2", tmp_path, 1000, resume=True, more=("--minutes", "0"))  # the time is up before a step
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["progress"]["images_seen"] == 8
    _train("stylegan2", tmp_path, 0.016, resume=True, more=("--minutes", "60"))  # the images are reached first
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["progress"]["images_seen"] == 16


def test_a_resume_may_change_training_settings_but_not_the_network(tmp_path, random_teacher, capsys):
    _train("stylegan3-t", tmp_path, 0.008)
    trainer = _train("stylegan3-t", tmp_path, 0.012, resume=True)  # nothing named: the run's own settings
    assert [g["lr"] for g in trainer.opt_G.param_groups] == [0.0025] and trainer.r1_gamma == 0.25
    trainer = _train("stylegan3-t", tmp_path, 0.016, resume=True, more=("--lr", "0.001", "--r1-gamma", "0.5"))
    assert [g["lr"] for g in trainer.opt_G.param_groups] == [0.001] and trainer.r1_gamma == 0.5
    assert [g["lr"] for g in trainer.opt_D.param_groups] == [0.002]  # --lr-d was not named
    assert "r1_gamma: 0.25 -> 0.5 from here on" in capsys.readouterr().out
    saved = json.loads(torch.load(tmp_path / CHECKPOINT, weights_only=True)["args"])
    assert (saved["lr"], saved["r1_gamma"], saved["lr_d"]) == (0.001, 0.5, 0.002)  # kept for the next resume
    trainer = _train("stylegan3-t", tmp_path, 0.020, resume=True)
    assert [g["lr"] for g in trainer.opt_G.param_groups] == [0.001] and trainer.r1_gamma == 0.5

    with pytest.raises(SystemExit) as refused:
        _train("stylegan3-t", tmp_path, 0.024, resume=True, more=("--channel-max", "32"))
    assert refused.value.code == 2
    assert "--channel-max cannot change when a run resumes (the run has 16)" in capsys.readouterr().err


def test_a_grown_generator_goes_on_with_a_fresh_wider_discriminator(tmp_path, random_teacher):
    """--init-generator: G and g_ema start as the export, D fresh (here wider); --d-warmup-kimg holds G still
    at first; the export's notes carry the earlier training's before the new run's own."""
    _train("progan", tmp_path / "grown", 0.032)  # 4 -> 8 -> 16 px grown by 0.028 kimg
    grown = load_model(tmp_path / "grown" / "G_ema.pt")
    start = {k: v.clone() for k, v in grown.generator.state_dict().items()}
    more = ("--init-generator", str(tmp_path / "grown" / "G_ema.pt"), "--d-warmup-kimg", "0.008",
            "--d-channel-base", "128", "--lr-d", "0.002")
    trainer = _train("progan", tmp_path / "on", 0.008, more=more)  # two steps, both with G held
    assert trainer.lod == 0 and trainer.ema_rampup is None
    assert trainer.D.fromrgb.weight.shape[0] == 8  # min(128 / 16, 16) channels at 16 px; G has 4
    for net in (trainer.G, trainer.g_ema):
        assert all(torch.equal(v, start[k]) for k, v in net.state_dict().items())
    trainer = _train("progan", tmp_path / "on", 0.016, resume=True)  # two more, G trains
    assert trainer.ema_rampup is None and not trainer.g_held
    assert [g["lr"] for g in trainer.opt_D.param_groups] == [0.002]
    assert not all(torch.equal(v, start[k]) for k, v in trainer.G.state_dict().items())
    notes = load_model(tmp_path / "on" / "G_ema.pt").info.notes
    assert notes[0] == grown.info.notes[0] and notes[0].endswith("0 kimg, 0.0 CPU hours")
    assert notes[1].startswith("trained on with a fresh discriminator on DCGAN teacher faces") and len(notes) == 2


def test_a_held_stylegan_generator_keeps_its_running_averages(tmp_path, random_teacher):
    """During --d-warmup-kimg nothing of G moves, w_avg included (D's fakes must not update it)."""
    _train("stylegan2", tmp_path / "first", 0.008)
    start = load_model(tmp_path / "first" / "G_ema.pt").generator.state_dict()
    more = ("--init-generator", str(tmp_path / "first" / "G_ema.pt"), "--d-warmup-kimg", "0.008")
    trainer = _train("stylegan2", tmp_path / "on", 0.008, more=more)
    assert all(torch.equal(v, start[k]) for k, v in trainer.G.state_dict().items())
    assert not all(torch.equal(v, start[k]) for k, v in _train("stylegan2", tmp_path / "on", 0.012, resume=True)
                   .G.state_dict().items())


def test_a_run_starts_only_from_a_generator_it_would_build(tmp_path, random_teacher):
    _train("progan", tmp_path / "growing", 0.008)  # still at 8 px
    _train("stylegan2", tmp_path / "other", 0.004)
    for export, why in (("growing", "a generator still growing (lod 1.5)"), ("other", "a stylegan2 generator")):
        with pytest.raises(SystemExit, match=re.escape(why)):
            _train("progan", tmp_path / "on", 0.004, more=("--init-generator", str(tmp_path / export / "G_ema.pt")))
    assert not (tmp_path / "on" / CHECKPOINT).exists()


def test_training_time_is_told_per_device():
    progress = loop.Progress()
    assert progress.hours_text() == "0.0 CPU hours"
    progress.add_time(2.5 * 3600, torch.device("cpu"))
    assert progress.hours_text() == "2.5 CPU hours"
    progress.add_time(0.4 * 3600, torch.device("cuda", 0))
    assert progress.hours_text() == "2.5 CPU hours + 0.4 GPU hours"
    restored = loop.Progress()
    restored.load_state_dict({"step": 1, "images_seen": 16, "seconds": 3600.0})  # saved before gpu_seconds existed
    assert restored.hours_text() == "1.0 CPU hours"
    gpu_only = loop.Progress()
    gpu_only.add_time(1800, torch.device("cuda"))
    assert gpu_only.hours_text() == "0.5 GPU hours"


def test_a_paused_trainer_does_not_count_the_pause():
    progress = loop.Progress()
    progress.add_time(1.0, torch.device("cpu"), cpu_seconds=1.9)      # two threads busy: the wall time counts
    progress.add_time(900.0, torch.device("cpu"), cpu_seconds=2.0)    # stopped for 15 minutes within the step
    assert progress.seconds == 3.0
    progress.add_time(5.0, torch.device("cuda"), cpu_seconds=0.5)     # the CPU waits on the GPU: wall time
    assert (progress.seconds, progress.gpu_seconds) == (8.0, 5.0)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict | list | tuple):
        for v in obj.values() if isinstance(obj, dict) else obj:
            yield from _tensors(v)


@pytest.mark.cuda
@pytest.mark.parametrize("family", ["stylegan2", "stylegan3-t", "progan"])
def test_a_run_trains_on_the_gpu_and_resumes_on_the_cpu(family, tmp_path, random_teacher):
    trainer = _train(family, tmp_path, 0.008, more=("--device", "cuda"))
    assert trainer.device.type == "cuda"
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)["trainer"]  # opens on a CPU-only machine too
    assert {t.device.type for t in _tensors(saved)} == {"cpu"}
    trainer = _train(family, tmp_path, 0.016, resume=True)  # --device defaults to cpu
    assert trainer.device.type == "cpu"
    progress = torch.load(tmp_path / CHECKPOINT, weights_only=True)["progress"]
    assert progress["images_seen"] == 16 and 0 < progress["gpu_seconds"] < progress["seconds"]
    model = load_model(tmp_path / "G_ema.pt")
    assert "GPU hours" in model.info.notes[0] and "CPU hours" in model.info.notes[0]
    assert torch.isfinite(model.synthesize(model.map(torch.randn(2, model.info.z_dim)))).all()


def test_progan_schedule_and_what_g_renders_meanwhile(tmp_path, random_teacher):
    from explorer.training.progan import grow_schedule, grown_synthesis, lod

    # 16 px: levels 4, 8, 16; 4 images at 4x4, then per level an 8-image fade and 4 stable images.
    stages = [grow_schedule(i, 3, stable_kimg=0.004, fade_kimg=0.008) for i in range(0, 36, 2)]
    assert stages[:10] == [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.25), (1, 0.5), (1, 0.75), (1, 1.0), (1, 1.0),
                           (2, 0.0), (2, 0.25)]
    assert stages[-1] == (2, 1.0) and grow_schedule(10**6, 3, 0.004, 0.008) == (2, 1.0)
    assert [lod(3, *s) for s in [(0, 1.0), (1, 0.0), (1, 0.75), (2, 0.5), (2, 1.0)]] == [2, 2, 1.25, 0.5, 0]

    trainer = _train("progan", tmp_path, 0.02)  # ends mid-fade of 16x16: level 2, alpha 0.5
    assert trainer.stage(trainer.images_seen) == (2, 0.5) and trainer.config["lod"] == 0.5
    ws = trainer.g_ema.mapping(torch.randn(3, 16))
    grown = grown_synthesis(trainer.g_ema.synthesis, ws, 2, 0.5)
    assert torch.allclose(trainer.g_ema.synthesis(ws), grown, atol=1e-5)
    low = grown_synthesis(trainer.g_ema.synthesis, ws, 1, 0.25)  # 8x8, as the engine draws it at lod 1.75
    trainer.g_ema.synthesis.lod = lod(3, 1, 0.25)
    assert torch.allclose(trainer.g_ema.synthesis(ws), low.repeat_interleave(2, 2).repeat_interleave(2, 3), atol=1e-5)


def test_growing_discriminator_takes_every_resolution():
    from explorer.training.discriminator import Discriminator

    D = Discriminator(16, {16: 8, 8: 8, 4: 8}, growing=True)
    for res in (4, 8, 16):
        assert D(torch.randn(4, 3, res, res), alpha=1.0 if res == 4 else 0.3).shape == (4, 1)
    with pytest.raises(ValueError):
        Discriminator(16, {16: 8, 8: 8, 4: 8})(torch.randn(4, 3, 8, 8))


@pytest.mark.parametrize("family", ["stylegan1", "stylegan2", "stylegan3-t", "stylegan3-r"])
def test_generator_gradients_reach_every_parameter(family, tmp_path, random_teacher):
    trainer = _train(family, tmp_path, 0.004)
    trainer.G.requires_grad_(True)
    fake, _ = trainer.generate(4)
    trainer.D(fake).sum().backward()
    missing = [name for name, p in trainer.G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_unfused_modconv_renders_the_same_image():
    from explorer.engine.networks import build_generator
    from explorer.training.gan import use_fused_modconv
    from explorer.training.stylegan2 import generator_config

    torch.manual_seed(0)
    G = build_generator("stylegan2", generator_config(16, channel_base=64, channel_max=16, z_dim=16))
    ws = G.mapping(torch.randn(3, 16))
    fused = G.synthesis(ws, noise_mode="const")
    assert torch.allclose(use_fused_modconv(G, False).synthesis(ws, noise_mode="const"), fused, atol=1e-4)


def test_filtered_lrelu_fast_path_has_gradients():
    from explorer.engine.ops import filtered_lrelu, setup_filter

    x = torch.randn(2, 3, 12, 12, requires_grad=True)
    f = setup_filter([1, 3, 3, 1] * 2)
    y = filtered_lrelu(x, fu=f, fd=f, up=2, down=2, padding=3, gain=2 ** 0.5, clamp=0.5)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    with torch.no_grad():
        assert torch.equal(y, filtered_lrelu(x, fu=f, fd=f, up=2, down=2, padding=3, gain=2 ** 0.5, clamp=0.5))
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_a_discriminator_saved_without_its_constant_filters_still_loads():
    """Runs saved before D held its resampling filters as buffers (training-state/sg2-64 until session 19) must
    load: the filters are constants the network rebuilds."""
    from explorer.training.stylegan2 import StyleGAN2Trainer, generator_config

    state = torch.load(Path(__file__).parents[1] / "training-state/sg2-64" / CHECKPOINT, weights_only=True)
    args = json.loads(state["args"])
    trainer = StyleGAN2Trainer(generator_config(args["resolution"], args["channel_base"], args["channel_max"],
                                                args["z_dim"]))
    old_d = {k: v for k, v in state["trainer"]["D"].items() if not k.endswith("resample_filter")}
    assert len(old_d) < len(state["trainer"]["D"])
    trainer.load_state_dict({**state["trainer"], "D": old_d})
    assert torch.equal(trainer.D.blocks[0].conv0.weight, old_d["blocks.0.conv0.weight"])
    logits = trainer.D(trainer.sample(torch.randn(4, args["z_dim"], generator=torch.Generator().manual_seed(0))))
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()


def _resume_committed(run: str, module: str, out: Path):
    """One more step of the committed run `training-state/<run>` in `out`: the trainer, the saved run
    settings before it and the images seen after it."""
    shutil.copytree(Path(__file__).parents[1] / "training-state" / run, out, dirs_exist_ok=True)
    before = torch.load(out / CHECKPOINT, weights_only=True)
    seen, args = before["progress"]["images_seen"], json.loads(before["args"])
    trainer = _main(module, ["--out", str(out), "--kimg", str((seen + args["batch"]) / 1000), "--resume",
                             "--log-seconds", "1e9", "--snapshot-kimg", "0"])
    after = torch.load(out / CHECKPOINT, weights_only=True)
    assert after["progress"]["images_seen"] == seen + args["batch"]
    assert after["progress"]["step"] == before["progress"]["step"] + 1
    return trainer, args, seen + args["batch"]


def test_the_committed_progan_state_resumes(tmp_path, random_teacher):
    """training-state/progan-64 is where the next session goes on: a resume takes one more step of that run,
    at full size with its fresh D's settings (the rates it was last run at), and the export still names the
    training before it."""
    trainer, args, _ = _resume_committed("progan-64", "progan", tmp_path)
    assert trainer.lod == 0 and trainer.ema_rampup is None
    assert args["lr"] != args["lr_d"]  # both rates were set apart from the defaults: a resume must keep them
    assert [g["lr"] for g in trainer.opt_G.param_groups] == [args["lr"]]
    assert [g["lr"] for g in trainer.opt_D.param_groups] == [args["lr_d"]]
    notes = load_model(tmp_path / "G_ema.pt").info.notes
    assert "1149 kimg, 13.6 CPU hours" in notes[0] and notes[1].startswith("trained on with a fresh discriminator")


def test_the_committed_stylegan2_state_resumes(tmp_path, random_teacher):
    """training-state/sg2-64 goes on at the settings it was last run at: no style mixing (what took it from 17.8
    to 8.3), R1 at 4x its default weight and the rate cut to a sixteenth (what took it on to 7.5), not the
    trainer's defaults; the export counts the whole run's images."""
    trainer, args, seen = _resume_committed("sg2-64", "stylegan2", tmp_path)
    assert (args["mixing"], args["r1_gamma"], args["lr"], args["ema_kimg"]) == (0.0, 0.2, 0.000125, 40.0)
    assert (trainer.mixing, trainer.r1_gamma) == (0.0, 0.2)
    assert {g["lr"] for g in trainer.opt_G.param_groups} == {0.000125}
    assert seen > 1_500_000 and f"{seen / 1000:.0f} kimg" in load_model(tmp_path / "G_ema.pt").info.notes[0]


def test_the_committed_stylegan1_state_resumes(tmp_path, random_teacher):
    """training-state/sg1-64 goes on as the run it was last run as: no style mixing (what took it from 13.7 to
    7.5), lazy R1 at 4x the StyleGAN2 weight (what took it on to 6.9), half the rate and twice the EMA half-life,
    not the trainer's defaults (mixing 0.9, R1 every step), past the shipped 594 kimg export."""
    trainer, args, seen = _resume_committed("sg1-64", "stylegan1", tmp_path)
    assert (args["mixing"], args["r1_interval"], args["r1_gamma"]) == (0.0, 16, 0.2)
    assert (args["lr"], args["ema_kimg"]) == (0.001, 10.0)
    assert (trainer.mixing, trainer.r1_interval, trainer.r1_gamma) == (0.0, 16, 0.2)
    assert seen > 600_000 and f"{seen / 1000:.0f} kimg" in load_model(tmp_path / "G_ema.pt").info.notes[0]


def test_the_committed_stylegan3r_state_resumes(tmp_path, random_teacher):
    """training-state/sg3r-64 goes on as the -R run it was started as: the small -R generator (1x1 convs,
    radial filters, channels doubled to 128) and D's input blur fading out over 100 kimg."""
    trainer, args, _ = _resume_committed("sg3r-64", "stylegan3", tmp_path)
    assert trainer.family == "stylegan3-r" and args["num_layers"] == 6 and args["channel_max"] == 64
    assert trainer.config["conv_kernel"] == 1 and trainer.config["channel_max"] == 128
    assert (trainer.blur_sigma, trainer.blur_kimg) == (2.5, 100)  # 10 px per 256 px, over 200 kimg x batch / 32
    assert load_model(tmp_path / "G_ema.pt").info.family == "stylegan3-r"


def test_the_committed_wide_stylegan3t_state_resumes(tmp_path, random_teacher):
    """training-state/sg3t-64-wide, trained on a GPU, goes on on the CPU too, as the wider -T run it was started
    as (8 layers, channel base 2048, batch 32), and its export still counts the GPU time."""
    trainer, args, _ = _resume_committed("sg3t-64-wide", "stylegan3", tmp_path)
    assert trainer.family == "stylegan3-t" and trainer.device.type == "cpu"
    assert (args["num_layers"], args["channel_base"], args["channel_max"], args["batch"]) == (8, 2048, 128, 32)
    assert "0.4 GPU hours" in load_model(tmp_path / "G_ema.pt").info.notes[0]
