"""Projection: find the latent (and noise maps) from which a generator draws a given real image.

The recipe is the one of the StyleGAN2 paper's appendix on projection: start at the average w,
optimise with Adam under a learning rate that ramps up and then down along a cosine, add Gaussian
noise to the latent early on (decaying to none, which keeps the search from settling too soon),
and optimise the per-layer noise maps too, regularised at several scales so that they stay noise
and do not paint the picture, and renormalised to zero mean and unit variance after every step.

The distance to the target is one of: pixel L2, an L1 over a Laplacian pyramid (both need no
download), the features of the checkpoint's own discriminator plus the Laplacian term (NVIDIA's
training snapshots carry one), or LPIPS on a VGG16 whose weights the user already has (a plain state dict).
'auto' takes LPIPS when weights are given, else the discriminator when the file has one, else the
Laplacian pyramid.

Latents are exported as `.npz` in the layout of NVIDIA's projector: `w` of shape
[1, num_ws, w_dim]; the optimised noise maps are added as `noise_0`, `noise_1`, ... (unit noise,
[1, 1, r, r], in the order of `ModelInfo.noise_layers`), which NVIDIA's tools ignore.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pickle
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .model import Model, ModelInfo
from .networks.discriminator import Discriminator
from .render import RenderRequest, class_vector, request_ws, to_uint8

LOSSES = ("auto", "pixel", "laplacian", "dfeat", "lpips")


# -- the target image ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetImage:
    """A picture cut and scaled to the model: what the projection tries to reproduce."""

    pixels: np.ndarray                     # uint8 [res, res, 3]
    crop_box: tuple[int, int, int, int]    # (left, top, right, bottom) of the square taken from the source
    source_size: tuple[int, int]           # (width, height) of the source, after its EXIF rotation


def prepare_target(image: str | Path | Image.Image | np.ndarray, resolution: int) -> TargetImage:
    """Centre-crop an image of any size to a square and resize it to the model's resolution.

    Args:
        image: a file path, a PIL image, or a uint8 [H, W, 3] (or [H, W]) array.
        resolution: the model's output size.

    Returns:
        The target, with the crop box in source pixels (for the GUI to draw on the original).
    """
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")  # A phone photo stands as it was taken.
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"an image array must be uint8 [H, W, 3] or [H, W], got {image.dtype} {list(image.shape)}")
        image = Image.fromarray(image).convert("RGB")
    else:
        image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    if side < 1:
        raise ValueError("the image is empty")
    left, top = (width - side) // 2, (height - side) // 2
    box = (left, top, left + side, top + side)
    square = image.crop(box).resize((resolution, resolution), Image.Resampling.LANCZOS)
    return TargetImage(np.asarray(square, dtype=np.uint8).copy(), box, (width, height))


def _to_tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [1, 3, H, W] in [-1, 1], the generator's range."""
    x = torch.as_tensor(pixels, device=device).permute(2, 0, 1)[None].to(torch.float32)
    return x / 127.5 - 1


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images of one shape (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else float(10 * math.log10(255**2 / mse))


# -- distances to the target --------------------------------------------------------------------


class ProjectionLoss(torch.nn.Module):
    """Distance of a generated image to a fixed target; `label` says in words what it is."""

    label: str

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img [1, 3, H, W] in about [-1, 1] -> scalar distance to the target."""
        raise NotImplementedError


def _unit_channels(f: torch.Tensor) -> torch.Tensor:
    """Features [N, C, H, W] scaled to unit length over the channels at every pixel, as LPIPS compares them."""
    return f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)


class PixelL2Loss(ProjectionLoss):
    """Mean squared pixel difference: exact, but blind to how people see."""

    label = "pixel L2"

    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.register_buffer("target", target)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.target).square().mean()


_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # 5-tap binomial low-pass, the classic pyramid kernel


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur of [N, C, H, W], reflecting at the borders."""
    k = torch.tensor(_BINOMIAL, dtype=x.dtype, device=x.device) / 16
    c = x.shape[1]
    x = F.pad(x, [2, 2, 2, 2], mode="reflect")
    x = F.conv2d(x, k.reshape(1, 1, 1, 5).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.reshape(1, 1, 5, 1).repeat(c, 1, 1, 1), groups=c)


def laplacian_pyramid(x: torch.Tensor, min_size: int = 4) -> list[torch.Tensor]:
    """Band-pass levels of [N, C, H, W], finest first, then the low-pass residual.

    Args:
        x: the image.
        min_size: stop halving once a side is at most this.

    Returns:
        [N, C, H, W], [N, C, H/2, W/2], ...: each level the detail lost by halving, the last the residual.
    """
    levels = []
    while min(x.shape[-2:]) > min_size:
        low = _blur(x)[:, :, ::2, ::2]
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        levels.append(x - up)
        x = low
    levels.append(x)
    return levels


class LaplacianL1Loss(ProjectionLoss):
    """L1 over a Laplacian pyramid, every level weighed per pixel of its own size, so coarse shapes
    count as much as fine detail: sharper than L2 and needs no download."""

    label = "Laplacian-pyramid L1"

    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.target_levels = laplacian_pyramid(target)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        levels = laplacian_pyramid(img)
        return sum((a - b).abs().mean() for a, b in zip(levels, self.target_levels, strict=True))


# VGG16's `features`: the index of every 3x3 conv (each followed by a ReLU), and of the max pools.
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG16_POOLS = (4, 9, 16, 23)
LPIPS_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
# LPIPS's input scaling from [-1, 1] to VGG's ImageNet normalisation (the `lpips` package's constants).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_MAX_SIZE = 256  # larger images are area-downsampled first, as NVIDIA's projector does


def _vgg_index(key: str) -> tuple[int, str] | None:
    """(features index, 'weight'|'bias') of a VGG16 key in any of the layouts people have, else None.

    torchvision's `vgg16()` ('features.N.weight'), its `.features` ('N.weight') and the `lpips`
    package's whole LPIPS module ('net.sliceK.N.weight', N keeping torchvision's numbering).
    """
    m = re.fullmatch(r"(?:features\.|net\.slice\d\.)?(\d+)\.(weight|bias)", key)
    return (int(m[1]), m[2]) if m else None


def _lin_index(key: str) -> int | None:
    """Layer of an LPIPS linear-layer key ('linK.model.1.weight' or 'linK.weight'), else None."""
    m = re.fullmatch(r"lin(\d)\.(?:model\.1\.)?weight", key)
    return int(m[1]) if m else None


def load_lpips_weights(paths: Sequence[str | Path]) -> tuple[dict[int, tuple[torch.Tensor, torch.Tensor]],
                                                              list[torch.Tensor] | None]:
    """Read VGG16 conv weights and, where present, LPIPS's linear layers from plain state dicts.

    The files are opened with `weights_only=True`, so nothing in them runs. Keys may be split over
    several files (e.g. torchvision's `vgg16-397923af.pth` and the `lpips` package's `vgg.pth`).

    Args:
        paths: one or more `.pth` / `.pt` files holding a state dict.

    Returns:
        ({conv index: (weight [O, I, 3, 3], bias [O])}, the five LPIPS weights [1, C, 1, 1] or None).

    Raises:
        ValueError: a file that is not a state dict, or weights missing or of the wrong shape.
    """
    if not paths:
        raise ValueError("LPIPS needs a VGG16 weights file (a plain state dict)")
    tensors: dict[str, torch.Tensor] = {}
    for path in paths:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
            raise ValueError(f"{path}: not a plain state dict of weights ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
            raise ValueError(f"{path}: not a plain state dict of weights (a TorchScript or pickled model will not do)")
        tensors.update(data)

    convs: dict[int, dict[str, torch.Tensor]] = {}
    lins: dict[int, torch.Tensor] = {}
    for key, value in tensors.items():
        if (vgg := _vgg_index(key)) is not None and vgg[0] in VGG16_CONVS:
            convs.setdefault(vgg[0], {})[vgg[1]] = value.float()
        elif (lin := _lin_index(key)) is not None:
            lins[lin] = value.float()
    missing = [f"features.{i}.{p}" for i in VGG16_CONVS for p in ("weight", "bias") if p not in convs.get(i, {})]
    if missing:
        raise ValueError(f"no VGG16 weights found: missing {', '.join(missing[:3])}"
                         f"{' and more' if len(missing) > 3 else ''}")
    layers, channels = {}, 3
    for i in VGG16_CONVS:
        w, b = convs[i]["weight"], convs[i]["bias"]
        if w.ndim != 4 or w.shape[1:] != (channels, 3, 3) or b.shape != (w.shape[0],):
            raise ValueError(f"VGG16 conv features.{i}: expected weight [O, {channels}, 3, 3] and bias [O], "
                             f"found {list(w.shape)} and {list(b.shape)}")
        layers[i], channels = (w, b), w.shape[0]
    if not lins:
        return layers, None
    taps = [layers[t - 1][0].shape[0] for t in LPIPS_TAPS]  # channels at each tap: its conv's outputs
    if sorted(lins) != list(range(len(LPIPS_TAPS))):
        found = ", ".join(f"lin{k}" for k in sorted(lins))
        raise ValueError(f"LPIPS linear layers: expected lin0..lin4, found {found}")
    for k, c in enumerate(taps):
        if lins[k].shape != (1, c, 1, 1):
            raise ValueError(f"LPIPS linear layer lin{k}: expected shape [1, {c}, 1, 1], found {list(lins[k].shape)}")
    return layers, [lins[k] for k in range(len(LPIPS_TAPS))]


class Vgg16Features(torch.nn.Module):
    """VGG16's convolutional part (torchvision's `vgg16().features`), frozen, giving the five ReLU
    outputs LPIPS compares. Widths come from the weights, so any channel count of that layout loads."""

    def __init__(self, layers: dict[int, tuple[torch.Tensor, torch.Tensor]]):
        super().__init__()
        self.convs = torch.nn.ParameterList()
        for i in VGG16_CONVS:
            w, b = layers[i]
            self.convs.append(torch.nn.Parameter(w.clone(), requires_grad=False))
            self.convs.append(torch.nn.Parameter(b.clone(), requires_grad=False))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x [N, 3, H, W], ImageNet-normalised -> the five tapped activations."""
        taps, k = [], 0
        for i in range(LPIPS_TAPS[-1] + 1):
            if i in VGG16_CONVS:
                x = F.conv2d(x, self.convs[k], self.convs[k + 1], padding=1)
                k += 2
            elif i in VGG16_POOLS:
                x = F.max_pool2d(x, 2)
            else:
                x = F.relu(x)
                if i in LPIPS_TAPS:
                    taps.append(x)
        return taps


class LpipsLoss(ProjectionLoss):
    """LPIPS (VGG16): unit-normalised features of five layers, squared differences weighed per
    channel by LPIPS's learned linear layers (or summed over channels without them), averaged over
    the image and summed over the layers. The paper's choice: it matches how people judge likeness."""

    def __init__(self, target: torch.Tensor, paths: Sequence[str | Path]):
        super().__init__()
        layers, lins = load_lpips_weights(paths)
        self.vgg = Vgg16Features(layers).to(target.device)
        self.lins = None if lins is None else [w.to(target.device) for w in lins]
        names = ", ".join(Path(p).name for p in paths)
        self.label = f"LPIPS (VGG16, {'learned' if lins is not None else 'equal'} layer weights; {names})"
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT, device=target.device).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE, device=target.device).reshape(1, 3, 1, 1))
        with torch.no_grad():
            self.target_features = self._features(target)

    def _features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Unit-length (over channels) features of the five taps."""
        if img.shape[-1] > LPIPS_MAX_SIZE:
            img = F.interpolate(img, size=(LPIPS_MAX_SIZE, LPIPS_MAX_SIZE), mode="area")
        return [_unit_channels(f) for f in self.vgg((img - self.shift) / self.scale)]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        total = img.new_zeros([])
        for k, (a, b) in enumerate(zip(self._features(img), self.target_features, strict=True)):
            d = (a - b).square()  # [N, C, h, w]
            d = (d * self.lins[k]).sum(dim=1) if self.lins is not None else d.sum(dim=1)
            total = total + d.mean()
        return total


# Weight of the Laplacian-pyramid term next to the discriminator features. Measured on our 64x64 face model
# after 190 kimg of training, with its D, projecting 8 teacher faces (W+, 200 steps): Laplacian alone 26.96 dB;
# D features + pixel L2 27.44 dB; D features + Laplacian at weight 0.3 27.61 dB, at 1 27.81 dB (W: 24.86 dB
# against 24.53 dB for the Laplacian alone).
DFEAT_LAPLACIAN_WEIGHT = 1.0


class DiscriminatorFeatureLoss(ProjectionLoss):
    """The checkpoint's own discriminator as the perceptual network: the output of each of its blocks,
    unit-normalised over channels, squared differences summed over channels and averaged over pixels and
    blocks (LPIPS with equal weights, on D instead of VGG16), plus the Laplacian-pyramid L1, because D's
    finest block already sees the image at half its resolution. D was trained on this model's images, so it
    knows what matters in them, and it needs no download."""

    def __init__(self, target: torch.Tensor, discriminator: Discriminator,
                 laplacian_weight: float = DFEAT_LAPLACIAN_WEIGHT):
        super().__init__()
        self.discriminator, self.laplacian_weight = discriminator, laplacian_weight
        self.laplacian = LaplacianL1Loss(target)
        self.label = f"discriminator features + {self.laplacian.label}"
        with torch.no_grad():
            self.target_features = [_unit_channels(f) for f in discriminator.features(target)]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        feats = self.discriminator.features(img)
        dfeat = sum((_unit_channels(a) - b).square().sum(dim=1).mean()
                    for a, b in zip(feats, self.target_features, strict=True)) / len(feats)
        return dfeat + self.laplacian_weight * self.laplacian(img)


def resolve_loss(kind: str, info: ModelInfo, lpips_weights: Sequence[str | Path] = ()) -> str:
    """The distance 'auto' stands for: LPIPS with weights, else the file's discriminator, else the Laplacian
    pyramid; any other kind stands for itself."""
    if kind != "auto":
        return kind
    return "lpips" if lpips_weights else "dfeat" if info.discriminator is not None else "laplacian"


def make_loss(
    kind: str,
    target: np.ndarray,
    lpips_weights: Sequence[str | Path] = (),
    device: str | torch.device = "cpu",
    discriminator: Discriminator | None = None,
) -> ProjectionLoss:
    """Build the distance to a target (before a run, e.g. to show the user its `label`).

    Args:
        kind: 'pixel', 'laplacian', 'dfeat' or 'lpips' ('auto' is resolved by `model_loss`).
        target: uint8 [res, res, 3], e.g. `TargetImage.pixels`.
        lpips_weights: for 'lpips': VGG16 (+ LPIPS linear layers) state-dict files.
        device: the model's device.
        discriminator: for 'dfeat': the checkpoint's discriminator, on `device`.

    Returns:
        The loss module; its `label` names it for the GUI.
    """
    x = _to_tensor(target, torch.device(device))
    if kind == "pixel":
        return PixelL2Loss(x)
    if kind == "laplacian":
        return LaplacianL1Loss(x)
    if kind == "dfeat":
        if discriminator is None:
            raise ValueError("the discriminator-feature loss needs a checkpoint that carries a discriminator")
        return DiscriminatorFeatureLoss(x, discriminator)
    if kind == "lpips":
        return LpipsLoss(x, lpips_weights)
    raise ValueError(f"unknown loss {kind!r}: use one of {', '.join(LOSSES)}")


def model_loss(model: Model, kind: str, target: np.ndarray, lpips_weights: Sequence[str | Path] = ()) -> ProjectionLoss:
    """`make_loss` for a model, on its device: 'auto' resolved (`resolve_loss`) and, for 'dfeat', the
    model's discriminator read from its file (once: the model keeps it)."""
    kind = resolve_loss(kind, model.info, lpips_weights)
    discriminator = model.discriminator() if kind == "dfeat" else None
    return make_loss(kind, target, lpips_weights, model.device, discriminator)


