"""StyleGAN (1) trainer (Karras et al. 2019) for the engine's own `stylegan1.Generator`.

Non-saturating logistic loss with R1 on reals every step (the paper's FFHQ setup; `--r1-interval` makes
it lazy), style-mixing regularisation with probability 0.9, w_avg tracking and an EMA generator (see
`gan.LogisticTrainer`). A fixed-resolution variant, as later reimplementations train it: the whole
64x64 network from the start, without the paper's progressive growing. Our residual discriminator
(StyleGAN2's) stands in for the paper's ProGAN-style one. Defaults are a CPU-sized model: z/w 128,
2 mapping layers, 128 channels down to 16 at 64x64, batch 16.

    python -m explorer.training.stylegan1 --out training-runs/sg1-64 --kimg 2000 [--resume]
"""

from __future__ import annotations

import argparse

from ..engine.networks import build_generator
from .discriminator import Discriminator
from .gan import LogisticTrainer, add_logistic_args
from .loop import add_common_args, add_model_args, channel_table, run, setup

FAMILY = "stylegan1"


def generator_config(resolution: int = 64, channel_base: int = 1024, channel_max: int = 128, z_dim: int = 128,
                     mapping_layers: int = 2) -> dict:
    return {"z_dim": z_dim, "w_dim": z_dim, "img_resolution": resolution, "img_channels": 3,
            "channels": list(channel_table(resolution, channel_base, channel_max).values()),
            "mapping_kwargs": {"num_layers": mapping_layers}}


class StyleGAN1Trainer(LogisticTrainer):
    family = FAMILY

    def __init__(self, config: dict, lr: float = 0.002, r1_gamma: float = 0.05, r1_interval: int = 1,
                 mixing: float = 0.9, ema_kimg: float = 5.0):
        self.config = config
        G, res = build_generator(FAMILY, config), config["img_resolution"]
        D = Discriminator(res, dict(zip(G.synthesis.block_resolutions, config["channels"], strict=True)))
        super().__init__(G, D, lr, r1_gamma, r1_interval, mixing, ema_kimg=ema_kimg)


def main(argv: list[str] | None = None) -> StyleGAN1Trainer:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    add_model_args(p, lr=0.002)
    add_logistic_args(p, mixing=0.9)
    p.add_argument("--r1-interval", type=int, default=1, help="R1 every this many steps (1: every step, as the paper)")
    args = setup(p, argv)
    config = generator_config(args.resolution, args.channel_base, args.channel_max, args.z_dim)
    trainer = StyleGAN1Trainer(config, lr=args.lr, r1_gamma=args.r1_gamma, r1_interval=args.r1_interval,
                               mixing=args.mixing, ema_kimg=args.ema_kimg)
    run(trainer, args)
    return trainer


if __name__ == "__main__":
    main()
