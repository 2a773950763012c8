"""NVlabs StyleGAN (TensorFlow) `G_style` networks -> our StyleGAN (1) generator.

`G_style` holds a `G_mapping` and a `G_synthesis` component and the tracked `dlatent_avg`. The
variables map one to one onto ours (see `_state_dict`), with these conversions:

- dense weights are stored [in, out] (ours [out, in]); conv weights HWIO [kh, kw, in, out] (ours OIHW);
- TF scales weights at run time by gain / sqrt(fan_in) (gain sqrt(2), the mapping also by its
  lrmul 0.01) and applies a plain leaky ReLU; our mapping layers apply the sqrt(2) after the
  activation, which is the same for the weights but divides the stored mapping biases by sqrt(2);
- the style affine ('StyleMod') has gain 1 and TF adds 1 to the scale half at run time
  (`style_scale_offset=1`), the instance norm's epsilon is 1e-8, ToRGB has gain 1;
- the constant noise of layer i is the synthesis variable 'noise<i>', its strength 'Noise/weight';
- only the full-resolution ToRGB ('ToRGB_lod0') is used: the image of the trained network (lod 0).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import LoadError
from ..networks import stylegan1
from .checkpoint import Checkpoint, load_state
from .tensor_table import TensorTable, converting, numpy_tensor
from .tf_pickle import TFNetwork

SOURCE = "nvlabs-stylegan-tf"
LAYOUT = "StyleGAN"  # what error messages say was expected
FUSED_AUTO_MIN_RES = 128  # fused_scale='auto': the up-conv is fused when its output is >= 128 px.
G_STYLE_TRUNCATION = (0.7, 8)  # G_style's own default truncation_psi and truncation_cutoff.

# Static kwargs that only steer how the TF graph runs or trains, not what it computes here.
RUNTIME_KWARGS = {
    "randomize_noise", "dtype", "truncation_psi", "truncation_cutoff", "truncation_psi_val",
    "truncation_cutoff_val", "dlatent_avg_beta", "style_mixing_prob", "is_training", "is_validation",
    "is_template_graph", "components", "structure", "force_clean_graph",
}
# Static kwargs read from the variables' shapes or checked below.
CHECKED_KWARGS = {
    "num_channels", "resolution", "label_size", "latent_size", "dlatent_size", "dlatent_broadcast",
    "mapping_layers", "mapping_fmaps", "mapping_lrmul", "mapping_nonlinearity", "normalize_latents",
    "fmap_base", "fmap_decay", "fmap_max", "use_wscale", "use_styles", "const_input_layer", "use_noise",
    "nonlinearity", "use_pixel_norm", "use_instance_norm", "blur_filter", "fused_scale",
}


def _components(path: Path, net: TFNetwork) -> tuple[TFNetwork, TFNetwork]:
    syn, mapping = net.components.get("synthesis"), net.components.get("mapping")
    if syn is None or mapping is None:
        raise LoadError(f"{path}: the G_style network lacks its mapping or synthesis component")
    if syn.build_func_name != "G_synthesis" or mapping.build_func_name != "G_mapping":
        raise LoadError(f"{path}: a G_style network with components {mapping.build_func_name!r} and "
                        f"{syn.build_func_name!r}; only G_mapping and G_synthesis are supported")
    return syn, mapping


def _check_variant(path: Path, kw: dict) -> None:
    """Refuse the G_synthesis / G_mapping switches that no released model uses and we do not build."""
    unsupported = {
        "use_styles": (True, "a synthesis network without styles"),
        "const_input_layer": (True, "a synthesis network without the learned constant input"),
        "use_wscale": (True, "weights without the equalised learning rate"),
        "use_pixel_norm": (False, "pixel norm in the synthesis layers"),
        "use_instance_norm": (True, "synthesis layers without instance norm"),
        "normalize_latents": (True, "a mapping network without latent normalisation"),
        "nonlinearity": ("lrelu", "a synthesis nonlinearity other than lrelu"),
    }
    for key, (default, what) in unsupported.items():
        if kw.get(key, default) != default:
            raise LoadError(f"{path}: {what} ({key}={kw[key]!r}) is not supported")
    if kw.get("mapping_nonlinearity", "lrelu") not in ("lrelu", "relu"):
        raise LoadError(f"{path}: mapping nonlinearity {kw['mapping_nonlinearity']!r} is not supported")
    if int(kw.get("label_size", 0)) > 0:
        raise LoadError(f"{path}: conditional TF StyleGAN models (label_size > 0) are not supported")


def _state_dict(sv: TensorTable, mv: TensorTable, gv: TensorTable, num_mapping: int, resolutions: list[int],
                use_noise: bool) -> dict[str, torch.Tensor]:
    """The file's variables under our module's names: the whole name mapping in one place."""
    state = {}

    # Mapping: Dense<i> -> fc<i>; dlatent_avg -> w_avg.
    for i in range(num_mapping):
        state[f"mapping.fc{i}.weight"] = numpy_tensor(mv[f"Dense{i}/weight"].T)  # [out, in]
        state[f"mapping.fc{i}.bias"] = numpy_tensor(mv[f"Dense{i}/bias"] / math.sqrt(2))  # see the module notes
    state["mapping.w_avg"] = numpy_tensor(gv["dlatent_avg"])

    # Synthesis: per resolution the first layer (Const at 4x4, Conv0_up above) and the second.
    noise_index = 0
    for res in resolutions:
        ours, tf = f"synthesis.b{res}", f"{res}x{res}"
        layers = {"conv0": f"{tf}/Const", "conv1": f"{tf}/Conv"} if res == 4 else \
                 {"conv0": f"{tf}/Conv0_up", "conv1": f"{tf}/Conv1"}
        if res == 4:
            const = sv[f"{tf}/Const/const"]  # [1CHW]
            state[f"{ours}.const"] = numpy_tensor(const.reshape(const.shape[1:]))
        for name, scope in layers.items():
            layer = f"{ours}.{name}"
            if not scope.endswith("/Const"):
                state[f"{layer}.weight"] = numpy_tensor(sv[f"{scope}/weight"].transpose(3, 2, 0, 1))  # HWIO -> OIHW
            state[f"{layer}.bias"] = numpy_tensor(sv[f"{scope}/bias"])
            state[f"{layer}.affine.weight"] = numpy_tensor(sv[f"{scope}/StyleMod/weight"].T)  # [2C, w_dim]
            state[f"{layer}.affine.bias"] = numpy_tensor(sv[f"{scope}/StyleMod/bias"])
            if use_noise:
                state[f"{layer}.noise_strength"] = numpy_tensor(sv[f"{scope}/Noise/weight"])
                noise = sv[f"noise{noise_index}"]  # [11HW]
                state[f"{layer}.noise_const"] = numpy_tensor(noise.reshape(noise.shape[-2:]))
                noise_index += 1

    # The image: the full-resolution ToRGB.
    rgb = f"synthesis.b{resolutions[-1]}.torgb"
    state[f"{rgb}.weight"] = numpy_tensor(sv["ToRGB_lod0/weight"].transpose(3, 2, 0, 1))  # [3C11]
    state[f"{rgb}.bias"] = numpy_tensor(sv["ToRGB_lod0/bias"])
    return state


def build(path: Path, net: TFNetwork, resolution: int | None = None) -> Checkpoint:
    """Rebuild a TF StyleGAN generator (`G_style`) as our StyleGAN (1) `Generator`.

    Args:
        path: the file, for messages.
        net: the chosen `G_style` network of the pickle.
        resolution: optional; the file records its resolution, and a different one is refused.

    Raises:
        LoadError: a variant this program does not support, or variables that do not fit.
    """
    syn_net, map_net = _components(path, net)
    syn_kw, map_kw = syn_net.static_kwargs, map_net.static_kwargs
    kw = {**net.static_kwargs, **map_kw, **syn_kw}
    _check_variant(path, kw)
    sv, mv, gv = (TensorTable.from_tf(path, n, LAYOUT) for n in (syn_net, map_net, net))
    notes = []
    unknown = sorted(set(kw) - RUNTIME_KWARGS - CHECKED_KWARGS)
    if unknown:
        notes.append(f"static kwargs not interpreted: {', '.join(unknown)}")

    # Mapping: layer count and widths from the variables.
    num_mapping = mv.count(r"Dense\d+/weight")
    if num_mapping == 0:
        raise LoadError(f"{path}: the mapping network has no dense layers")
    with converting(sv, mv):
        z_dim, layer_features = mv["Dense0/weight"].shape
        w_dim = mv[f"Dense{num_mapping - 1}/weight"].shape[1]

        # Synthesis: blocks, widths, resolution.
        res_seen = [int(m.group(1)) for k in sv.tensors if (m := re.fullmatch(r"(\d+)x\1/Conv1?/weight", k))]
        if 4 not in res_seen:
            raise LoadError(f"{path}: the synthesis network has no 4x4 block")
        img_resolution = max(res_seen)
        if resolution is not None and int(resolution) != img_resolution:
            raise LoadError(f"{path}: the file holds a {img_resolution}x{img_resolution} generator, "
                            f"not {resolution}x{resolution}")
        resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        channels = [int(sv[f"{r}x{r}/{'Conv' if r == 4 else 'Conv1'}/weight"].shape[3]) for r in resolutions]
        img_channels = int(sv["ToRGB_lod0/weight"].shape[3])
    use_noise = bool(kw.get("use_noise", True))
    blur = kw.get("blur_filter", [1, 2, 1])
    if blur is not None and np.asarray(blur).ndim != 1:
        raise LoadError(f"{path}: a 2-D blur filter is not supported")
    fused = kw.get("fused_scale", "auto")
    fused_up_min_res = {"auto": FUSED_AUTO_MIN_RES, True: 8, False: None}.get(fused, -1)
    if fused_up_min_res == -1:
        raise LoadError(f"{path}: unknown fused_scale {fused!r}")

    config = dict(
        z_dim=int(z_dim),
        w_dim=int(w_dim),
        img_resolution=img_resolution,
        img_channels=img_channels,
        mapping_kwargs=dict(num_layers=num_mapping, layer_features=int(layer_features),
                            activation=str(kw.get("mapping_nonlinearity", "lrelu")),
                            lr_multiplier=float(kw.get("mapping_lrmul", 0.01))),
        channels=channels,
        fused_up_min_res=fused_up_min_res,
        blur_filter=None if blur is None else [float(t) for t in blur],
        fused_up_gain=1.0,
        bias_before_blur=False,
        use_noise=use_noise,
        share_block_noise=False,
        noise_wscale=False,
        style_gain=1.0,
        style_scale_offset=1.0,
        norm_eps=1e-8,
        torgb_gain=1.0,
    )
    try:
        generator = stylegan1.Generator(**config)
    except (TypeError, ValueError) as e:
        raise LoadError(f"{path}: the TF StyleGAN network does not fit our generator ({e})") from None

    with converting(sv, mv, gv):
        state = _state_dict(sv, mv, gv, num_mapping, resolutions, use_noise)
    sv.ignore(r"ToRGB_lod[1-9]\d*/(weight|bias)")  # lower-resolution outputs of progressive growing
    lod = float(sv["lod"]) if "lod" in sv else 0.0
    gv.ignore("lod")
    if lod != 0:
        notes.append(f"the pickle was saved mid-growth (lod {lod:g}); rendered at full resolution (lod 0)")
    sv.check_all_used()
    mv.check_all_used()
    gv.check_all_used()

    # Our blur kernels are not TF variables: they stay as built from blur_filter.
    load_state(path, generator, state, "the TF StyleGAN variables do not fit our generator", keep=("blur_kernel",))

    psi, cutoff = (net.static_kwargs.get("truncation_psi", G_STYLE_TRUNCATION[0]),
                   net.static_kwargs.get("truncation_cutoff", G_STYLE_TRUNCATION[1]))
    if cutoff is None:
        notes.append("NVlabs' G_style of this file treats truncation_cutoff=None as no truncation; "
                     "here None truncates all ws")
    else:
        notes.append(f"NVlabs' G_style truncates by default with psi {psi} on the first {cutoff} ws only "
                     f"(truncation_cutoff={cutoff}; this network has {generator.num_ws}); here "
                     f"truncation_cutoff=None truncates all ws, so pass {cutoff} to reproduce its default")
    return Checkpoint(generator=generator, family="stylegan1", source=SOURCE, format="tf-legacy-pickle",
                      config=config, network=net.name, networks=(net.name,), notes=notes)