# -- the optimisation ---------------------------------------------------------------------------


@dataclass
class ProjectionSettings:
    """How a projection runs; plain data, so the GUI's dialog can edit and save it. The defaults
    are the StyleGAN2 paper's (only the loss differs where no LPIPS weights are given)."""

    steps: int = 1000
    w_plus: bool = False                  # one w per layer (W+) instead of one w broadcast (W)
    seed: int = 0                         # noise maps' start, latent noise, the w spread estimate
    loss: str = "auto"                    # 'auto', 'pixel', 'laplacian', 'dfeat' or 'lpips' (see `resolve_loss`)
    lpips_weights: tuple[str, ...] = ()   # VGG16 / LPIPS state-dict files for loss='lpips'
    optimize_noise: bool = True           # also fit the noise maps (else keep the model's stored noise)
    class_idx: int | None = None          # class of a conditional model (for the w spread estimate)
    initial_lr: float = 0.1
    lr_rampup: float = 0.05               # fraction of the steps over which the rate ramps up
    lr_rampdown: float = 0.25             # fraction at the end over which it falls along a cosine
    initial_noise_factor: float = 0.05    # latent noise at the start, times the spread of w
    noise_ramp: float = 0.75              # fraction of the steps over which the latent noise decays
    noise_reg_weight: float = 1e5         # weight of the noise maps' regulariser
    w_std_samples: int = 10000            # mapped latents to estimate the spread of w
    preview_every: int = 0                # send the current image with every k-th progress report (0: never)

    def validate(self, info: ModelInfo) -> None:
        """Raise ValueError, in words a user understands, for settings that cannot run."""
        if self.steps < 1:
            raise ValueError(f"a projection needs at least one step, got {self.steps}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}: use one of {', '.join(LOSSES)}")
        if self.loss == "lpips" and not self.lpips_weights:
            raise ValueError("the LPIPS loss needs VGG16 weights: give a state-dict file")
        if self.loss == "dfeat" and info.discriminator is None:
            raise ValueError("the discriminator-feature loss needs a checkpoint that carries a discriminator "
                             "(NVIDIA's training snapshots do); this file has none")
        if info.c_dim > 0 and not (self.class_idx is not None and 0 <= self.class_idx < info.c_dim):
            raise ValueError(f"this model is conditional: choose a class from 0 to {info.c_dim - 1}")
        if self.w_std_samples < 2:
            raise ValueError("estimating the spread of w needs at least two samples")


