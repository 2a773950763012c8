"""The training data: 64x64 synthetic faces drawn from a pretrained DCGAN "teacher".

No face data set can be downloaded here, but the MIT-licensed PyPI package `gan-face-generate`
ships the weights of a classic DCGAN generator trained on faces (`gan_face_generate/weights.tar`,
a torch state dict). We fetch only its wheel (`pip download --no-deps`), read the state dict with
`weights_only=True` into our own definition of that network and never import the package's code.
The teacher gives an unlimited, seeded stream of varied faces.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..engine.default_model import cache_dir

PACKAGE = "gan-face-generate"
VERSION = "1.1.1"
WHEEL = "gan_face_generate-1.1.1-py3-none-any.whl"
WHEEL_SHA256 = "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569"
WEIGHTS_MEMBER = "gan_face_generate/weights.tar"
Z_DIM = 100
RESOLUTION = 64


class TeacherError(RuntimeError):
    """The teacher's weights cannot be had (offline, pip missing, a wheel that is not the one we know)."""


class DCGANGenerator(nn.Module):
    """The textbook DCGAN generator (z 100 -> 4x4x512 -> ... -> 64x64x3, batch norm, ReLU, tanh).

    Layers sit in `main` at the indices the shipped state dict uses, so it loads strictly.
    """

    def __init__(self, z_dim: int = Z_DIM, ngf: int = 64, img_channels: int = 3):
        super().__init__()
        chans = [z_dim, ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:], strict=True)):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ngf, img_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], -1, 1, 1))


def wheel_path(cache: Path | None = None) -> Path:
    """Where the teacher's wheel is kept (downloaded on first use)."""
    return (cache or cache_dir() / "teacher") / WHEEL


def fetch_wheel(cache: Path | None = None) -> Path:
    """The teacher's wheel, downloaded with `pip download --no-deps` into the cache unless it is there;
    checked against the known SHA-256 so the training data cannot change under us."""
    path = wheel_path(cache)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               f"{PACKAGE}=={VERSION}", "-d", str(path.parent)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not path.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise TeacherError(
                f"cannot download the teacher wheel {PACKAGE}=={VERSION} (offline?). Put {WHEEL} into "
                f"{path.parent} by hand, or run: {' '.join(cmd)}\n" + "\n".join(tail))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise TeacherError(f"{path}: SHA-256 {digest} is not the known {WHEEL_SHA256}; delete it and retry")
    return path


def load_teacher(cache: Path | None = None) -> DCGANGenerator:
    """The pretrained teacher on the CPU in eval mode (batch norm uses its running statistics), without gradients."""
    with zipfile.ZipFile(fetch_wheel(cache)) as zf:
        data = zf.read(WEIGHTS_MEMBER)
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)["netG_state_dict"]
    net = DCGANGenerator()
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


class FaceStream:
    """Endless batches of teacher faces [N, 3, R, R] in [-1, 1], reproducible from `seed`.

    Resolutions below 64 are area-downsampled (for small tests and low-resolution training phases).
    """

    def __init__(self, batch_size: int, seed: int = 0, resolution: int = RESOLUTION,
                 teacher: DCGANGenerator | None = None, device: str | torch.device = "cpu"):
        if RESOLUTION % resolution:
            raise ValueError(f"resolution must divide {RESOLUTION}, not {resolution}")
        self.batch_size, self.resolution, self.device = batch_size, resolution, torch.device(device)
        self.teacher = (teacher if teacher is not None else load_teacher()).to(self.device)
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def next(self, batch_size: int | None = None) -> torch.Tensor:
        z = torch.randn([batch_size or self.batch_size, Z_DIM], generator=self.gen).to(self.device)
        img = self.teacher(z).clamp(-1, 1)
        if self.resolution != RESOLUTION:
            img = nn.functional.avg_pool2d(img, RESOLUTION // self.resolution)
        return img

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            yield self.next()

    def state_dict(self) -> dict:
        """The random state, so a resumed run continues the same stream."""
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
