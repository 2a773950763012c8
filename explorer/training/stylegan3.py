"""StyleGAN3-T and -R trainer (Karras et al. 2021) for the engine's own `stylegan3.Generator`.

Non-saturating logistic loss, lazy R1 on reals, an EMA generator with ramp-up (see
`gan.LogisticTrainer`); no style mixing and no path-length term, as the paper's configs. Their R1
weights are 5x the StyleGAN2-ADA rule 2e-4 res^2 / batch (8.2 at 512 px, 32 at 1024 px, batch 32), so
the default here (`R1_GAMMA`) is 5 x 0.05 = 0.25 for 64 px and batch 16 (the first small -T run, at
0.05, made the same swirl in every sample for 40 kimg). The layers track their input magnitudes
(decay 0.5 per 20 kimg) while fakes are made for D's update. `--cfg r`
gives the rotation-equivariant config: 1x1 convs, radial down filters, twice the channels, and D's
inputs Gaussian-blurred at first (sigma fading to 0 over `--blur-kimg`; the paper's 10 px at 256-1024 px
is scaled here to the image size). Defaults are a CPU-sized 64x64 model: z/w 128, 2 mapping layers,
128 channels at the coarsest layers.

    python -m explorer.training.stylegan3 --cfg t --out training-runs/sg3t-64 --kimg 1000 [--resume]
"""

from __future__ import annotations

import argparse
import math

import torch

from ..engine.networks import build_generator
from ..engine.ops import filter2d
from .discriminator import Discriminator
from .gan import LogisticTrainer, add_logistic_args
from .loop import add_common_args, add_model_args, channel_table, run, setup

R1_GAMMA = 0.25


def generator_config(cfg: str = "t", resolution: int = 64, channel_base: int = 1024, channel_max: int = 128,
                     z_dim: int = 128, num_layers: int = 14, batch: int = 16) -> dict:
    config = {"z_dim": z_dim, "w_dim": z_dim, "c_dim": 0, "img_resolution": resolution, "img_channels": 3,
              "channel_base": channel_base, "channel_max": channel_max, "num_layers": num_layers,
              "num_fp16_res": 0, "magnitude_ema_beta": 0.5 ** (batch / 20_000),
              "mapping_kwargs": {"num_layers": 2}}
    if cfg == "r":
        config.update(conv_kernel=1, use_radial_filters=True, channel_base=channel_base * 2,
                      channel_max=channel_max * 2)
    return config


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """img blurred with a separable Gaussian of `sigma` pixels (cut at 3 sigma); sigma 0 leaves it."""
    if sigma <= 0:
        return img
    radius = math.ceil(3 * sigma)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32).div(sigma).square().mul(-0.5).exp()
    return filter2d(img, taps / taps.sum())


class StyleGAN3Trainer(LogisticTrainer):
    """`d_channels`: D's width per resolution (the -R config widens G only)."""

    def __init__(self, cfg: str, config: dict, d_channels: dict[int, int], lr: float = 0.0025, lr_d: float = 0.002,
                 r1_gamma: float = R1_GAMMA, r1_interval: int = 16, mixing: float = 0.0, ema_kimg: float = 5.0,
                 blur_sigma: float = 0.0, blur_kimg: float = 0.0):
        self.family, self.config = f"stylegan3-{cfg}", config
        self.blur_sigma, self.blur_kimg = blur_sigma, blur_kimg
        G, res = build_generator(self.family, config), config["img_resolution"]
        D = Discriminator(res, d_channels)
        super().__init__(G, D, lr, r1_gamma, r1_interval, mixing, lr_d=lr_d, ema_kimg=ema_kimg)

    def synthesis(self, ws: torch.Tensor, update_emas: bool) -> torch.Tensor:
        return self.G.synthesis(ws, update_emas=update_emas)

    def discriminate(self, img: torch.Tensor, images_seen: int) -> torch.Tensor:
        fade = max(1 - images_seen / (self.blur_kimg * 1000), 0.0) if self.blur_kimg > 0 else 0.0
        return self.D(gaussian_blur(img, self.blur_sigma * fade))


def main(argv: list[str] | None = None) -> StyleGAN3Trainer:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    add_model_args(p, lr=0.0025)
    add_logistic_args(p, mixing=0.0, r1_gamma=R1_GAMMA)
    p.add_argument("--cfg", choices=("t", "r"), default="t", help="StyleGAN3-T (translation) or -R (rotation)")
    p.add_argument("--lr-d", type=float, default=0.002)
    p.add_argument("--num-layers", type=int, default=14, help="synthesis layers between the input and ToRGB")
    p.add_argument("--blur-sigma", type=float, default=None, help="initial blur of D's inputs in pixels "
                   "(default: -R 10 px per 256 px of image, -T none)")
    p.add_argument("--blur-kimg", type=float, default=None, help="blur fade-out (default: 200 x batch / 32)")
    args = setup(p, argv)
    if args.blur_sigma is None:
        args.blur_sigma = 10 * args.resolution / 256 if args.cfg == "r" else 0.0
    if args.blur_kimg is None:
        args.blur_kimg = 200 * args.batch / 32
    config = generator_config(args.cfg, args.resolution, args.channel_base, args.channel_max, args.z_dim,
                              args.num_layers, args.batch)
    d_channels = channel_table(args.resolution, args.channel_base, args.channel_max)
    trainer = StyleGAN3Trainer(args.cfg, config, d_channels, lr=args.lr, lr_d=args.lr_d, r1_gamma=args.r1_gamma,
                               mixing=args.mixing, ema_kimg=args.ema_kimg, blur_sigma=args.blur_sigma,
                               blur_kimg=args.blur_kimg)
    run(trainer, args)
    return trainer


if __name__ == "__main__":
    main()
