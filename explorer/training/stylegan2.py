"""StyleGAN2 trainer (Karras et al. 2020) for the engine's own `stylegan2.Generator`.

Non-saturating logistic loss, lazy R1 on reals (every 16 steps, scaled by the interval and folded into
that step's D update), optional lazy path-length regularisation, style mixing, an EMA generator with
ramp-up (see `gan.LogisticTrainer`). Defaults are a CPU-sized 64x64 model: z/w 128, 2 mapping layers,
128 channels down to 16 at 64x64, batch 16.

    python -m explorer.training.stylegan2 --out training-runs/sg2-64 --kimg 2000 [--resume]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ..engine.networks import build_generator
from .discriminator import Discriminator
from .gan import LogisticTrainer, add_logistic_args
from .loop import add_common_args, add_model_args, channel_table, run, setup

FAMILY = "stylegan2"


def generator_config(resolution: int = 64, channel_base: int = 1024, channel_max: int = 128, z_dim: int = 128,
                     mapping_layers: int = 2) -> dict:
    return {"z_dim": z_dim, "w_dim": z_dim, "c_dim": 0, "img_resolution": resolution, "img_channels": 3,
            "channel_base": channel_base, "channel_max": channel_max,
            "mapping_kwargs": {"num_layers": mapping_layers}}


class StyleGAN2Trainer(LogisticTrainer):
    """The StyleGAN step, plus path-length regularisation every `pl_interval` steps when `pl_weight` > 0."""

    family = FAMILY

    def __init__(self, config: dict, lr: float = 0.002, r1_gamma: float = 0.05, r1_interval: int = 16,
                 pl_weight: float = 0.0, pl_interval: int = 4, mixing: float = 0.9, ema_kimg: float = 5.0):
        self.config = config
        G, res = build_generator(FAMILY, config), config["img_resolution"]
        D = Discriminator(res, channel_table(res, config["channel_base"], config["channel_max"]))
        super().__init__(G, D, lr, r1_gamma, r1_interval, mixing, ema_kimg=ema_kimg)
        self.pl_weight, self.pl_interval = pl_weight, pl_interval
        self.pl_mean = torch.zeros([])

    def g_regulariser(self, n: int, stats: dict[str, float]) -> torch.Tensor | float:
        if self.pl_weight <= 0 or self.steps % self.pl_interval:
            return 0.0
        penalty = self.path_length_penalty(max(n // 2, 1))
        stats["pl_mean"] = self.pl_mean.item()
        return penalty * self.pl_interval

    def path_length_penalty(self, n: int) -> torch.Tensor:
        """(|J^T y| - running mean)^2 for image-space noise y: keeps a fixed step in w a fixed change in
        the image (StyleGAN2, Section 3.2)."""
        fake, ws = self.generate(n)
        y = torch.randn_like(fake) / np.sqrt(fake.shape[2] * fake.shape[3])
        (grad,) = torch.autograd.grad((fake * y).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
        self.pl_mean = self.pl_mean.to(lengths.device).lerp(lengths.mean().detach(), 0.01)  # follows the run's device
        return (lengths - self.pl_mean).square().mean() * self.pl_weight

    def state_dict(self) -> dict:
        return {**super().state_dict(), "pl_mean": self.pl_mean}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.pl_mean = state["pl_mean"]


def main(argv: list[str] | None = None) -> StyleGAN2Trainer:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    add_model_args(p, lr=0.002)
    add_logistic_args(p, mixing=0.9)
    p.add_argument("--pl-weight", type=float, default=0.0, help="path-length regularisation weight (paper: 2)")
    args = setup(p, argv)
    config = generator_config(args.resolution, args.channel_base, args.channel_max, args.z_dim)
    trainer = StyleGAN2Trainer(config, lr=args.lr, r1_gamma=args.r1_gamma, pl_weight=args.pl_weight,
                               mixing=args.mixing, ema_kimg=args.ema_kimg)
    run(trainer, args)
    return trainer


if __name__ == "__main__":
    main()
