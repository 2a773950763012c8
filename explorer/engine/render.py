"""One picture, described by a plain request and rendered by the same code in the GUI, the CLI and
the tests: the same request gives the same pixels everywhere."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .model import NOISE_MODES, Model


def check_fields(cls, data: dict, what: str) -> None:
    """Refuse keys of parsed JSON that are not fields of the dataclass `cls`: a misspelt key is a mistake."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} field(s): {', '.join(unknown)}")


@dataclass
class DirectionEdit:
    """A move along a direction in W (a slider of the directions panel), applied after truncation and mixing."""

    direction: list  # [w_dim] floats, or [num_ws][w_dim] for a per-layer direction
    amount: float = 0.0                   # how far, in units of `direction`: ws += amount * direction
    layers: list[int] | None = None       # ws indices it moves (None = all)
    name: str = ""                        # what the user calls it; no effect on the picture

    @classmethod
    def from_dict(cls, data: dict) -> DirectionEdit:
        """Build an edit from parsed JSON; unknown keys are a mistake worth reporting."""
        check_fields(cls, data, "direction edit")
        if "direction" not in data:
            raise ValueError("a direction edit needs its direction")
        edit = cls(**data)
        edit.direction = np.asarray(edit.direction, dtype=np.float64).tolist()
        edit.amount = float(edit.amount)
        edit.layers = None if edit.layers is None else [int(i) for i in edit.layers]
        return edit

    def validate(self, num_ws: int, w_dim: int) -> None:
        """Raise ValueError, in words a user understands, if the edit does not fit a model."""
        shape = np.shape(self.direction)
        if shape not in ((w_dim,), (num_ws, w_dim)):
            raise ValueError(f"direction edit {self.name!r} has shape {list(shape)}; this model takes "
                             f"[{w_dim}] (all layers) or [{num_ws}, {w_dim}] (one row per ws)")
        if not (math.isfinite(self.amount) and np.isfinite(self.direction).all()):
            raise ValueError(f"direction edit {self.name!r} holds a value that is not finite")
        bad = [i for i in self.layers or [] if not 0 <= i < num_ws]
        if bad:
            raise ValueError(f"direction edit layers {bad} are outside 0..{num_ws - 1}")


