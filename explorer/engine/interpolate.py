"""Walks through latent space: keyframes as plain data, sampled at any times in one batch.

A keyframe is a `RenderRequest` (seeds, class, mixing, psi, edits, noise, transform) plus its time,
so any picture on screen can become one. Between keyframes the W+ latents move in a straight line
(space 'w': the keyframes' final latents, truncated, mixed and edited, so psi moves with them) or
along a great circle in Z (space 'z', NVIDIA's classic slerp: for keyframes of one seed without
mixing; psi and the class are interpolated before truncation, direction edits added after it).
The StyleGAN3 translate/rotate is interpolated too; noise settings cannot be blended, so a frame
takes those of the nearer keyframe.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .model import Model
from .render import (
    RenderRequest,
    apply_edits,
    check_fields,
    class_vector,
    frames_to_uint8,
    request_ws,
    seed_z,
    synthesize_request,
)

SPACES = ("w", "z")


def _ease_in(a: np.ndarray) -> np.ndarray:
    return a**3


def _ease_out(a: np.ndarray) -> np.ndarray:
    return 1 - (1 - a) ** 3


def _ease_in_out(a: np.ndarray) -> np.ndarray:
    return a * a * (3 - 2 * a)  # Smoothstep: at rest on every keyframe.


EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda a: a,
    "ease-in": _ease_in,
    "ease-out": _ease_out,
    "ease-in-out": _ease_in_out,
}


@dataclass
class Keyframe:
    """A picture (as a request) at a time of the walk, in seconds."""

    request: RenderRequest
    time: float = 0.0

    def to_dict(self) -> dict:
        return {"time": self.time, "request": dataclasses.asdict(self.request)}

    @classmethod
    def from_dict(cls, data: dict) -> Keyframe:
        check_fields(cls, data, "keyframe")
        return cls(RenderRequest.from_dict(data["request"]), float(data.get("time", 0.0)))


@dataclass
class Walk:
    """Keyframes and how to move between them. Serialises to JSON (`to_json` / `from_json`)."""

    keyframes: list[Keyframe] = field(default_factory=list)
    space: str = "w"                 # 'w': linear in W+; 'z': slerp in Z (one seed per keyframe, no mixing)
    easing: str = "linear"           # a name of EASINGS, applied on every segment
    loop: bool = False               # go on from the last keyframe back to the first
    loop_time: float | None = None   # when a loop is back at the first keyframe (None: one mean spacing later)
    layers: list[int] | None = None  # ws indices that move (None = all); the rest keep the first keyframe's

    @property
    def start_time(self) -> float:
        return self.keyframes[0].time

    @property
    def end_time(self) -> float:
        """The time of the last frame of a walk, or when a loop is back at its start."""
        times = [k.time for k in self.keyframes]
        if not self.loop:
            return times[-1]
        if self.loop_time is not None:
            return self.loop_time
        spacing = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
        return times[-1] + (spacing if spacing > 0 else 1.0)

    @property
    def length(self) -> float:
        """Seconds from the first keyframe to the end (see `end_time`)."""
        return self.end_time - self.start_time

    def frame_times(self, num_frames: int) -> np.ndarray:
        """Evenly spaced times of `num_frames` frames, [num_frames] float64.

        A walk's frames run from its first to its last keyframe, both included; a loop's stop one
        frame short of its start, so that the video repeats without a doubled frame.
        """
        if num_frames < 1:
            raise ValueError("a walk needs at least one frame")
        if self.loop:
            return self.start_time + self.length * np.arange(num_frames) / num_frames
        return np.linspace(self.start_time, self.end_time, num_frames)

    def validate(self, model: Model) -> None:
        """Raise ValueError, in words a user understands, if the walk does not fit the model."""
        if not self.keyframes:
            raise ValueError("a walk needs at least one keyframe")
        if self.space not in SPACES:
            raise ValueError(f"unknown interpolation space {self.space!r}: use 'w' or 'z'")
        if self.easing not in EASINGS:
            raise ValueError(f"unknown easing {self.easing!r}: use one of {', '.join(EASINGS)}")
        times = np.array([k.time for k in self.keyframes], dtype=np.float64)
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
            raise ValueError("keyframe times must be finite and in order")
        if self.loop and self.loop_time is not None and not self.loop_time > times[-1]:
            raise ValueError(f"the loop time {self.loop_time} must come after the last keyframe ({times[-1]})")
        for i, key in enumerate(self.keyframes):
            try:
                key.request.validate(model)
            except ValueError as e:
                raise ValueError(f"keyframe {i + 1}: {e}") from None
            if self.space == "z" and (len(key.request.seeds) != 1 or key.request.mix_layers):
                raise ValueError(f"keyframe {i + 1} blends seeds or mixes styles: slerp in Z needs one seed "
                                 "per keyframe without mixing (interpolate in W instead)")
        if self.layers is not None:
            bad = [i for i in self.layers if not 0 <= i < model.info.num_ws]
            if bad or not self.layers:
                raise ValueError(f"moving layers must be a non-empty subset of 0..{model.info.num_ws - 1}")

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["keyframes"] = [k.to_dict() for k in self.keyframes]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> Walk:
        """Build a walk from parsed JSON; unknown keys are a mistake worth reporting."""
        check_fields(cls, data, "walk")
        walk = cls(**{**data, "keyframes": [Keyframe.from_dict(k) for k in data.get("keyframes", [])]})
        if walk.layers is not None:
            walk.layers = [int(i) for i in walk.layers]
        return walk

    @classmethod
    def from_json(cls, text: str) -> Walk:
        return cls.from_dict(json.loads(text))


def walk_from_seeds(seeds: Sequence[int], base: RenderRequest | None = None, spacing: float = 1.0,
                    **options) -> Walk:
    """A walk through seeds, one keyframe each `spacing` seconds, everything else from `base`.

    Args:
        seeds: the keyframes' seeds, in order.
        base: the request the keyframes copy (psi, class, mixing, noise, transform); default: defaults.
        spacing: seconds between keyframes.
        **options: further `Walk` fields (space, easing, loop, loop_time, layers).

    Returns:
        The walk.
    """
    base = base or RenderRequest()
    keys = [Keyframe(dataclasses.replace(base, seeds=[(int(s), 1.0)]), i * spacing) for i, s in enumerate(seeds)]
    return Walk(keyframes=keys, **options)


def slerp(z0: torch.Tensor, z1: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of [N, D] latents by a [N] in [0, 1]; exact at both ends, linear when parallel."""
    u0 = z0 / z0.norm(dim=1, keepdim=True)
    u1 = z1 / z1.norm(dim=1, keepdim=True)
    theta = torch.arccos((u0 * u1).sum(dim=1).clamp(-1, 1))  # [N]
    sin = torch.sin(theta)
    parallel = sin < 1e-6
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    k0 = torch.where(parallel, 1 - a, torch.sin((1 - a) * theta) / safe)
    k1 = torch.where(parallel, a, torch.sin(a * theta) / safe)
    return k0[:, None] * z0 + k1[:, None] * z1


