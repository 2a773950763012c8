"""tkarras' TF ProGAN (`G_paper`, pickled `tfutil.Network`) -> our ProGAN module.

Variables of the original, per block (`<r>` = resolution, `<lod>` = log2(final) - log2(r)):

    4x4/Dense/weight   [in, C*16]   dense, he gain sqrt(2)/4; output reshaped to [C, 4, 4]
    4x4/Dense/bias     [C]          one bias per channel, added after the reshape
    4x4/Conv/weight    [3, 3, C, C]
    <r>/Conv0/weight   [3, 3, I, O] after a nearest-neighbour 2x up-sampling (fused_scale=False)
    <r>/Conv0_up/weight[3, 3, O, I] fused: 2x transposed conv (fused_scale=True)
    <r>/Conv1/weight   [3, 3, O, O]
    ToRGB_lod<lod>/weight [1, 1, C, img_channels], he gain 1
    lod                []           the fade level (0 once training has reached full resolution)

Convs are HWIO (TF), dense layers [in, out]; every weight is stored unit-scale (use_wscale) and
multiplied at run time by gain / sqrt(fan_in), gain sqrt(2) unless stated above.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import LoadError
from ..networks.progan import Generator
from .checkpoint import Checkpoint
from .tensor_table import TensorTable, converting, numpy_tensor
from .tf_pickle import TFNetwork

SOURCE = "tkarras-progan-tf"
LAYOUT = "ProGAN G_paper"  # what error messages say was expected


def _conv(w: np.ndarray) -> torch.Tensor:
    """HWIO -> OIHW."""
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))


def _conv_up(w: np.ndarray) -> torch.Tensor:
    """A fused up-conv's [kh, kw, out, in] -> OIHW."""
    return torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1)))


def convert_state(v: TensorTable, block_resolutions: list[int], fused: bool) -> dict[str, torch.Tensor]:
    """The TF variables as our module's state dict (see the table in the module docstring)."""
    final = block_resolutions[-1]
    state: dict[str, torch.Tensor] = {}
    for res in block_resolutions:
        tf, ours = f"{res}x{res}", f"synthesis.b{res}"
        if res == 4:
            channels = v["4x4/Dense/bias"].shape[0]
            state[f"{ours}.dense.weight"] = numpy_tensor(v["4x4/Dense/weight"].T)  # [C*16, in]
            state[f"{ours}.dense.bias"] = numpy_tensor(np.repeat(v["4x4/Dense/bias"], 16))  # per channel -> per feature
            assert state[f"{ours}.dense.bias"].shape[0] == channels * 16
            state[f"{ours}.conv.weight"] = _conv(v[f"{tf}/Conv/weight"])
            state[f"{ours}.conv.bias"] = numpy_tensor(v[f"{tf}/Conv/bias"])
        else:
            up = "Conv0_up" if fused else "Conv0"
            state[f"{ours}.conv0.weight"] = (_conv_up if fused else _conv)(v[f"{tf}/{up}/weight"])
            state[f"{ours}.conv0.bias"] = numpy_tensor(v[f"{tf}/{up}/bias"])
            state[f"{ours}.conv1.weight"] = _conv(v[f"{tf}/Conv1/weight"])
            state[f"{ours}.conv1.bias"] = numpy_tensor(v[f"{tf}/Conv1/bias"])
        lod = int(math.log2(final)) - int(math.log2(res))
        state[f"{ours}.torgb.weight"] = _conv(v[f"ToRGB_lod{lod}/weight"])
        state[f"{ours}.torgb.bias"] = numpy_tensor(v[f"ToRGB_lod{lod}/bias"])
    return state


def build(path: Path, net: TFNetwork, resolution: int | None) -> Checkpoint:
    """Rebuild a `G_paper` network: widths from the variables' shapes, switches from its kwargs."""
    kw, v = net.static_kwargs, TensorTable.from_tf(path, net, LAYOUT)
    if "4x4/Dense/weight" not in v:
        raise LoadError(f"{path}: network {net.name!r} has no 4x4/Dense layer; not a ProGAN G_paper generator")

    # Resolution: from the kwargs, else from the number of ToRGB layers (one per block).
    num_torgb = len({name.split("/")[0] for name in v.tensors if name.startswith("ToRGB_lod")})
    file_res = int(kw.get("resolution") or 2 ** (num_torgb + 1))
    if resolution is not None and int(resolution) != file_res:
        raise LoadError(f"{path}: the network is {file_res}x{file_res}, not {resolution}x{resolution}")
    log2 = int(round(math.log2(file_res)))
    block_resolutions = [2**i for i in range(2, log2 + 1)]
    missing = [r for r in block_resolutions if f"{r}x{r}/Conv1/weight" not in v and r != 4]
    if missing or 2**log2 != file_res:
        raise LoadError(f"{path}: network {net.name!r} lacks the layers of a {file_res}x{file_res} ProGAN")

    fused = any("/Conv0_up/" in name for name in v.tensors)
    label_size = int(kw.get("label_size", 0))
    with converting(v):
        in_features = v["4x4/Dense/weight"].shape[0]
        channels = [v["4x4/Dense/bias"].shape[0]] + [v[f"{r}x{r}/Conv1/bias"].shape[0] for r in block_resolutions[1:]]
        lod = float(np.asarray(v["lod"])) if "lod" in v else 0.0
        img_channels = v["ToRGB_lod0/bias"].shape[0] if "ToRGB_lod0/bias" in v else kw.get("num_channels", 3)
    config = dict(
        z_dim=in_features - label_size,
        c_dim=label_size,
        img_resolution=file_res,
        channels=[int(c) for c in channels],
        img_channels=int(img_channels),
        normalize_latent=bool(kw.get("normalize_latents", True)),
        pixel_norm=bool(kw.get("use_pixelnorm", True)),
        dense_pixel_norm=True,
        pixel_norm_eps=float(kw.get("pixelnorm_epsilon", 1e-8)),
        equalized_lr=bool(kw.get("use_wscale", True)),
        dense_gain=math.sqrt(2) / 4,  # the original overrides the dense layer's gain to match its Theano code
        torgb_gain=1.0,
        lrelu_slope=0.2 if kw.get("use_leakyrelu", True) else 0.0,
        fused_upscale=fused,
        output_activation="linear",
        lod=lod,
    )
    notes = []
    if lod != 0:
        notes.append(f"a mid-training snapshot (lod {lod:g}): the image fades in the lower-resolution outputs, "
                     "as the file's own network does")

    try:
        with converting(v):
            state = convert_state(v, block_resolutions, fused)
        v.check_all_used()
        generator = Generator(**config)
        state["mapping.w_avg"] = generator.mapping.w_avg
        generator.load_state_dict(state, strict=True)
    except LoadError:
        raise
    except (KeyError, RuntimeError, ValueError, AssertionError) as e:
        raise LoadError(f"{path}: network {net.name!r} does not fit a ProGAN generator ({e})") from None
    return Checkpoint(generator=generator, family="progan", source=SOURCE, format="", config=config,
                      network=net.name, networks=(net.name,), notes=notes)

