"""facebookresearch pytorch_GAN_zoo PGAN checkpoints -> our ProGAN module.

`BaseGAN.save` writes a dict {config, netG, netD, avgG}: `config` is a pickled
`models.utils.config.BaseConfig` (an attribute bag; we unpickle it as `PGANConfig`, a stand-in that
only keeps the values), the others are state dicts; `avgG` is the averaged generator.

Tensors of a GNet and where they go in ours (`<i>` = scale index, resolution 4 * 2**i):

    formatLayer.module.{weight [C*16, in], bias [C*16]} -> synthesis.b4.dense
    groupScale0.0.module.*                              -> synthesis.b4.conv
    scaleLayers.<i>.0.module.* / .1.module.*            -> synthesis.b<8*2**i>.conv0 / conv1
    toRGBLayers.<i>.module.*                            -> synthesis.b<4*2**i>.torgb

Every layer is a `ConstrainedLayer`: it multiplies (W x + b) by sqrt(2 / fan_in), the bias
included, so each bias is stored here pre-multiplied by that constant.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import LoadError
from ..networks.progan import Generator
from .checkpoint import Checkpoint, pick_generator
from .tensor_table import TensorTable, converting

SOURCE = "facebookresearch-pgan"
FORMAT = "pgan-zoo-checkpoint"
LAYOUT = "PGAN"  # what error messages say was expected
GENERATORS = ("avgG", "netG")  # default first
OTHER_NETWORKS = ("netD",)
TANH_LOSSES = ("MSE", "DCGAN")      # losses whose generator ends with tanh
LINEAR_LOSSES = ("WGANGP", "Logistic")


class PGANConfig:
    """Stand-in for `models.utils.config.BaseConfig` while unpickling: keeps the attribute values."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
            raise TypeError("a PGAN config's pickled state is not a dict of attributes")
        self.values = dict(state)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, "values", {}).get(name, default)


# Foreign classes the file may name -> our stand-ins (for `torch_files.torch_load`).
STUBS: dict[str, type] = {"models.utils.config.BaseConfig": PGANConfig}


def matches(obj: Any) -> bool:
    return isinstance(obj, dict) and any(
        isinstance(obj.get(k), Mapping) and "formatLayer.module.weight" in obj[k] for k in GENERATORS)


def _he_constant(weight: torch.Tensor) -> float:
    """PGAN's per-layer scale sqrt(2 / fan_in), fan_in = all dimensions but the first."""
    return math.sqrt(2.0 / math.prod(weight.shape[1:]))


def convert_state(sd: TensorTable, num_scales: int, equalized: bool) -> dict[str, torch.Tensor]:
    """A GNet state dict as our module's (see the table in the module docstring)."""
    def layer(src: str) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = sd[f"{src}.module.weight"], sd[f"{src}.module.bias"]
        return w, (b * _he_constant(w) if equalized else b)

    pairs = {"synthesis.b4.dense": "formatLayer", "synthesis.b4.conv": "groupScale0.0"}
    for i in range(num_scales):
        pairs[f"synthesis.b{8 * 2**i}.conv0"] = f"scaleLayers.{i}.0"
        pairs[f"synthesis.b{8 * 2**i}.conv1"] = f"scaleLayers.{i}.1"
    for i in range(num_scales + 1):
        pairs[f"synthesis.b{4 * 2**i}.torgb"] = f"toRGBLayers.{i}"
    state = {}
    for ours, theirs in pairs.items():
        state[f"{ours}.weight"], state[f"{ours}.bias"] = layer(theirs)
    return state


def _number(path: Path, cfg: PGANConfig, key: str, default: float, kind: type = numbers.Real) -> float:
    """The config's value `key` (None: `default`), refused unless it is a number of `kind`."""
    value = cfg.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise LoadError(f"{path}: the file's config has {key}={value!r}, not a number")
    return value


def load(path: Path, obj: dict, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    generators = tuple(k for k in GENERATORS if isinstance(obj.get(k), Mapping))
    name = pick_generator(path, obj, network, GENERATORS, OTHER_NETWORKS)
    sd = TensorTable.from_state_dict(path, name, obj[name], LAYOUT)
    cfg = obj.get("config")
    cfg = cfg if isinstance(cfg, PGANConfig) else PGANConfig()
    notes = [] if "config" in obj else ["the file has no config: PGAN's defaults were assumed"]

    num_scales = len({k.split(".")[1] for k in sd.tensors if k.startswith("scaleLayers.")})
    file_res = 4 * 2**num_scales
    if resolution is not None and int(resolution) != file_res:
        raise LoadError(f"{path}: the network is {file_res}x{file_res}, not {resolution}x{resolution}")
    loss = str(cfg.get("lossCriterion", "WGANGP"))
    if loss not in TANH_LOSSES + LINEAR_LOSSES:
        notes.append(f"unknown loss {loss!r}: assumed a linear output (no tanh)")
    alpha = float(_number(path, cfg, "alpha", 0))
    if alpha:
        notes.append(f"a mid-training snapshot (alpha {alpha:g}): the image fades in the previous scale's output")
    equalized = bool(cfg.get("equalizedlR", True))
    per_channel_norm = bool(cfg.get("perChannelNormalization", True))
    leak = float(_number(path, cfg, "leakyReluLeak", 0.2))
    c_dim = int(_number(path, cfg, "categoryVectorDim", 0, numbers.Integral))

    try:
        with converting(sd):
            z_features = int(sd["formatLayer.module.weight"].shape[1])
            channels = [int(sd["groupScale0.0.module.weight"].shape[0])] + [
                int(sd[f"scaleLayers.{i}.1.module.weight"].shape[0]) for i in range(num_scales)]
            img_channels = int(sd["toRGBLayers.0.module.weight"].shape[0])
            state = convert_state(sd, num_scales, equalized)
        sd.check_all_used()
        config = dict(
            z_dim=z_features - c_dim,
            c_dim=c_dim,
            img_resolution=file_res,
            channels=channels,
            img_channels=img_channels,
            normalize_latent=per_channel_norm,
            pixel_norm=per_channel_norm,
            dense_pixel_norm=per_channel_norm,
            pixel_norm_eps=1e-8,
            equalized_lr=equalized,
            dense_gain=math.sqrt(2),
            torgb_gain=math.sqrt(2),
            lrelu_slope=leak,
            fused_upscale=False,
            output_activation="tanh" if loss in TANH_LOSSES else "linear",
            lod=alpha,
        )
        generator = Generator(**config)
        state["mapping.w_avg"] = generator.mapping.w_avg
        generator.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
        raise LoadError(f"{path}: network {name!r} does not fit a PGAN generator ({e})") from None
    if c_dim:
        notes.append(f"conditional: the {c_dim} label values are appended to z as the file's training code built them")
    return Checkpoint(generator=generator, family="progan", source=SOURCE, format=FORMAT, config=config,
                      network=name, networks=generators, notes=notes)
