"""rosinality/stylegan2-pytorch checkpoints -> our StyleGAN2 generator.

Two layouts hold the same generator state dict: `convert_weight.py` writes {g_ema, latent_avg}
and `train.py` writes {g, d, g_ema, g_optim, d_optim, args, ada_aug_p}, where `args` is the
training script's `argparse.Namespace` (size, latent, n_mlp, channel_multiplier, ...).

The generator's modules map onto ours one to one:

- `style.<i>` (i = 1..n_mlp, after a pixel norm) are our `mapping.fc<i-1>` (same lr multiplier 0.01);
- `input.input` is `b4.const`; `conv1` and `to_rgb1` are `b4.conv1` and `b4.torgb`;
- `convs.<2j>` (the up-sampling conv), `convs.<2j+1>` and `to_rgbs.<j>` are `conv0`, `conv1` and
  `torgb` of the block at 8 * 2**j; `noises.noise_<i>` is the constant noise of the i-th noise layer;
- a StyledConv's modulation is our affine (its bias already starts at 1), `noise.weight` our
  `noise_strength`, `activate.bias` our bias;
- the up-sampling conv is a transposed convolution with the stored kernel followed by a blur with
  padding (1, 1): exactly our conv0 (a true convolution after zero insertion and FIR filtering), so
  the kernel is taken as it is; the blur and the skip up-sampling kernels are stored pre-multiplied
  by the up-sampling gain 4, which our ops apply themselves.

Widths per resolution come from the tensors (rosinality's channel table is a dict that need not
follow `channel_base // res`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import LoadError
from ..networks import stylegan2
from .checkpoint import W_AVG_SAMPLES, W_AVG_SEED, Checkpoint, estimate_w_avg, load_state, pick_generator
from .tensor_table import TensorTable, converting

SOURCE = "rosinality-stylegan2-pytorch"
NETWORKS = ("g_ema", "g")  # generator state dicts of a checkpoint, the default first
OTHER_NETWORKS = ("d",)     # train.py's discriminator
SAFE_GLOBALS = [argparse.Namespace]  # train.py's `args`: a plain attribute bag
LR_MAPPING = 0.01  # rosinality's `lr_mlp`, not recorded in the files; its scripts never change it
LAYOUT = "StyleGAN2"  # what error messages say was expected
UP_GAIN = 4  # factor ** 2 of the 2x up-sampling kernels


def _is_generator(sd: Any) -> bool:
    return isinstance(sd, Mapping) and all(k in sd for k in ("style.1.weight", "input.input", "to_rgb1.conv.weight"))


def matches(obj: Any) -> bool:
    """A dict holding a rosinality StyleGAN2 generator state dict under 'g_ema' or 'g'."""
    return isinstance(obj, Mapping) and any(_is_generator(obj.get(k)) for k in NETWORKS)


def _format(obj: Mapping) -> str:
    if "args" in obj or "g_optim" in obj:
        return "rosinality-train-checkpoint"
    if "latent_avg" in obj:
        return "rosinality-convert-weight"
    return "rosinality-checkpoint"


def _styled_conv(state: dict, ours: str, sd: TensorTable, theirs: str) -> None:
    """StyledConv -> SynthesisLayer (without the noise map, which lives in `noises`)."""
    state[f"{ours}.weight"] = sd[f"{theirs}.conv.weight"][0]  # [1OIkk] -> [OIkk]
    state[f"{ours}.affine.weight"] = sd[f"{theirs}.conv.modulation.weight"]
    state[f"{ours}.affine.bias"] = sd[f"{theirs}.conv.modulation.bias"]
    state[f"{ours}.noise_strength"] = sd[f"{theirs}.noise.weight"].reshape([])
    state[f"{ours}.bias"] = sd[f"{theirs}.activate.bias"]
    if f"{theirs}.conv.blur.kernel" in sd:
        state[f"{ours}.resample_filter"] = sd[f"{theirs}.conv.blur.kernel"] / UP_GAIN


def _to_rgb(state: dict, block: str, sd: TensorTable, theirs: str) -> None:
    state[f"{block}.torgb.weight"] = sd[f"{theirs}.conv.weight"][0]
    state[f"{block}.torgb.affine.weight"] = sd[f"{theirs}.conv.modulation.weight"]
    state[f"{block}.torgb.affine.bias"] = sd[f"{theirs}.conv.modulation.bias"]
    state[f"{block}.torgb.bias"] = sd[f"{theirs}.bias"].reshape(-1)
    if f"{theirs}.upsample.kernel" in sd:
        state[f"{block}.resample_filter"] = sd[f"{theirs}.upsample.kernel"] / UP_GAIN


def _args(obj: Mapping) -> dict:
    """size, latent, n_mlp, channel_multiplier and arch from train.py's `args`, where present."""
    args = obj.get("args")
    if isinstance(args, argparse.Namespace):
        args = vars(args)
    if not isinstance(args, Mapping):  # absent (converted files) or something else: the tensors decide
        return {}
    return {k: args[k] for k in ("size", "latent", "n_mlp", "channel_multiplier", "arch") if k in args}


