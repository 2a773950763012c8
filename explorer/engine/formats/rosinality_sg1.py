"""rosinality/style-based-gan-pytorch checkpoints -> our StyleGAN (1) generator.

Two layouts hold the same `StyledGenerator` state dict: train.py's periodic `NNNNNN.model` is the
bare `g_running.state_dict()`, and its `train_step-N.model` is a dict {generator, discriminator,
g_optimizer, d_optimizer, g_running}. Either way the file holds every progression block and ToRGB
up to 1024x1024 and does not record the resolution the network was trained to (see
`choose_resolution`), nor an average w or constant noise (both are made here, deterministically).

The modules map onto ours as follows (`_state_dict` does it):

- `style.<2i+1>.linear` (after the pixel norm at `style.0`; leaky ReLUs in between) is `mapping.fc<i>`;
- `generator.progression.<i>` is our block at 4 * 2**i: its `conv1` (the constant input `conv1.input`
  in block 0, else the up-sampling conv and the blur) with `noise1` and `adain1` is our `conv0`,
  its `conv2` with `noise2` and `adain2` our `conv1`; `generator.to_rgb.<i>` is the last block's torgb;
- an up-sampling conv is `Upsample, EqualConv2d, Blur` below 128 px and `FusedUpsample, Blur` from
  128 px on; the fused weight is stored in conv-transpose layout [in, out, k, k].

The constants in which its layers differ from NVlabs' are constructor arguments of our generator
(`CONFIG`): every equalised-lr weight, the style affines, ToRGB and the noise strengths included,
is scaled by sqrt(2 / fan_in); the fused kernel averages its four taps; the up-conv's bias is added
before the blur; AdaIN uses torch's InstanceNorm2d epsilon and a style bias that starts at 1; both
noise layers of a block add the same noise map. The constant input layer has no bias (ours is 0).
Our mapping layers apply the sqrt(2) gain after the leaky ReLU, so their biases are divided by sqrt(2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import LoadError
from ..networks import stylegan1
from .checkpoint import W_AVG_SAMPLES, W_AVG_SEED, Checkpoint, estimate_w_avg, load_state
from .tensor_table import TensorTable, converting

SOURCE = "rosinality-style-based-gan-pytorch"
NETWORKS = ("g_running", "generator")  # generator state dicts of a train_step checkpoint, default first
FORMATS = {"bare": "torch-state-dict", "train_step": "rosinality-sg1-train-step"}
MARKER = "generator.progression.0.conv1.input"  # the constant input: in every StyledGenerator state dict
NOISE_SEED = 0
LAYOUT = "StyleGAN"  # what error messages say was expected
RESOLUTIONS = tuple(2**i for i in range(2, 11))  # 4 .. 1024, the most a rosinality file can hold

# The constants of rosinality's layers (see the module notes).
CONFIG = dict(
    fused_up_gain=0.25,
    bias_before_blur=True,
    share_block_noise=True,
    noise_wscale=True,
    style_gain=math.sqrt(2),
    style_scale_offset=0.0,
    norm_eps=1e-5,
    torgb_gain=math.sqrt(2),
)


def _is_generator(sd: Any) -> bool:
    return isinstance(sd, Mapping) and MARKER in sd


def matches(obj: Any) -> bool:
    """A bare StyledGenerator state dict, or a train_step dict holding one under 'g_running'/'generator'."""
    return _is_generator(obj) or (isinstance(obj, Mapping) and any(_is_generator(obj.get(k)) for k in NETWORKS))


def _pick(path: Path, obj: Mapping, network: str | None) -> tuple[str, Mapping, tuple[str, ...], str]:
    """(network name, its state dict, every generator name, format) for the requested network."""
    if _is_generator(obj):  # bare: the single network train.py saves this way is g_running
        if network not in (None, NETWORKS[0]):
            raise LoadError(f"{path}: a bare generator state dict holds a single network ({NETWORKS[0]!r}); "
                            f"there is no {network!r}")
        return NETWORKS[0], obj, (NETWORKS[0],), FORMATS["bare"]
    generators = tuple(k for k in NETWORKS if _is_generator(obj.get(k)))
    name = network if network is not None else next(k for k in NETWORKS if k in obj)  # a damaged default is reported
    if name not in obj:
        raise LoadError(f"{path}: no network {name!r} in the file (it has: {', '.join(map(str, obj))}; "
                        f"generators: {', '.join(generators)})")
    if name not in generators:
        raise LoadError(f"{path}: {name!r} ({type(obj[name]).__name__}) is not a generator state dict "
                        f"(generators in the file: {', '.join(generators)})")
    return name, obj[name], generators, FORMATS["train_step"]


def _num_blocks(sd: TensorTable) -> int:
    n = 0
    while f"generator.progression.{n}.conv2.conv.weight_orig" in sd:
        n += 1
    return n


def _is_fused(sd: TensorTable, i: int) -> bool:
    return f"generator.progression.{i}.conv1.0.weight" in sd


def _trained_blocks(sd: TensorTable, num_blocks: int) -> int:
    """How many blocks moved away from their initial state (zero biases and noise strengths)."""
    for i in range(num_blocks - 1, -1, -1):
        p = f"generator.progression.{i}"
        keys = [f"{p}.noise1.weight_orig", f"{p}.noise2.weight_orig", f"{p}.conv2.conv.bias",
                f"{p}.conv1.0.bias", f"{p}.conv1.1.conv.bias", f"generator.to_rgb.{i}.conv.bias"]
        if any(k in sd.tensors and bool(sd.tensors[k].any()) for k in keys):
            return i + 1
    return num_blocks


def resolution_hint(filename: str) -> int | None:
    """A resolution the file name states clearly: 'NNNpx' (e.g. 'ffhq-256px.model'), else one '_NNN' /
    '-NNN' token that is a power of two from 4 to 1024 (not the first token, no leading zero, not after
    'step'). None when there is no such hint or more than one."""
    tokens = [t for t in re.split(r"[_\-.\s]+", Path(filename).stem) if t]
    px = {int(m.group(1)) for t in tokens if (m := re.fullmatch(r"(\d+)px", t, re.IGNORECASE))}
    if px:
        return px.pop() if len(px) == 1 and next(iter(px)) in RESOLUTIONS else None
    found = {int(t) for j, t in enumerate(tokens[1:], 1)
             if t.isdigit() and not t.startswith("0") and tokens[j - 1].lower() != "step" and int(t) in RESOLUTIONS}
    return found.pop() if len(found) == 1 else None


def choose_resolution(path: Path, sd: TensorTable, num_blocks: int,
                      resolution: int | None) -> tuple[int, bool, list[str]]:
    """(resolution, guessed?, notes): the one given, else a clear hint in the file name, else a guess:
    the largest block whose parameters moved from their initial values (rosinality starts biases and
    noise strengths at 0, and a block is only trained once progressive growing reaches it), which
    is the largest block in the file when all of them did."""
    available = RESOLUTIONS[:num_blocks]
    if resolution is not None:
        if int(resolution) not in available:
            raise LoadError(f"{path}: resolution {resolution} is not one this file can render "
                            f"(it holds blocks for {', '.join(map(str, available))})")
        return int(resolution), False, []
    hint = resolution_hint(path.name)
    if hint is not None and hint in available:
        return hint, False, [f"resolution {hint} taken from the file name (the file does not record it)"]
    guess = available[_trained_blocks(sd, num_blocks) - 1]
    why = "the largest block with trained parameters" if guess != available[-1] else \
        "every block has trained parameters, so the largest the file holds"
    return guess, True, [f"the file does not record its resolution: guessed {guess} ({why}); "
                         f"pass the resolution it was trained to if that is wrong"]


def _state_dict(sd: TensorTable, num_blocks: int, n_mlp: int) -> dict[str, torch.Tensor]:
    """The file's tensors under our module's names: the whole name mapping in one place."""
    state = {}

    # Mapping: style.<2i+1>.linear -> fc<i>.
    for i in range(n_mlp):
        state[f"mapping.fc{i}.weight"] = sd[f"style.{2 * i + 1}.linear.weight_orig"]
        state[f"mapping.fc{i}.bias"] = sd[f"style.{2 * i + 1}.linear.bias"] / math.sqrt(2)  # see the notes

    # Synthesis: progression.<i> -> b<4 * 2**i>.
    for i in range(num_blocks):
        p, b = f"generator.progression.{i}", f"synthesis.b{4 * 2**i}"
        if i == 0:  # ConstantInput; the layer on it has no bias
            const = sd[f"{p}.conv1.input"]  # [1CHW]
            state[f"{b}.const"] = const[0]
            state[f"{b}.conv0.bias"] = torch.zeros([const.shape[1]])
        elif _is_fused(sd, i):  # FusedUpsample [in, out, k, k], Blur
            state[f"{b}.conv0.weight"] = sd[f"{p}.conv1.0.weight"].transpose(0, 1)  # -> [OIkk]
            state[f"{b}.conv0.bias"] = sd[f"{p}.conv1.0.bias"]
            state[f"{b}.conv0.blur_kernel"] = sd[f"{p}.conv1.1.weight"]
        else:  # Upsample, EqualConv2d, Blur
            state[f"{b}.conv0.weight"] = sd[f"{p}.conv1.1.conv.weight_orig"]
            state[f"{b}.conv0.bias"] = sd[f"{p}.conv1.1.conv.bias"]
            state[f"{b}.conv0.blur_kernel"] = sd[f"{p}.conv1.2.weight"]
        state[f"{b}.conv1.weight"] = sd[f"{p}.conv2.conv.weight_orig"]
        state[f"{b}.conv1.bias"] = sd[f"{p}.conv2.conv.bias"]
        for j, ours in ((1, "conv0"), (2, "conv1")):
            state[f"{b}.{ours}.noise_strength"] = sd[f"{p}.noise{j}.weight_orig"].reshape(-1)  # [1C11] -> [C]
            state[f"{b}.{ours}.affine.weight"] = sd[f"{p}.adain{j}.style.linear.weight_orig"]
            state[f"{b}.{ours}.affine.bias"] = sd[f"{p}.adain{j}.style.linear.bias"]

    # The image: the ToRGB of the last block.
    ours, theirs = f"synthesis.b{4 * 2 ** (num_blocks - 1)}.torgb", f"generator.to_rgb.{num_blocks - 1}.conv"
    state[f"{ours}.weight"] = sd[f"{theirs}.weight_orig"]
    state[f"{ours}.bias"] = sd[f"{theirs}.bias"]
    return state


@torch.no_grad()
def constant_noise(generator: stylegan1.Generator, seed: int = NOISE_SEED) -> dict[str, torch.Tensor]:
    """One unit-noise map per block, drawn from torch seed `seed` in block order, for both its layers."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for block in generator.synthesis.blocks:
        noise = torch.randn([block.resolution, block.resolution], generator=gen)  # [HW]
        for name in block.noise_layers:
            state[f"synthesis.b{block.resolution}.{name}.noise_const"] = noise
    return state