@dataclass(frozen=True)
class ProjectionProgress:
    """One step done: sent to the progress callback after every step."""

    step: int                      # steps done, 1..steps
    steps: int
    loss: float                    # the step's total: distance + weighted noise regulariser
    distance: float                # the step's distance to the target alone
    lr: float
    elapsed: float                 # seconds since the job started
    image: np.ndarray | None = None  # uint8 [H, W, 3] after this step, every `preview_every` steps


@dataclass
class ProjectionResult:
    """What a projection found: a state the GUI can show, save in a session and export."""

    ws: np.ndarray                 # float32 [1, num_ws, w_dim]
    noise: list[np.ndarray]        # float32 [1, 1, r, r] unit noise per noise layer; empty: the model's own
    image: np.ndarray              # uint8 [H, W, 3]: the projection, as `Model.synthesize` draws it
    target: TargetImage
    distance: float                # distance of `image` to the target (the loss, clean of latent noise)
    psnr: float                    # dB between `image` and the target pixels
    loss_label: str
    losses: list[float] = field(default_factory=list)     # per step: total loss
    distances: list[float] = field(default_factory=list)  # per step: distance alone
    settings: ProjectionSettings = field(default_factory=ProjectionSettings)
    seconds: float = 0.0


def learning_rate(t: float, settings: ProjectionSettings) -> float:
    """The rate at progress t in [0, 1): linear ramp-up, flat, then a cosine ramp-down to zero."""
    ramp = min(1.0, (1.0 - t) / settings.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / settings.lr_rampup)
    return settings.initial_lr * ramp


