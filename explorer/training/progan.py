"""ProGAN trainer (Karras et al. 2018) for the engine's own `progan.Generator`.

Progressive growing: G and D start at 4x4; each further resolution is faded in over `--fade-kimg`
thousand images (the new block's output blended over the 2x-upsampled previous one with weight alpha
rising from 0 to 1, on both sides, reals included) and then trained for `--stable-kimg`. Where a run
stands follows from the images seen alone, so a resume continues mid-phase. WGAN-GP loss with the
epsilon-drift term, minibatch stddev in D (our residual discriminator, grown), equalised learning rate,
pixel norm, and an EMA generator. Unlike the paper, batch size and learning rate stay fixed across
resolutions and the optimiser state is kept when a resolution is added.

While G is still growing it runs only up to its current resolution; g_ema, the sample grids and the
export carry the matching level of detail (`lod`), which the engine renders as the same image
nearest-upsampled to full size.

    python -m explorer.training.progan --out training-runs/progan-64 --kimg 1000 [--resume]

A grown generator can go on with a fresh (and maybe wider) D: `--init-generator G_ema.pt` keeps the run at
full size, `--d-warmup-kimg` holds G still while D learns, `--d-channel-base` widens D and `--lr-d`
lets it learn faster than G.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from ..engine.networks import build_generator
from .discriminator import Discriminator
from .gan import GANTrainer
from .loop import add_common_args, add_model_args, channel_table, run, setup
from .losses import gradient_penalty, wasserstein_d, wasserstein_g

FAMILY = "progan"


def generator_config(resolution: int = 64, channel_base: int = 1024, channel_max: int = 128,
                     z_dim: int = 128) -> dict:
    return {"z_dim": z_dim, "c_dim": 0, "img_resolution": resolution, "img_channels": 3,
            "channels": list(channel_table(resolution, channel_base, channel_max).values())}


def grow_schedule(images_seen: int, levels: int, stable_kimg: float, fade_kimg: float) -> tuple[int, float]:
    """(level, alpha) after `images_seen` images, level 0 being 4x4: level 0 trains for stable_kimg, then
    each further level fades in over fade_kimg (alpha 0 -> 1) and trains for stable_kimg; the last stays."""
    stable, fade = stable_kimg * 1000, fade_kimg * 1000
    t = images_seen - stable
    if t < 0:
        return 0, 1.0
    if fade + stable <= 0:
        return levels - 1, 1.0
    level = 1 + int(t // (fade + stable))
    if level >= levels:
        return levels - 1, 1.0
    into = t - (level - 1) * (fade + stable)
    return level, min(into / fade, 1.0) if fade > 0 else 1.0


def lod(levels: int, level: int, alpha: float) -> float:
    """The engine generator's level of detail at that stage (0: full size; k + t: the image of 2^-k size
    blended over the one of 2^-(k+1) with weight 1 - t), which renders what `grown_synthesis` does."""
    return float(levels - level - alpha)


def grown_synthesis(synthesis: torch.nn.Module, ws: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
    """Images [N, C, 4 << level, 4 << level] from the blocks up to `level`, the newest one's RGB blended
    over the nearest-upsampled RGB of the one before with weight alpha."""
    blocks = synthesis.blocks[:level + 1]
    x = ws[:, 0]
    for block in blocks[:-1]:
        x = block(x)
    prev, x = x, blocks[-1](x)
    img = blocks[-1].torgb(x)
    if alpha < 1:
        img = F.interpolate(blocks[-2].torgb(prev), scale_factor=2, mode="nearest").lerp(img, alpha)
    return img


def fade_reals(reals: torch.Tensor, resolution: int, alpha: float) -> torch.Tensor:
    """Reals as D sees them at that stage: area-downsampled to `resolution`, and during a fade-in blended
    over their own upsampled half-size version, as the fakes are."""
    reals = F.avg_pool2d(reals, reals.shape[-1] // resolution)
    if alpha < 1:
        reals = F.interpolate(F.avg_pool2d(reals, 2), scale_factor=2, mode="nearest").lerp(reals, alpha)
    return reals


class ProGANTrainer(GANTrainer):
    """One D update (WGAN-GP + drift) and one G update per step at the stage `grow_schedule` gives."""

    family = FAMILY

    def __init__(self, config: dict, lr: float = 0.001, stable_kimg: float = 30, fade_kimg: float = 30,
                 gp_weight: float = 10.0, drift: float = 0.001, ema_kimg: float = 10.0,
                 d_channels: dict[int, int] | None = None, lr_d: float | None = None):
        self.base_config = config
        res = config["img_resolution"]
        G = build_generator(FAMILY, config)
        d_channels = d_channels or dict(zip(G.synthesis.block_resolutions, config["channels"], strict=True))
        D = Discriminator(res, d_channels, growing=True)
        super().__init__(G, D, lr, lr_d=lr_d, ema_kimg=ema_kimg)
        self.levels = len(G.synthesis.block_resolutions)
        self.stable_kimg, self.fade_kimg = stable_kimg, fade_kimg
        self.gp_weight, self.drift = gp_weight, drift
        self.images_seen = 0
        self.g_ema.synthesis.lod = self.lod

    def stage(self, images_seen: int) -> tuple[int, float]:
        return grow_schedule(images_seen, self.levels, self.stable_kimg, self.fade_kimg)

    @property
    def lod(self) -> float:
        """Level of detail after the images seen so far: what g_ema renders and the export records."""
        return lod(self.levels, *self.stage(self.images_seen))

    @property
    def config(self) -> dict:
        return {**self.base_config, "lod": self.lod}

    def generate(self, n: int, level: int, alpha: float) -> torch.Tensor:
        return grown_synthesis(self.G.synthesis, self.G.mapping(self.latents(n)), level, alpha)

    def step(self, reals: torch.Tensor, images_seen: int) -> dict[str, float]:
        n = reals.shape[0]
        level, alpha = self.stage(images_seen)
        reals = fade_reals(reals, 4 << level, alpha)

        # D: Wasserstein estimate with a gradient penalty between reals and fakes, and drift.
        self.D.requires_grad_(True)
        with torch.no_grad():
            fake = self.generate(n, level, alpha)
        logits_real, logits_fake = self.D(reals, alpha), self.D(fake, alpha)
        gp = gradient_penalty(lambda x: self.D(x, alpha), reals, fake)
        loss_d = wasserstein_d(logits_fake, logits_real, self.drift)
        stats = {"loss_d": loss_d.item(), "gp": gp.item(), "d_real": logits_real.mean().item(),
                 "d_fake": logits_fake.mean().item(), "level": level, "alpha": alpha}
        self.optimise(self.opt_D, loss_d + gp * self.gp_weight)

        # G: raise D's score of the fakes.
        if not self.g_held:
            self.D.requires_grad_(False)
            loss_g = wasserstein_g(self.D(self.generate(n, level, alpha), alpha))
            stats["loss_g"] = loss_g.item()
            self.optimise(self.opt_G, loss_g)

        self.steps += 1
        self.images_seen = images_seen + n
        self.update_ema(n, images_seen)
        self.g_ema.synthesis.lod = self.lod
        return stats

    def state_dict(self) -> dict:
        return {**super().state_dict(), "images_seen": self.images_seen}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.images_seen = int(state["images_seen"])
        self.g_ema.synthesis.lod = self.lod


def main(argv: list[str] | None = None) -> ProGANTrainer:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    add_model_args(p, lr=0.001, ema_kimg=10.0)
    p.add_argument("--stable-kimg", type=float, default=30, help="training at each resolution (thousand images)")
    p.add_argument("--fade-kimg", type=float, default=30, help="fade-in of each new resolution (thousand images)")
    p.add_argument("--gp-weight", type=float, default=10.0, help="WGAN-GP weight (lambda)")
    p.add_argument("--lr-d", type=float, default=None, help="D's learning rate (default: --lr)")
    p.add_argument("--d-channel-base", type=int, default=None,
                   help="D's --channel-base where it should be wider than G's (default: G's)")
    args = setup(p, argv)
    config = generator_config(args.resolution, args.channel_base, args.channel_max, args.z_dim)
    d_channels = channel_table(args.resolution, args.d_channel_base, args.channel_max) if args.d_channel_base else None
    grown = args.init_generator is not None  # a grown generator goes on at full size: no schedule
    trainer = ProGANTrainer(config, lr=args.lr, stable_kimg=0 if grown else args.stable_kimg,
                            fade_kimg=0 if grown else args.fade_kimg, gp_weight=args.gp_weight,
                            ema_kimg=args.ema_kimg, d_channels=d_channels, lr_d=args.lr_d)
    run(trainer, args)
    return trainer


if __name__ == "__main__":
    main()