@dataclass
class RenderRequest:
    """Everything a rendered image depends on. Serialises to JSON (`to_json` / `from_json`)."""

    seeds: list[tuple[int, float]] = field(default_factory=lambda: [(0, 1.0)])  # (seed, weight), blended in W
    class_idx: int | None = None          # class of a conditional model
    truncation_psi: float = 1.0           # 1 = none, 0 = the average w
    truncation_cutoff: int | None = None  # truncate only the first this many ws (None = all)
    mix_seed: int | None = None           # style-mixing source seed
    mix_layers: list[int] = field(default_factory=list)  # ws indices taken from mix_seed
    noise_mode: str = "const"             # 'const', 'random' or 'none'
    noise_seed: int = 0                   # seed of 'random' noise
    noise_enabled: list[bool] | None = None  # per noise layer on/off (None = all on)
    translate: tuple[float, float] = (0.0, 0.0)  # StyleGAN3 input translation
    rotate: float = 0.0                   # StyleGAN3 input rotation, degrees
    edits: list[DirectionEdit] = field(default_factory=list)  # moves along directions in W, summed
    ws: list[list[float]] | None = None   # explicit [num_ws][w_dim] latents (e.g. a projection) instead of the seeds
    noise_file: str | None = None         # .npz of unit noise maps (`projector.save_latents`) instead of noise_mode's
    untransform: bool = False             # StyleGAN3: move the picture back by the input transform (band-limited)
    layer: str | None = None              # show this synthesis layer (a name of `synthesis.layer_names`) instead
    channel_offset: int = 0               # layer view: first channel shown
    channels: int = 3                     # layer view: 1 (grey) or 3 (RGB) channels
    brightness: float = 0.0               # layer view: gain in dB
    normalize: bool = False               # layer view: scale each channel to its peak first
    fft: bool = False                     # layer view: the channels' power spectrum in dB instead

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> RenderRequest:
        """Build a request from parsed JSON; unknown keys are a mistake worth reporting."""
        check_fields(cls, data, "render request")
        req = cls(**data)
        req.seeds = [(int(s), float(w)) for s, w in req.seeds]
        req.mix_layers = [int(i) for i in req.mix_layers]
        req.translate = (float(req.translate[0]), float(req.translate[1]))
        req.edits = [DirectionEdit.from_dict(e) for e in req.edits]
        req.ws = None if req.ws is None else [[float(v) for v in row] for row in req.ws]
        return req

    @classmethod
    def from_json(cls, text: str) -> RenderRequest:
        return cls.from_dict(json.loads(text))

    def input_transform(self) -> np.ndarray | None:
        """The 3x3 matrix a user sets ([[cos, sin, tx], [-sin, cos, ty], [0, 0, 1]]), None for identity."""
        if self.translate == (0.0, 0.0) and self.rotate == 0.0:
            return None
        a = math.radians(self.rotate)
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, s, self.translate[0]], [-s, c, self.translate[1]], [0, 0, 1]], dtype=np.float64)

    def validate(self, model: Model) -> None:
        """Raise ValueError, in words a user understands, if the request does not fit the model."""
        info = model.info
        if not self.seeds:
            raise ValueError("a render request needs at least one seed")
        if info.c_dim > 0 and not (self.class_idx is not None and 0 <= self.class_idx < info.c_dim):
            raise ValueError(f"this model is conditional: choose a class from 0 to {info.c_dim - 1}")
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise mode {self.noise_mode!r}: use one of {', '.join(NOISE_MODES)}")
        bad = [i for i in self.mix_layers if not 0 <= i < info.num_ws]
        if bad:
            raise ValueError(f"mixing layers {bad} are outside 0..{info.num_ws - 1}")
        if self.mix_layers and self.mix_seed is None:
            raise ValueError("style mixing layers are set but no mixing seed")
        if self.noise_enabled is not None and len(self.noise_enabled) != len(info.noise_layers):
            raise ValueError(f"noise_enabled has {len(self.noise_enabled)} entries; "
                             f"the model has {len(info.noise_layers)} noise layers")
        if self.input_transform() is not None and not info.has_input_transform:
            raise ValueError(f"a {info.family} model has no input transform to translate or rotate")
        for edit in self.edits:
            edit.validate(info.num_ws, info.w_dim)
        if self.ws is not None and np.shape(self.ws) != (info.num_ws, info.w_dim):
            raise ValueError(f"the request's ws have shape {list(np.shape(self.ws))}; "
                             f"this model takes [{info.num_ws}, {info.w_dim}]")
        if self.noise_file is not None:
            from .projector import load_noise_file

            load_noise_file(self.noise_file, info)  # Raises, naming the file, if its maps do not fit.
        if self.layer is not None:
            names = model.generator.synthesis.layer_names
            if self.layer not in names:
                raise ValueError(f"the model has no layer {self.layer!r}: choose one of {', '.join(names)}")
            if self.channels not in (1, 3) or self.channel_offset < 0:
                raise ValueError("a layer view shows 1 or 3 channels from a channel offset of 0 or more")


@dataclass
class RenderResult:
    """A rendered picture: uint8 [H, W, 3], the W it came from, and where the time went (seconds)."""

    image: np.ndarray
    ws: torch.Tensor
    timings: dict[str, float]
    request: RenderRequest
    error: str | None = None
    profile: tuple[np.ndarray, np.ndarray] | None = None  # layer FFT: radial power (cycles/px, dB)


def seed_z(seed: int, z_dim: int) -> np.ndarray:
    """The latent of a seed, [1, z_dim], drawn the way NVIDIA's tools draw it."""
    return np.random.RandomState(seed).randn(1, z_dim).astype(np.float32)


SEED_ROW = 100  # seeds per row of the latent plane: one step in y is this many seeds


def blend_seeds(x: float, y: float) -> list[tuple[int, float]]:
    """The seeds at the corners around a point of the latent plane, with bilinear weights.

    As NVIDIA's visualizer: seed = column + row * 100 (mod 2**32); weights sum to 1 and corners with
    zero weight are left out, so whole-number positions give a single seed.
    """
    x0, y0 = math.floor(x), math.floor(y)
    seeds = []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        weight = (1 - abs(x - (x0 + dx))) * (1 - abs(y - (y0 + dy)))
        if weight > 0:
            seeds.append((((x0 + dx) + (y0 + dy) * SEED_ROW) & 0xFFFFFFFF, float(weight)))
    return seeds


def class_vector(class_idx: int | None, c_dim: int) -> np.ndarray | None:
    """One-hot [1, c_dim] for a conditional model, None otherwise."""
    if c_dim == 0:
        return None
    c = np.zeros([1, c_dim], dtype=np.float32)
    c[0, class_idx] = 1
    return c


