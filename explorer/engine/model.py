"""The engine's model API: `load_model(path)` -> `Model` with `info`, `w_avg`, `map` and `synthesize`.

The GUI, the CLI and the tests all go through this one surface, whatever family or file format
the network came from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .formats import Checkpoint, read_checkpoint, read_discriminator
from .networks.discriminator import Discriminator

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is; shown in the GUI and by `explorer info`."""

    family: str                   # 'progan', 'stylegan1', 'stylegan2', 'stylegan3-t', 'stylegan3-r'
    resolution: int
    z_dim: int
    w_dim: int
    num_ws: int
    c_dim: int
    has_noise: bool
    has_input_transform: bool
    source: str                   # the implementation that wrote the file
    source_format: str            # how the file is stored
    network: str                  # the network of the file that was loaded
    networks: tuple[str, ...]     # every generator network in the file
    path: str
    noise_layers: tuple[tuple[str, int], ...]  # (name, resolution) of each noise input, in order
    ws_resolutions: tuple[int, ...]            # the resolution each of the num_ws ws drives
    notes: tuple[str, ...]        # guesses and estimates a user should know about
    resolution_guessed: bool = False
    w_avg_estimated: bool = False
    discriminator: str | None = None  # the file's discriminator network (projection can use its features)

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def _exact_float32():
    """cuDNN runs float32 convolutions in TF32 on Ampere and later GPUs by default (10-bit mantissas: images off
    by about 1e-2 of their spread); float32 asked for is float32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _as_tensor(x, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(device=device, dtype=dtype)


class Model:
    """A generator of any family behind one interface; all calls run without gradients."""

    def __init__(self, ckpt: Checkpoint, path: str | Path, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.generator = ckpt.generator.eval().requires_grad_(False).to(self.device)
        self.checkpoint = ckpt
        g, syn = self.generator, self.generator.synthesis
        self.info = ModelInfo(
            family=ckpt.family,
            resolution=int(g.img_resolution),
            z_dim=int(g.z_dim),
            w_dim=int(g.w_dim),
            num_ws=int(g.num_ws),
            c_dim=int(g.c_dim),
            has_noise=bool(syn.noise_layers),
            has_input_transform=ckpt.family.startswith("stylegan3"),
            source=ckpt.source,
            source_format=ckpt.format,
            network=ckpt.network,
            networks=tuple(ckpt.networks),
            path=str(path),
            noise_layers=tuple((str(n), int(r)) for n, r in syn.noise_layers),
            ws_resolutions=tuple(int(r) for r in syn.ws_resolutions),
            notes=tuple(ckpt.notes),
            resolution_guessed=ckpt.resolution_guessed,
            w_avg_estimated=ckpt.w_avg_estimated,
            discriminator=ckpt.discriminator,
        )
        self._discriminator: Discriminator | None = None

    @property
    def w_avg(self) -> torch.Tensor:
        """The average w, [w_dim]: stored in the checkpoint, or estimated deterministically (see info)."""
        return self.generator.mapping.w_avg

    def discriminator(self) -> Discriminator | None:
        """The file's discriminator on the model's device, or None if it has none. It is read from `info.path`
        on first use (only projection needs it) and then kept.

        Raises:
            LoadError: the file can no longer be read, or its discriminator does not fit ours.
        """
        if self.info.discriminator is not None and self._discriminator is None:
            self._discriminator = read_discriminator(self.info.path, self.info.discriminator).to(self.device)
        return self._discriminator

    @torch.no_grad()
    def map(self, z, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [N, z_dim] (+ one-hot c [N, c_dim]) -> ws [N, num_ws, w_dim], truncated toward `w_avg`.

        Args:
            z: latents, tensor or array.
            c: one-hot class labels for conditional models, else None.
            truncation_psi: 1 = no truncation, 0 = the average w.
            truncation_cutoff: truncate only the first this many ws (None = all).
        """
        z = _as_tensor(z, self.device)
        if z.ndim != 2 or z.shape[1] != self.info.z_dim:
            raise ValueError(f"z must have shape [N, {self.info.z_dim}], got {list(z.shape)}")
        if self.info.c_dim > 0:
            if c is None:
                raise ValueError(f"this model is conditional: give c as one-hot [N, {self.info.c_dim}]")
            c = _as_tensor(c, self.device)
        else:
            c = None
        return self.generator.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    @torch.no_grad()
    def synthesize(
        self,
        ws,
        noise_mode: str = "const",
        noise: Sequence | None = None,
        input_transform=None,
        noise_seed: int = 0,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> image [N, 3, H, W] float32, about [-1, 1].

        Args:
            ws: per-layer latents.
            noise_mode: 'const' (the checkpoint's noise), 'random' (drawn from `noise_seed`) or 'none'.
            noise: optional unit-noise arrays, one per entry of `info.noise_layers` ([N or 1, 1, r, r]);
                an entry of None uses `noise_mode` for that layer.
            input_transform: StyleGAN3 only: the 3x3 matrix a user sets; the network gets its inverse.
            noise_seed: the seed of 'random' noise.
            force_fp32: on CUDA, run in float32 throughout: the layers the config runs in fp16
                too, and without TF32 (the CPU always is float32).
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise mode {noise_mode!r}: use one of {', '.join(NOISE_MODES)}")
        ws = _as_tensor(ws, self.device)
        transform = None
        if input_transform is not None:
            m = np.asarray(input_transform, dtype=np.float64)
            if m.shape != (3, 3):
                raise ValueError(f"input_transform must be a 3x3 matrix, got shape {m.shape}")
            if not self.info.has_input_transform:
                if not np.allclose(m, np.eye(3)):
                    raise ValueError(f"a {self.info.family} model has no input transform")
            else:
                transform = torch.as_tensor(np.linalg.inv(m).astype(np.float32), device=self.device)
        if noise is not None:
            noise = [None if n is None else _as_tensor(n, self.device) for n in noise]
        generator = None
        if noise_mode == "random":
            generator = torch.Generator(device=self.device).manual_seed(int(noise_seed))
        exact = force_fp32 and self.device.type == "cuda"
        with _exact_float32() if exact else contextlib.nullcontext():
            return self.generator.synthesis(ws, noise_mode=noise_mode, noise=noise, generator=generator,
                                            transform=transform, force_fp32=force_fp32)


def load_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    network: str | None = None,
    resolution: int | None = None,
) -> Model:
    """Open a checkpoint of any supported format, safely, as a `Model`.

    Args:
        path: the checkpoint file.
        device: where the network runs ('cpu', 'cuda', ...).
        network: another network of the file than its EMA/averaged generator (e.g. 'G').
        resolution: output resolution, for files that do not record it.

    Raises:
        LoadError: with a message naming the file and what is wrong.
    """
    return Model(read_checkpoint(path, network=network, resolution=resolution), path, device)