def _lerp(start: np.ndarray, end: np.ndarray, a: np.ndarray) -> np.ndarray:
    """torch.lerp's formula in numpy: exact at a = 0 and a = 1, constant when start == end."""
    return np.where(a < 0.5, start + a * (end - start), end - (end - start) * (1 - a))


class Interpolator:
    """One walk on one model: keyframe latents computed once, any batch of times sampled at once.

    Args:
        model: the generator.
        walk: the keyframes and options; validated here.
    """

    def __init__(self, model: Model, walk: Walk):
        walk.validate(model)
        self.model = model
        self.walk = walk
        info = model.info
        keys = [k.request for k in walk.keyframes]
        self._requests = keys
        self._times = np.array([k.time for k in walk.keyframes], dtype=np.float64)
        self._knots = self._times if not walk.loop else np.append(self._times, walk.end_time)

        # The final latents of every keyframe (truncated, mixed), as `render` computes them.
        self._ws = torch.cat([request_ws(model, r) for r in keys])  # [KLW]
        self._held = None
        if walk.layers is not None:
            self._held = torch.as_tensor(sorted(set(range(info.num_ws)) - set(walk.layers)), dtype=torch.long)

        # Inputs of the mapping for slerp in Z: z, class and per-layer psi of every keyframe, and the
        # offsets of their direction edits (None without edits).
        self._offsets = None
        if walk.space == "z" and any(r.edits for r in keys):
            zeros = torch.zeros([1, info.num_ws, info.w_dim], device=self._ws.device)
            self._offsets = torch.cat([apply_edits(zeros, r.edits) for r in keys])  # [KLW]
        if walk.space == "z":
            self._z = torch.as_tensor(np.concatenate([seed_z(r.seeds[0][0], info.z_dim) for r in keys]))  # [KZ]
            self._c = None
            if info.c_dim:
                self._c = torch.as_tensor(np.concatenate([class_vector(r.class_idx, info.c_dim) for r in keys]))
            layer = np.arange(info.num_ws)
            self._psi = torch.as_tensor(np.stack([
                np.where(layer < (r.truncation_cutoff if r.truncation_cutoff is not None else info.num_ws),
                         r.truncation_psi, 1.0) for r in keys]), dtype=torch.float32)  # [KL]
        self._translate = np.array([r.translate for r in keys], dtype=np.float64)  # [K2]
        self._rotate = np.array([r.rotate for r in keys], dtype=np.float64)  # [K]

    def _segments(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keyframe indices either side of each time and the eased position between them, [B] each."""
        knots = self._knots
        if len(knots) == 1:
            zeros = np.zeros(len(times), dtype=np.int64)
            return zeros, zeros, np.zeros(len(times))
        seg = np.clip(np.searchsorted(knots, times, side="right") - 1, 0, len(knots) - 2)
        span = knots[seg + 1] - knots[seg]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(span > 0, (times - knots[seg]) / span, 1.0)
        a = EASINGS[self.walk.easing](np.clip(a, 0.0, 1.0))
        return seg % len(self._times), (seg + 1) % len(self._times), a

    def sample(self, times: Sequence[float] | np.ndarray) -> tuple[torch.Tensor, list[RenderRequest]]:
        """The latents and synthesis settings of frames at the given times.

        Args:
            times: seconds on the walk's clock, e.g. `walk.frame_times(n)[i:j]`.

        Returns:
            ws [B, num_ws, w_dim] on the model's device, and per frame a request holding its noise
            settings and interpolated translate/rotate (what `synthesize_request` needs).
        """
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        i, j, a = self._segments(times)
        weight = torch.as_tensor(a, dtype=torch.float32, device=self._ws.device)  # [B]
        if self.walk.space == "w":
            ws = torch.lerp(self._ws[i], self._ws[j], weight[:, None, None])  # [BLW]
        else:
            z = slerp(self._z[i], self._z[j], weight.cpu())  # [BZ]
            c = None if self._c is None else torch.lerp(self._c[i], self._c[j], weight.cpu()[:, None])
            ws = self.model.map(z, c)  # [BLW]
            psi = torch.lerp(self._psi[i], self._psi[j], weight.cpu()[:, None]).to(ws.device)  # [BL]
            ws = self.model.w_avg.lerp(ws, psi[:, :, None])
            if self._offsets is not None:
                ws = ws + torch.lerp(self._offsets[i], self._offsets[j], weight[:, None, None])
        if self._held is not None:
            ws[:, self._held] = self._ws[0, self._held]
        translate = _lerp(self._translate[i], self._translate[j], a[:, None])
        rotate = _lerp(self._rotate[i], self._rotate[j], a)
        nearest = np.where(a < 0.5, i, j)
        requests = [
            dataclasses.replace(self._requests[k], translate=(float(tx), float(ty)), rotate=float(r))
            for k, (tx, ty), r in zip(nearest, translate, rotate, strict=True)
        ]
        return ws, requests

    def render(self, time: float) -> np.ndarray:
        """One frame as uint8 [H, W, 3]: what a timeline preview shows at `time`."""
        ws, (req,) = self.sample([time])
        return frames_to_uint8(synthesize_request(self.model, ws, req))[0]

    def frame_request(self, time: float) -> RenderRequest:
        """The frame at `time` as a request with explicit latents: `render` draws exactly `self.render(time)`."""
        ws, (req,) = self.sample([time])
        return dataclasses.replace(req, ws=ws[0].tolist(), truncation_psi=1.0, truncation_cutoff=None,
                                   mix_seed=None, mix_layers=[], edits=[])
