"""akanimax pro_gan_pytorch save-info files -> our ProGAN module.

`ProGAN.get_save_info` writes a dict {generator, discriminator, gen_optim, dis_optim,
shadow_generator}; each network is {conf: {depth, num_channels, latent_size, use_eql}, state_dict}.
`shadow_generator` is the averaged generator. The conf does not record the channel widths: they are
read from the tensor shapes.

Tensors and where they go in ours (`<i>` = block index, resolution 4 * 2**i):

    layers.0.conv_1.{weight [in, C, 4, 4], bias [C]} -> synthesis.b4.dense
        (a 4x4 transposed conv on the 1x1 latent is a dense layer: weight -> [C*16, in],
        the per-channel bias repeated over the 16 positions; its fan_in is `in`)
    layers.0.conv_2.*                                -> synthesis.b4.conv
    layers.<i>.conv_1.* / conv_2.*  (i >= 1)         -> synthesis.b<4*2**i>.conv0 / conv1
    rgb_converters.<i>.*                             -> synthesis.b<4*2**i>.torgb

Equalised layers scale the weight by sqrt(2) / sqrt(fan_in) (ToRGB included), not the bias.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import LoadError
from ..networks.progan import Generator
from .checkpoint import Checkpoint, pick_generator
from .tensor_table import TensorTable, converting

SOURCE = "akanimax-pro-gan-pytorch"
FORMAT = "akanimax-save-info"
LAYOUT = "pro_gan_pytorch"  # what error messages say was expected
GENERATORS = ("shadow_generator", "generator")  # default first
OTHER_NETWORKS = ("discriminator", "gen_optim", "dis_optim")


def _is_generator(entry: Any) -> bool:
    return (isinstance(entry, Mapping) and isinstance(entry.get("state_dict"), Mapping)
            and "layers.0.conv_1.weight" in entry["state_dict"])


def matches(obj: Any) -> bool:
    return isinstance(obj, dict) and any(_is_generator(obj.get(k)) for k in GENERATORS)


def convert_state(sd: TensorTable, num_blocks: int) -> dict[str, torch.Tensor]:
    """A pro_gan_pytorch Generator state dict as our module's (see the module docstring)."""
    w, b = sd["layers.0.conv_1.weight"], sd["layers.0.conv_1.bias"]
    in_features, channels = w.shape[:2]
    state = {
        "synthesis.b4.dense.weight": w.reshape(in_features, channels * 16).t().contiguous(),  # [C*16, in]
        "synthesis.b4.dense.bias": b.repeat_interleave(16),  # per channel -> per feature
    }
    pairs = {"synthesis.b4.conv": "layers.0.conv_2"}
    for i in range(1, num_blocks):
        pairs[f"synthesis.b{4 * 2**i}.conv0"] = f"layers.{i}.conv_1"
        pairs[f"synthesis.b{4 * 2**i}.conv1"] = f"layers.{i}.conv_2"
    for i in range(num_blocks):
        pairs[f"synthesis.b{4 * 2**i}.torgb"] = f"rgb_converters.{i}"
    for ours, theirs in pairs.items():
        for p in ("weight", "bias"):
            state[f"{ours}.{p}"] = sd[f"{theirs}.{p}"]
    return state


def load(path: Path, obj: dict, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    generators = tuple(k for k in GENERATORS if _is_generator(obj.get(k)))
    name = pick_generator(path, obj, network, GENERATORS, OTHER_NETWORKS)
    entry = obj[name]
    if not isinstance(entry, Mapping):
        raise LoadError(f"{path}: network {name!r} is a {type(entry).__name__}, not a dict of conf and state_dict")
    conf = entry.get("conf") if isinstance(entry.get("conf"), Mapping) else {}
    sd = TensorTable.from_state_dict(path, name, entry.get("state_dict"), LAYOUT)

    num_blocks = len({k.split(".")[1] for k in sd.tensors if k.startswith("layers.")})
    file_res = 4 * 2 ** (num_blocks - 1)
    depth = conf.get("depth")
    if depth is not None and depth != num_blocks + 1:  # file_res is 2**depth
        raise LoadError(f"{path}: network {name!r} records depth {depth} but holds {num_blocks} blocks")
    if resolution is not None and int(resolution) != file_res:
        raise LoadError(f"{path}: the network is {file_res}x{file_res}, not {resolution}x{resolution}")

    try:
        with converting(sd):
            z_dim = int(sd["layers.0.conv_1.weight"].shape[0])
            channels = [int(sd[f"layers.{i}.conv_2.weight"].shape[0]) for i in range(num_blocks)]
            img_channels = int(sd["rgb_converters.0.weight"].shape[0])
            state = convert_state(sd, num_blocks)
        sd.check_all_used()
        config = dict(
            z_dim=z_dim,
            c_dim=0,
            img_resolution=file_res,
            channels=channels,
            img_channels=img_channels,
            normalize_latent=True,
            pixel_norm=True,
            dense_pixel_norm=False,  # the first block normalises only after its 3x3 conv
            pixel_norm_eps=1e-8,
            equalized_lr=bool(conf.get("use_eql", True)),
            dense_gain=math.sqrt(2),
            torgb_gain=math.sqrt(2),
            lrelu_slope=0.2,
            fused_upscale=False,
            output_activation="linear",
            lod=0.0,  # the package renders with alpha = 1: the last block fully faded in
        )
        generator = Generator(**config)
        state["mapping.w_avg"] = generator.mapping.w_avg
        generator.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise LoadError(f"{path}: network {name!r} does not fit a pro_gan_pytorch generator ({e})") from None
    return Checkpoint(generator=generator, family="progan", source=SOURCE, format=FORMAT, config=config,
                      network=name, networks=generators, notes=[])