def noise_regularization(noise: Sequence[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation (one pixel right and down) of every noise map, at every scale of its
    pyramid down to 8x8: near zero for white noise, large when a map starts to carry image content."""
    reg = noise[0].new_zeros([])
    for n in noise:
        while True:
            reg = reg + (n * torch.roll(n, 1, dims=3)).mean().square() + (n * torch.roll(n, 1, dims=2)).mean().square()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return reg


@torch.no_grad()
def w_spread(model: Model, samples: int, seed: int, class_idx: int | None = None) -> float:
    """Root mean squared distance of mapped latents from `w_avg`: the scale of the latent noise."""
    gen = torch.Generator().manual_seed(seed)
    c = class_vector(class_idx, model.info.c_dim)
    total, chunk = 0.0, 1000
    for start in range(0, samples, chunk):
        n = min(chunk, samples - start)
        z = torch.randn([n, model.info.z_dim], generator=gen)
        cs = None if c is None else np.repeat(c, n, axis=0)
        w = model.map(z, cs)[:, 0]  # [N, w_dim]
        total += float((w - model.w_avg).square().sum())
    return math.sqrt(total / samples)


def project(
    model: Model,
    target: TargetImage | np.ndarray,
    settings: ProjectionSettings | None = None,
    progress: Callable[[ProjectionProgress], None] | None = None,
    cancel: threading.Event | None = None,
    loss: ProjectionLoss | None = None,
) -> ProjectionResult | None:
    """Find the latent of an image, on the calling thread (the engine thread, which owns the device).

    The same seed, settings and device give the same result.

    Args:
        model: the generator.
        target: from `prepare_target`, or a uint8 [res, res, 3] array already of the model's size.
        settings: steps, W or W+, loss, seed and the schedule; the result's copy names the loss 'auto' chose.
        progress: called on this thread after every step.
        cancel: set it (from any thread) to stop before the next step.
        loss: a distance built beforehand with `model_loss` (e.g. to show its label first); by default
            it is built from `settings`.

    Returns:
        The projection, or None when cancelled (nothing of the run is kept).

    Raises:
        ValueError: settings or a target that do not fit the model.
    """
    t0 = time.perf_counter()
    settings = settings or ProjectionSettings()
    info = model.info
    settings.validate(info)
    res = info.resolution
    if isinstance(target, np.ndarray):
        target = TargetImage(target, (0, 0, target.shape[1], target.shape[0]), (target.shape[1], target.shape[0]))
    if target.pixels.shape != (res, res, 3) or target.pixels.dtype != np.uint8:
        raise ValueError(f"the target must be uint8 [{res}, {res}, 3], got {target.pixels.dtype} "
                         f"{list(target.pixels.shape)}: use prepare_target")
    device = model.device
    synthesis = model.generator.synthesis
    settings = dataclasses.replace(settings, loss=resolve_loss(settings.loss, info, settings.lpips_weights))
    if loss is None:
        loss = model_loss(model, settings.loss, target.pixels, settings.lpips_weights)

    # Start at the average w, one for all layers (W) or one per layer (W+).
    gen = torch.Generator().manual_seed(settings.seed)
    w_std = w_spread(model, settings.w_std_samples, settings.seed, settings.class_idx)
    rows = info.num_ws if settings.w_plus else 1
    w_opt = model.w_avg.detach().reshape(1, 1, -1).repeat(1, rows, 1).clone().requires_grad_(True)  # [1, L|1, W]
    # Fresh unit noise maps to fit, or none: then the model's stored noise is kept.
    fit_noise = settings.optimize_noise and info.has_noise
    noise = [torch.randn([1, 1, r, r], generator=gen).to(device).requires_grad_(True)
             for _, r in info.noise_layers] if fit_noise else []
    optimizer = torch.optim.Adam([w_opt, *noise], betas=(0.9, 0.999), lr=settings.initial_lr)

    losses, distances = [], []
    with torch.enable_grad():
        for step in range(settings.steps):
            if cancel is not None and cancel.is_set():
                return None
            t = step / settings.steps
            lr = learning_rate(t, settings)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # Latent noise, decaying to none over the first `noise_ramp` of the steps.
            w_noise_scale = w_std * settings.initial_noise_factor * max(0.0, 1.0 - t / settings.noise_ramp) ** 2
            w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * w_noise_scale
            ws = (w_opt + w_noise).expand(-1, info.num_ws, -1)  # [1, L, W]

            img = synthesis(ws, noise_mode="const", noise=noise or None)  # [1, 3, H, W]
            dist = loss(img)
            reg = noise_regularization(noise) if noise else dist.new_zeros([])
            total = dist + settings.noise_reg_weight * reg
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            with torch.no_grad():  # Noise maps back to zero mean, unit variance.
                for n in noise:
                    n -= n.mean()
                    n *= n.square().mean().rsqrt()

            losses.append(total.item())
            distances.append(dist.item())
            if progress is not None:
                done = step + 1
                preview = None
                if settings.preview_every and (done % settings.preview_every == 0 or done == settings.steps):
                    preview = to_uint8(_draw(model, w_opt, noise))
                progress(ProjectionProgress(done, settings.steps, losses[-1], distances[-1], lr,
                                            time.perf_counter() - t0, preview))

    final = _draw(model, w_opt, noise)
    with torch.no_grad():
        final_distance = float(loss(final))
    image = to_uint8(final)
    return ProjectionResult(
        ws=w_opt.detach().expand(-1, info.num_ws, -1).cpu().numpy().copy(),
        noise=[n.detach().cpu().numpy().copy() for n in noise],
        image=image, target=target, distance=final_distance, psnr=psnr(image, target.pixels),
        loss_label=loss.label, losses=losses, distances=distances, settings=settings,
        seconds=time.perf_counter() - t0,
    )


def _draw(model: Model, w_opt: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
    """The current estimate without latent noise, [1, 3, H, W], as a render of the result draws it."""
    ws = w_opt.detach().expand(-1, model.info.num_ws, -1)
    return model.synthesize(ws, noise_mode="const", noise=[n.detach() for n in noise] or None)


# -- .npz / .npy export and import --------------------------------------------------------------


@dataclass(frozen=True)
class Latents:
    """A W+ latent and, where the file holds them, noise maps: checked against a model."""

    ws: np.ndarray                   # float32 [1, num_ws, w_dim]
    noise: list[np.ndarray] | None   # float32 [1, 1, r, r] per noise layer, or None


def save_latents(path: str | Path, ws: np.ndarray | torch.Tensor, noise: Sequence[np.ndarray] = ()) -> Path:
    """Write `w` [1, num_ws, w_dim] (+ `noise_0`, `noise_1`, ...) as `.npz`, NVIDIA's projector's layout.

    Written under a temporary name and renamed, so an older file stays until the new one is whole.

    Args:
        path: the `.npz` file.
        ws: [1, num_ws, w_dim] latents.
        noise: unit noise maps [1, 1, r, r], in the order of `ModelInfo.noise_layers`.

    Returns:
        The path written.
    """
    path = Path(path)
    ws = ws.detach().cpu().numpy() if isinstance(ws, torch.Tensor) else np.asarray(ws)
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise ValueError(f"w must have shape [1, num_ws, w_dim], got {list(ws.shape)}")
    arrays = {"w": ws.astype(np.float32)}
    arrays.update({f"noise_{i}": np.asarray(n, dtype=np.float32) for i, n in enumerate(noise)})
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return path


def load_latents(path: str | Path, info: ModelInfo) -> Latents:
    """Read a latent from `.npz` (key `w`, or its only array; optional `noise_<i>`) or `.npy`.

    `w` may be [1, num_ws, w_dim] (NVIDIA's projector), [num_ws, w_dim], or one w for every layer
    ([w_dim], [1, w_dim] or [1, 1, w_dim]).

    Args:
        path: the file.
        info: the model the latent is for.

    Returns:
        The latent broadcast to [1, num_ws, w_dim], with the noise maps if the file has them.

    Raises:
        ValueError: an unreadable file, or shapes that do not fit the model (both named).
    """
    path = Path(path)
    expected = f"[1, {info.num_ws}, {info.w_dim}]"
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as e:
        raise ValueError(f"{path}: not a .npz or .npy file ({e})") from None
    if isinstance(data, np.ndarray):
        w, arrays = data, {}
    else:
        try:
            with data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, EOFError, ValueError) as e:
            raise ValueError(f"{path}: cannot read its arrays ({e})") from None
        if "w" in arrays:
            w = arrays.pop("w")
        elif len(arrays) == 1:
            w = arrays.popitem()[1]
        else:
            raise ValueError(f"{path}: no array named 'w' (found {', '.join(sorted(arrays)) or 'none'})")

    shape = list(w.shape)
    if w.ndim == 1:
        w = w.reshape(1, 1, -1)
    elif w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[0] != 1 or w.shape[2] != info.w_dim or w.shape[1] not in (1, info.num_ws):
        raise ValueError(f"{path}: w has shape {shape}; this model expects {expected} "
                         f"(or [{info.num_ws}, {info.w_dim}], or one [{info.w_dim}] vector for all layers)")
    if not np.issubdtype(w.dtype, np.floating) or not np.isfinite(w).all():
        raise ValueError(f"{path}: w must hold finite floating-point numbers")
    ws = np.repeat(w.astype(np.float32), info.num_ws // w.shape[1], axis=1)

    noise_keys = sorted((k for k in arrays if re.fullmatch(r"noise_\d+", k)), key=lambda k: int(k[6:]))
    if not noise_keys:
        return Latents(ws, None)
    layers = info.noise_layers
    if noise_keys != [f"noise_{i}" for i in range(len(layers))]:
        has = f"{len(layers)} noise layers (noise_0..noise_{len(layers) - 1})" if layers else "no noise inputs"
        raise ValueError(f"{path}: holds noise maps {', '.join(noise_keys)}; this model has {has}")
    noise = []
    for i, (name, r) in enumerate(layers):
        n = arrays[f"noise_{i}"]
        if n.shape not in ((1, 1, r, r), (r, r)):
            raise ValueError(f"{path}: noise_{i} ({name}) has shape {list(n.shape)}; expected [1, 1, {r}, {r}]")
        noise.append(n.reshape(1, 1, r, r).astype(np.float32))
    return Latents(ws, noise)


@functools.lru_cache(maxsize=4)
def _cached_noise(path: str, mtime_ns: int, size: int, info: ModelInfo) -> tuple[torch.Tensor, ...]:
    latents = load_latents(path, info)
    if latents.noise is None:
        raise ValueError(f"{path}: holds no noise maps")
    return tuple(torch.from_numpy(n) for n in latents.noise)


def load_noise_file(path: str | Path, info: ModelInfo) -> tuple[torch.Tensor, ...]:
    """The noise maps of a latents file for a render, read once per file version (renders repeat).

    Args:
        path: an `.npz` written by `save_latents`.
        info: the model they are for.

    Returns:
        CPU tensors [1, 1, r, r], one per noise layer; callers must not modify them.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise ValueError(f"{path}: cannot read the noise file ({e.strerror or e})") from None
    return _cached_noise(str(path), st.st_mtime_ns, st.st_size, info)


# -- as jobs of the engine worker (`RenderWorker.run_job`) ---------------------------------------


@dataclass(frozen=True)
class JobStep:
    """A projection step as the worker's progress callback reads it."""

    done: int
    total: int
    eta: float | None              # seconds left at the rate so far
    message: str = ""


def projection_job(
    model: Model,
    target: TargetImage,
    settings: ProjectionSettings,
    on_step: Callable[[ProjectionProgress], None] | None = None,
    progress: Callable[[JobStep], None] | None = None,
    cancel: threading.Event | None = None,
) -> ProjectionResult | None:
    """`project` as a worker job: each step goes whole to `on_step` and as done / total / eta to `progress`.

    Args:
        model: the generator (the worker passes it).
        target: from `prepare_target`.
        settings: as for `project`; its `preview_every` sets how often `on_step` gets an image.
        on_step: called on the job thread with every `ProjectionProgress` (numpy only, no tensors).
        progress: the worker's progress callback.
        cancel: the worker's cancel event, checked before every step.

    Returns:
        The projection, or None when cancelled.
    """

    def report(p: ProjectionProgress) -> None:
        if on_step is not None:
            on_step(p)
        if progress is not None:
            progress(JobStep(p.step, p.steps, p.elapsed / p.step * (p.steps - p.step), f"distance {p.distance:.4g}"))

    return project(model, target, settings, report, cancel)


def loss_label(model: Model, kind: str, target: np.ndarray, lpips_weights: Sequence[str | Path] = ()) -> str:
    """The `label` of the distance `kind` ('auto' resolved) for the model: a job, since LPIPS reads its
    weight files and the discriminator its checkpoint."""
    return model_loss(model, kind, target, lpips_weights).label


def export_request_latents(model: Model, request: RenderRequest, path: str | Path) -> Path:
    """Write the W+ a request renders (seeds or explicit ws, truncated, mixed, edited) as `.npz` in NVIDIA's
    layout, with the noise maps of its `noise_file` if it has one.

    Args:
        model: the generator (the worker passes it).
        request: the state to export.
        path: the `.npz` file.

    Returns:
        The path written.
    """
    request.validate(model)
    noise = load_latents(request.noise_file, model.info).noise if request.noise_file is not None else None
    return save_latents(path, request_ws(model, request), noise or ())
