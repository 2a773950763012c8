"""One picture, described by a plain request and rendered by the same code in the GUI, the CLI and
the tests: the same request gives the same pixels everywhere."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .model import NOISE_MODES, Model


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
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown direction edit field(s): {', '.join(unknown)}")
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

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> RenderRequest:
        """Build a request from parsed JSON; unknown keys are a mistake worth reporting."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown render request field(s): {', '.join(unknown)}")
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


@dataclass
class RenderResult:
    """A rendered picture: uint8 [H, W, 3], the W it came from, and where the time went (seconds)."""

    image: np.ndarray
    ws: torch.Tensor
    timings: dict[str, float]
    request: RenderRequest
    error: str | None = None


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


def render(model: Model, req: RenderRequest) -> RenderResult:
    """Render one request on the model's device."""
    req.validate(model)
    t0 = time.perf_counter()
    ws = request_ws(model, req)
    t1 = time.perf_counter()
    img = synthesize_request(model, ws, req)
    t2 = time.perf_counter()
    image = to_uint8(img)
    t3 = time.perf_counter()
    return RenderResult(image=image, ws=ws, request=req,
                        timings={"mapping": t1 - t0, "synthesis": t2 - t1, "readback": t3 - t2, "total": t3 - t0})