def apply_edits(ws: torch.Tensor, edits: list[DirectionEdit]) -> torch.Tensor:
    """ws plus every edit's amount * direction on its layers, as a new tensor.

    The offset is summed afresh from the edits (in float64) and added to `ws` once, never accumulated
    into it, so the same edits always give the same W: a slider moved by +a and back by -a returns
    the original W bit for bit.

    Args:
        ws: [N, num_ws, w_dim] latents before editing.
        edits: the moves; an edit with amount 0 changes nothing.

    Returns:
        [N, num_ws, w_dim], `ws` itself when no edit moves anything.
    """
    active = [e for e in edits if e.amount != 0]
    if not active:
        return ws
    offset = torch.zeros(ws.shape[1:], dtype=torch.float64)  # [LW]
    for edit in active:
        step = edit.amount * torch.as_tensor(edit.direction, dtype=torch.float64).expand(ws.shape[1:])  # [LW]
        layers = list(range(ws.shape[1])) if edit.layers is None else sorted(set(edit.layers))
        offset[layers] += step[layers]
    return ws + offset.to(device=ws.device, dtype=ws.dtype)


def request_ws(model: Model, req: RenderRequest) -> torch.Tensor:
    """The [1, num_ws, w_dim] latents of a request: blended seeds (or its explicit ws), truncated,
    style-mixed, then edited."""
    info = model.info
    c = class_vector(req.class_idx, info.c_dim)

    def mapped(seed: int) -> torch.Tensor:
        return model.map(seed_z(seed, info.z_dim), c, req.truncation_psi, req.truncation_cutoff)

    if req.ws is not None:  # Explicit latents, truncated as the mapping truncates.
        ws = torch.as_tensor(req.ws, dtype=torch.float32, device=model.device)[None]  # [1LW]
        if req.truncation_psi != 1:
            cut = req.truncation_cutoff
            ws[:, :cut] = model.w_avg.lerp(ws[:, :cut], req.truncation_psi)
    else:
        total = sum(w for _, w in req.seeds)
        if total == 0:
            raise ValueError("the seed weights sum to zero")
        ws = sum(mapped(seed) * (weight / total) for seed, weight in req.seeds)  # [1LW]
    if req.mix_layers:
        layers = torch.as_tensor(req.mix_layers, device=ws.device)
        ws[:, layers] = mapped(req.mix_seed)[:, layers]
    return apply_edits(ws, req.edits)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in about [-1, 1] -> [H, W, 3] uint8, as NVIDIA's tools quantise."""
    return frames_to_uint8(img[:1])[0]


def frames_to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in about [-1, 1] -> [N, H, W, 3] uint8, quantised as `to_uint8`; one readback for the batch."""
    img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return img.cpu().numpy()


def synthesis_key(req: RenderRequest) -> tuple:
    """The fields `synthesize_request` reads: requests equal in these can share one synthesis call."""
    enabled = None if req.noise_enabled is None else tuple(req.noise_enabled)
    return req.noise_mode, req.noise_seed, enabled, req.noise_file, tuple(req.translate), req.rotate


def synthesize_request(model: Model, ws: torch.Tensor, req: RenderRequest) -> torch.Tensor:
    """Synthesise ws with a request's noise and input transform, each row exactly as `render` would.

    Batches share the const noise and the transform; 'random' noise is drawn per row from the same
    seed (a batched draw would give every row other noise than its single render), so a random-noise
    batch runs one row at a time.

    Args:
        model: the generator.
        ws: [N, num_ws, w_dim] latents, e.g. from `request_ws` or an interpolated walk.
        req: the request whose noise_mode, noise_seed, noise_enabled, noise_file, translate and rotate apply.

    Returns:
        [N, 3, H, W] float32 images, about [-1, 1].
    """
    noise = None
    if req.noise_file is not None:
        from .projector import load_noise_file

        noise = list(load_noise_file(req.noise_file, model.info))
    if req.noise_enabled is not None and not all(req.noise_enabled):
        given = noise or [None] * len(model.info.noise_layers)
        layers = zip(req.noise_enabled, given, model.info.noise_layers, strict=True)
        noise = [n if on else torch.zeros([1, 1, r, r]) for on, n, (_, r) in layers]
    kwargs = dict(noise_mode=req.noise_mode, noise=noise, input_transform=req.input_transform(),
                  noise_seed=req.noise_seed)
    if req.noise_mode == "random" and ws.shape[0] > 1:
        return torch.cat([model.synthesize(ws[i:i + 1], **kwargs) for i in range(ws.shape[0])])
    return model.synthesize(ws, **kwargs)


def synthesize_picture(model: Model, ws: torch.Tensor, req: RenderRequest) -> torch.Tensor:
    """The picture of a request before quantising: `synthesize_request`, moved back by the input transform
    when the request asks to untransform (StyleGAN3). [N, 3, H, W] float32."""
    img = synthesize_request(model, ws, req)
    if req.untransform and model.info.has_input_transform:
        from .equivariance import untransform

        img = untransform(img, req.input_transform())[0]
    return img


def render(model: Model, req: RenderRequest) -> RenderResult:
    """Render one request on the model's device (its layer view if `req.layer` is set)."""
    req.validate(model)
    if req.layer is not None:
        return render_layer(model, req)
    t0 = time.perf_counter()
    ws = request_ws(model, req)
    t1 = time.perf_counter()
    img = synthesize_picture(model, ws, req)
    t2 = time.perf_counter()
    image = to_uint8(img)
    t3 = time.perf_counter()
    return RenderResult(image=image, ws=ws, request=req,
                        timings={"mapping": t1 - t0, "synthesis": t2 - t1, "readback": t3 - t2, "total": t3 - t0})


