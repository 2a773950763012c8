"""NVlabs StyleGAN2 (TensorFlow) `G_main` networks -> our StyleGAN2 generator.

The TF generator is `G_main` with a `G_mapping` and a `G_synthesis_stylegan2` component. Its
variables map one to one onto ours, with these conversions:

- dense weights are stored [in, out] (ours [out, in]); conv weights HWIO [kh, kw, in, out] (ours OIHW);
- the style affines ('mod_weight', 'mod_bias') are initialised at bias 0 and TF adds 1 at run
  time, where ours stores the 1 in the bias;
- 'Conv0_up' correlates the zero-inserted input with its weights (a transposed convolution of
  the flipped kernel), where our up-sampling conv0 convolves: its kernel is flipped;
- the per-layer constant noise is the synthesis variable 'noise<i>', in layer order.

The channel table is read from the weights; TF's `nf(stage) = min(int(fmap_base / 2**(stage *
fmap_decay)), fmap_max)` of the block at `res` is `min(2 * fmap_base // res, fmap_max)` when
fmap_decay is 1, which our `channel_base`/`channel_max` express; other tables go in `block_channels`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..errors import LoadError
from ..networks import stylegan2
from ..ops import ACTIVATIONS
from .checkpoint import Checkpoint, load_state
from .tensor_table import TensorTable, converting, numpy_tensor
from .tf_pickle import TFNetwork

SOURCE = "nvlabs-stylegan2-tf"
LAYOUT = "StyleGAN2"  # what error messages say was expected
SYNTHESIS_FUNCS = ("G_synthesis_stylegan2",)
MAPPING_FUNCS = ("G_mapping",)
ARCHITECTURES = ("orig", "skip", "resnet")

# Static kwargs that only steer how the TF graph runs or trains, not what it computes here.
RUNTIME_KWARGS = {
    "randomize_noise", "fused_modconv", "dtype", "truncation_psi", "truncation_cutoff", "truncation_psi_val",
    "truncation_cutoff_val", "dlatent_avg_beta", "style_mixing_prob", "is_training", "is_validation",
    "is_template_graph", "components", "return_dlatents", "structure", "force_clean_graph",
}
# Static kwargs whose values are read from the variables' shapes, or checked below.
SHAPE_KWARGS = {
    "num_channels", "resolution", "label_size", "latent_size", "dlatent_size", "dlatent_broadcast",
    "mapping_layers", "mapping_fmaps", "fmap_base", "fmap_decay", "fmap_min", "fmap_max",
    "mapping_lrmul", "mapping_nonlinearity", "normalize_latents", "architecture", "nonlinearity",
    "resample_kernel",
}


def _conv_weight(w: np.ndarray, flip: bool = False) -> torch.Tensor:
    """TF HWIO [kh, kw, in, out] -> OIHW [out, in, kh, kw], optionally flipped in space."""
    w = w.transpose(3, 2, 0, 1)  # [OIkk]
    return numpy_tensor(w[:, :, ::-1, ::-1] if flip else w)


def _modulated(state: dict, prefix: str, v: TensorTable, tf_prefix: str, flip: bool = False) -> None:
    """One modulated conv (SynthesisLayer or ToRGBLayer): weight, style affine and bias."""
    state[f"{prefix}.weight"] = _conv_weight(v[f"{tf_prefix}/weight"], flip)
    state[f"{prefix}.affine.weight"] = numpy_tensor(v[f"{tf_prefix}/mod_weight"].T)  # [in, w_dim]
    state[f"{prefix}.affine.bias"] = numpy_tensor(v[f"{tf_prefix}/mod_bias"] + 1)  # TF adds the 1 at run time
    state[f"{prefix}.bias"] = numpy_tensor(v[f"{tf_prefix}/bias"])


def _noise(state: dict, prefix: str, v: TensorTable, tf_prefix: str, index: int) -> None:
    state[f"{prefix}.noise_strength"] = numpy_tensor(v[f"{tf_prefix}/noise_strength"]).reshape([])
    noise = v[f"noise{index}"]
    state[f"{prefix}.noise_const"] = numpy_tensor(noise.reshape(noise.shape[-2:]))


def _components(path: Path, net: TFNetwork) -> tuple[TFNetwork, TFNetwork]:
    syn, mapping = net.components.get("synthesis"), net.components.get("mapping")
    if syn is None or mapping is None:
        raise LoadError(f"{path}: the G_main network lacks its mapping or synthesis component")
    if syn.build_func_name not in SYNTHESIS_FUNCS:
        raise LoadError(f"{path}: a G_main network with synthesis {syn.build_func_name!r}; only StyleGAN2's "
                        f"{', '.join(SYNTHESIS_FUNCS)} is supported")
    if mapping.build_func_name not in MAPPING_FUNCS:
        raise LoadError(f"{path}: a G_main network with mapping {mapping.build_func_name!r}; only "
                        f"{', '.join(MAPPING_FUNCS)} is supported")
    return syn, mapping


def build(path: Path, net: TFNetwork, resolution: int | None = None) -> Checkpoint:
    """Rebuild a TF StyleGAN2 generator (`G_main`) as our StyleGAN2 `Generator`.

    Args:
        path: the file, for messages.
        net: the chosen `G_main` network of the pickle.
        resolution: ignored; the file records its resolution.

    Raises:
        LoadError: a variant this program does not support, or variables that do not fit.
    """
    syn_net, map_net = _components(path, net)
    syn_kw, map_kw = syn_net.static_kwargs, map_net.static_kwargs
    sv, mv = TensorTable.from_tf(path, syn_net, LAYOUT), TensorTable.from_tf(path, map_net, LAYOUT)
    notes = []
    unknown = sorted((set(syn_kw) | set(map_kw) | set(net.static_kwargs)) - RUNTIME_KWARGS - SHAPE_KWARGS)
    if unknown:
        notes.append(f"static kwargs not interpreted: {', '.join(unknown)}")

    # Mapping: what the variables and the static kwargs say.
    if int(map_kw.get("label_size", 0)) > 0 or "LabelConcat/weight" in mv:
        raise LoadError(f"{path}: conditional TF StyleGAN2 models (label_size > 0) are not supported")
    if not map_kw.get("normalize_latents", True):
        raise LoadError(f"{path}: a mapping network without latent normalisation is not supported")
    activations = {str(map_kw.get("mapping_nonlinearity", "lrelu")), str(syn_kw.get("nonlinearity", "lrelu"))}
    if not activations <= set(ACTIVATIONS):
        raise LoadError(f"{path}: unknown nonlinearity in {sorted(activations)}")
    num_mapping = mv.count(r"Dense\d+/weight")
    if num_mapping == 0:
        raise LoadError(f"{path}: the mapping network has no dense layers")
    with converting(sv, mv):
        z_dim = mv["Dense0/weight"].shape[0]
        layer_features = mv["Dense0/weight"].shape[1]
        w_dim = mv[f"Dense{num_mapping - 1}/weight"].shape[1]

        # Synthesis: blocks and their widths.
        res_log2 = [int(m.group(1)) for k in sv.tensors if (m := re.fullmatch(r"(\d+)x\1/Conv1?/weight", k))]
        if not res_log2 or min(res_log2) != 4:
            raise LoadError(f"{path}: the synthesis network has no 4x4 block")
        img_resolution = max(res_log2)
        resolutions = [2**i for i in range(2, int(np.log2(img_resolution)) + 1)]
        channels = {res: sv[f"{res}x{res}/{'Conv' if res == 4 else 'Conv1'}/weight"].shape[3] for res in resolutions}
        img_channels = sv[f"{img_resolution}x{img_resolution}/ToRGB/weight"].shape[3]
    architecture = str(syn_kw.get("architecture", "skip"))
    if architecture not in ARCHITECTURES:
        raise LoadError(f"{path}: unknown StyleGAN2 architecture {architecture!r}")
    kernel = syn_kw.get("resample_kernel", [1, 3, 3, 1])
    kernel = np.asarray([1, 1] if kernel is None else kernel, dtype=np.float64)  # None: TF's box filter
    if kernel.ndim != 1:
        raise LoadError(f"{path}: a 2-D resample kernel is not supported")
    kernel = kernel.tolist()

    config = dict(
        z_dim=int(z_dim), c_dim=0, w_dim=int(w_dim), img_resolution=int(img_resolution),
        img_channels=int(img_channels),
        mapping_kwargs=dict(num_layers=num_mapping, layer_features=int(layer_features),
                            activation=str(map_kw.get("mapping_nonlinearity", "lrelu")),
                            lr_multiplier=float(map_kw.get("mapping_lrmul", 0.01))),
        architecture=architecture, resample_filter=kernel,
        activation=str(syn_kw.get("nonlinearity", "lrelu")),
        **stylegan2.channel_kwargs(channels),
    )
    try:
        generator = stylegan2.Generator(**config)
    except (TypeError, ValueError) as e:
        raise LoadError(f"{path}: the TF StyleGAN2 network does not fit our generator ({e})") from None

    # Variables -> our state dict.
    if "dlatent_avg" not in net.variables:
        raise LoadError(f"{path}: the G_main network has no dlatent_avg")
    state = {"mapping.w_avg": numpy_tensor(net.variables["dlatent_avg"])}
    with converting(sv, mv):
        for i in range(num_mapping):
            state[f"mapping.fc{i}.weight"] = numpy_tensor(mv[f"Dense{i}/weight"].T)  # [out, in]
            state[f"mapping.fc{i}.bias"] = numpy_tensor(mv[f"Dense{i}/bias"])
        noise_index = 0
        for res in resolutions:
            b, t = f"synthesis.b{res}", f"{res}x{res}"
            layers = [("conv1", f"{t}/Conv", False)] if res == 4 else [("conv0", f"{t}/Conv0_up", True),
                                                                        ("conv1", f"{t}/Conv1", False)]
            if res == 4:
                const = sv[f"{t}/Const/const"]
                state[f"{b}.const"] = numpy_tensor(const.reshape(const.shape[-3:]))
            for name, tf_prefix, flip in layers:
                _modulated(state, f"{b}.{name}", sv, tf_prefix, flip)
                _noise(state, f"{b}.{name}", sv, tf_prefix, noise_index)
                noise_index += 1
            if architecture == "skip" or res == img_resolution:
                _modulated(state, f"{b}.torgb", sv, f"{t}/ToRGB")
            if architecture == "resnet" and res > 4:
                state[f"{b}.skip.weight"] = _conv_weight(sv[f"{t}/Skip/weight"])
    sv.check_all_used()
    mv.check_all_used()

    # Our FIR filter buffers are not TF variables: they stay as built from resample_kernel.
    load_state(path, generator, state, "the TF StyleGAN2 variables do not fit our generator",
               keep=("resample_filter",))
    return Checkpoint(generator=generator, family="stylegan2", source=SOURCE, format="tf-legacy-pickle",
                      config=config, network=net.name, networks=(net.name,), notes=notes)