def load(path: Path, obj: Mapping, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    """Rebuild a generator of a rosinality StyleGAN checkpoint (default: g_running).

    Args:
        path: the file, for messages and its name's resolution hint.
        obj: the file's content, loaded weights-only.
        network: 'g_running' or 'generator' (train_step files); None = g_running.
        resolution: the resolution to render; the file does not record it.

    Raises:
        LoadError: an unknown network, a resolution the file cannot render, or tensors that do not fit.
    """
    name, raw, generators, fmt = _pick(path, obj, network)
    sd = TensorTable.from_state_dict(path, name, raw, LAYOUT)
    num_in_file = _num_blocks(sd)
    if num_in_file == 0:
        raise LoadError(f"{path}: {name} has no progression blocks")
    img_resolution, guessed, notes = choose_resolution(path, sd, num_in_file, resolution)
    num_blocks = int(math.log2(img_resolution)) - 1

    # Shapes from the tensors.
    n_mlp = 0
    while f"style.{2 * n_mlp + 1}.linear.weight_orig" in sd:
        n_mlp += 1
    if n_mlp == 0:
        raise LoadError(f"{path}: {name} has no mapping layers")
    with converting(sd):
        w_dim, z_dim = sd["style.1.linear.weight_orig"].shape
        channels = [int(sd[f"generator.progression.{i}.conv2.conv.weight_orig"].shape[0]) for i in range(num_blocks)]
        img_channels = int(sd[f"generator.to_rgb.{num_blocks - 1}.conv.weight_orig"].shape[0])
    fused = [4 * 2**i for i in range(1, num_in_file) if _is_fused(sd, i)]
    config = dict(
        z_dim=int(z_dim),
        w_dim=int(w_dim),
        img_resolution=img_resolution,
        img_channels=img_channels,
        mapping_kwargs=dict(num_layers=n_mlp, layer_features=int(w_dim), activation="lrelu", lr_multiplier=1.0),
        channels=channels,
        fused_up_min_res=min(fused) if fused else None,
        **CONFIG,
    )
    if fused and any(r not in fused for r in RESOLUTIONS[1:num_in_file] if r >= min(fused)):
        raise LoadError(f"{path}: {name} mixes fused and plain up-sampling blocks above {min(fused)} px")
    try:
        generator = stylegan1.Generator(**config)
    except (TypeError, ValueError) as e:
        raise LoadError(f"{path}: {name} does not fit our StyleGAN generator ({e})") from None

    with converting(sd):
        state = _state_dict(sd, num_blocks, n_mlp)
    state.update(constant_noise(generator))
    state["mapping.w_avg"] = torch.zeros([int(w_dim)])  # estimated below, once the mapping is loaded
    sd.ignore(r"generator\.progression\.\d+\.conv1\.\d\.weight_flip")  # used by the blur's backward pass only
    for i in range(num_blocks, num_in_file):  # blocks above the chosen resolution
        sd.ignore(rf"generator\.(progression|to_rgb)\.{i}\..*")
    for i in range(num_blocks - 1):  # the lower-resolution outputs of progressive growing
        sd.ignore(rf"generator\.to_rgb\.{i}\..*")
    sd.check_all_used()
    load_state(path, generator, state, f"{name}'s tensors do not fit our StyleGAN generator")
    generator.mapping.w_avg.copy_(estimate_w_avg(generator.mapping))

    notes += [
        f"the file stores no average w: w_avg is the mean of the mapping over {W_AVG_SAMPLES} standard-normal "
        f"z from torch seed {W_AVG_SEED} (rosinality's generate.py uses its own random estimate, so truncated "
        f"images differ slightly from its output)",
        f"the file stores no noise: 'const' noise is one map per block drawn from torch seed {NOISE_SEED} "
        f"at load time, added by both layers of the block as rosinality does",
    ]
    return Checkpoint(generator=generator, family="stylegan1", source=SOURCE, format=fmt, config=config,
                      network=name, networks=generators, notes=notes, resolution_guessed=guessed,
                      w_avg_estimated=True)