# ---------------------------------------------------------------------------------------------------
# Layer views: a synthesis layer's activations, or their spectrum, as a picture.

LAYER_FFT_RANGE_DB = 50.0  # a layer spectrum's grey scale spans the mean power ± this many dB


class _LayerCaptured(Exception):
    """Raised by the capture hook to end the synthesis once the last layer wanted has run."""


def capture_layers(model: Model, ws: torch.Tensor, req: RenderRequest, names: list[str]) -> dict[str, torch.Tensor]:
    """The outputs of synthesis layers for ws, rendered with a request's noise and transform.

    Forward hooks on the layers (the modules named in `synthesis.layer_names`) record their output
    on the calling thread only, so a job on another thread sharing the model is not disturbed; the
    synthesis stops after the last layer wanted.

    Args:
        model: the generator.
        ws: [N, num_ws, w_dim] latents.
        req: the request whose noise and input transform apply.
        names: layer names, any order.

    Returns:
        {name: [N, C, H, W] activations}.
    """
    syn = model.generator.synthesis
    order = list(syn.layer_names)
    last = max(names, key=order.index)
    captured: dict[str, torch.Tensor] = {}
    thread = threading.get_ident()

    def hook(name: str):
        def record(_module, _inputs, output):
            if threading.get_ident() == thread:
                captured[name] = (output[0] if isinstance(output, tuple) else output).detach()
                if name == last:
                    raise _LayerCaptured

        return record

    handles = [getattr(syn, name).register_forward_hook(hook(name)) for name in names]
    try:
        synthesize_request(model, ws, req)
    except _LayerCaptured:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return captured


def layer_shapes(model: Model, req: RenderRequest | None = None) -> list[tuple[str, int, int, int]]:
    """(name, channels, height, width) of every synthesis layer, in order, from one synthesis of `req`."""
    req = req or RenderRequest(class_idx=0 if model.info.c_dim else None)
    names = list(model.generator.synthesis.layer_names)
    captured = capture_layers(model, request_ws(model, req), req, names)
    return [(name, *(int(n) for n in captured[name].shape[1:])) for name in names]


def layer_image(x: torch.Tensor, req: RenderRequest) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Activations [C, H, W] shown as a request's layer view asks, as NVIDIA's visualiser shows them.

    Args:
        x: one layer's activations.
        req: channel_offset, channels, brightness (dB), normalize and fft.

    Returns:
        (uint8 [H, W, 3] (FFT: [2H, 2W, 3]), the radial power profile with FFT else None).
    """
    from .spectrum import power_spectrum, radial_profile

    x = x.float()
    n = req.channels if x.shape[0] >= req.channels else 1
    start = max(0, min(req.channel_offset, x.shape[0] - n))
    sel = x[start:start + n]  # [nHW]
    if req.fft:
        spectrum = power_spectrum(sel)
        db = spectrum.power_db - 10 * np.log10(np.mean(10 ** (spectrum.power_db / 10)))  # relative to the mean
        grey = np.clip(((db + req.brightness) / LAYER_FFT_RANGE_DB + 1) / 2 * 255, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2), radial_profile(spectrum)
    if req.normalize:
        sel = sel / sel.abs().amax(dim=(1, 2), keepdim=True).clamp(1e-8, 1e8)
    sel = sel * 10 ** (req.brightness / 20)
    image = (sel.permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()  # [HWn]
    return (np.repeat(image, 3, axis=2) if n == 1 else image), None


def render_layer(model: Model, req: RenderRequest) -> RenderResult:
    """Render the layer view of a request: `req.layer`'s activations (or spectrum) instead of the picture."""
    t0 = time.perf_counter()
    ws = request_ws(model, req)
    t1 = time.perf_counter()
    x = capture_layers(model, ws, req, [req.layer])[req.layer][0]  # [CHW]
    t2 = time.perf_counter()
    image, profile = layer_image(x, req)
    t3 = time.perf_counter()
    return RenderResult(image=image, ws=ws, request=req, profile=profile,
                        timings={"mapping": t1 - t0, "synthesis": t2 - t1, "readback": t3 - t2, "total": t3 - t0})