def load(path: Path, obj: Mapping, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    """Rebuild the chosen generator of a rosinality StyleGAN2 checkpoint (default: g_ema).

    Args:
        path: the file, for messages.
        obj: the file's content, loaded weights-only.
        network: 'g_ema' or 'g' (training checkpoints hold both), None for the default.
        resolution: optional; must agree with the file's when given.

    Raises:
        LoadError: an unknown network, a layout that does not fit, or inconsistent arguments.
    """
    networks = tuple(k for k in NETWORKS if _is_generator(obj.get(k)))
    name = pick_generator(path, obj, network, NETWORKS, OTHER_NETWORKS)
    sd = TensorTable.from_state_dict(path, name, obj[name], LAYOUT)
    args = _args(obj)
    if args.get("arch", "stylegan2") != "stylegan2":
        raise LoadError(f"{path}: a rosinality {args['arch']!r} checkpoint; only 'stylegan2' is supported")
    notes = []

    # Shapes: mapping depth and width, blocks and their widths.
    n_mlp = sd.count(r"style\.\d+\.weight")
    num_convs = sd.count(r"convs\.\d+\.conv\.weight")
    if num_convs % 2:
        raise LoadError(f"{path}: {name} has an odd number of convolutions ({num_convs})")
    img_resolution = 2 ** (2 + num_convs // 2)
    resolutions = [2**i for i in range(2, 3 + num_convs // 2)]
    taps = [1, 3, 3, 1]
    with converting(sd):
        w_dim = sd["style.1.weight"].shape[0]
        z_dim = sd["style.1.weight"].shape[1]
        channels = {4: sd["input.input"].shape[1]}
        for j, res in enumerate(resolutions[1:]):
            channels[res] = sd[f"convs.{2 * j + 1}.conv.weight"].shape[1]
        img_channels = sd["to_rgb1.conv.weight"].shape[1]
        if "convs.0.conv.blur.kernel" in sd:  # our filter buffers are replaced by the file's; the length matters
            taps = sd["convs.0.conv.blur.kernel"].sum(dim=1).tolist()
    found = {"size": img_resolution, "latent": w_dim, "n_mlp": n_mlp}
    for key, value in found.items():
        if key in args and (not isinstance(args[key], int) or args[key] != value):
            raise LoadError(f"{path}: the training arguments say {key}={args[key]!r}, the weights {value}")
    cm = args.get("channel_multiplier")
    if isinstance(cm, int):  # only for a note
        table = {res: 512 if res <= 32 else 256 * cm * 64 // res for res in resolutions}  # rosinality's own
        if table != channels:
            notes.append(f"channel widths differ from rosinality's table for channel_multiplier={cm}: "
                         f"the widths of the weights were used")
    if resolution is not None and int(resolution) != img_resolution:
        raise LoadError(f"{path}: the file holds a {img_resolution}x{img_resolution} generator, "
                        f"not {resolution}x{resolution}")

    config = dict(
        z_dim=int(z_dim), c_dim=0, w_dim=int(w_dim), img_resolution=int(img_resolution),
        img_channels=int(img_channels),
        mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=LR_MAPPING),
        resample_filter=taps,
        **stylegan2.channel_kwargs(channels),
    )
    try:
        generator = stylegan2.Generator(**config)
    except (TypeError, ValueError) as e:
        raise LoadError(f"{path}: {name} does not fit our StyleGAN2 generator ({e})") from None

    # Tensors -> our state dict.
    state = {}
    with converting(sd):
        for i in range(n_mlp):
            state[f"mapping.fc{i}.weight"] = sd[f"style.{i + 1}.weight"]
            state[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.bias"]
        state["synthesis.b4.const"] = sd["input.input"][0]
        _styled_conv(state, "synthesis.b4.conv1", sd, "conv1")
        _to_rgb(state, "synthesis.b4", sd, "to_rgb1")
        for j, res in enumerate(resolutions[1:]):
            _styled_conv(state, f"synthesis.b{res}.conv0", sd, f"convs.{2 * j}")
            _styled_conv(state, f"synthesis.b{res}.conv1", sd, f"convs.{2 * j + 1}")
            _to_rgb(state, f"synthesis.b{res}", sd, f"to_rgbs.{j}")
        noise_layers = [f"synthesis.{layer}" for layer, _res in generator.synthesis.noise_layers]
        if sd.count(r"noises\.noise_\d+") == 0:
            gen = torch.Generator().manual_seed(0)
            for layer, res in generator.synthesis.noise_layers:
                state[f"synthesis.{layer}.noise_const"] = torch.randn([res, res], generator=gen)
            notes.append("the file stores no constant noise: 'const' noise was drawn from seed 0")
        else:
            for i, layer in enumerate(noise_layers):
                noise = sd[f"noises.noise_{i}"]
                state[f"{layer}.noise_const"] = noise.reshape(noise.shape[-2:])
    sd.check_all_used()

    w_avg_estimated = False
    latent_avg = obj.get("latent_avg") if name == "g_ema" else None
    if isinstance(latent_avg, torch.Tensor) and latent_avg.numel() == w_dim:
        state["mapping.w_avg"] = latent_avg.detach().to(torch.float32).reshape(-1)
    else:
        w_avg_estimated = True
        notes.append(f"the file stores no average w: estimated as the mean w of {W_AVG_SAMPLES} z "
                     f"(seed {W_AVG_SEED}); truncated images differ slightly from rosinality's mean_latent()")

    # What the file does not hold stays as built: conv1's unused filters, and w_avg until estimated.
    load_state(path, generator, state, f"{name} does not fit our StyleGAN2 generator",
               keep=("resample_filter", "mapping.w_avg"))
    if w_avg_estimated:
        generator.mapping.w_avg.copy_(estimate_w_avg(generator.mapping))
    return Checkpoint(generator=generator, family="stylegan2", source=SOURCE, format=_format(obj), config=config,
                      network=name, networks=networks, notes=notes, w_avg_estimated=w_avg_estimated)
