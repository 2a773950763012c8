"""StyleGAN2 trainer (Karras et al. 2020) for the engine's own `stylegan2.Generator`.

Non-saturating logistic loss, lazy R1 on reals (every `r1_interval` steps, scaled by the interval and
folded into that step's D update), optional lazy path-length regularisation, style mixing, an EMA
generator with ramp-up. Defaults are a CPU-sized 64x64 model: z/w 128, 2 mapping layers, 128
channels down to 16 at 64x64, batch 16.

    python -m explorer.training.stylegan2 --out training-runs/sg2-64 --kimg 2000 [--resume]
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.networks import build_generator
from .discriminator import Discriminator
from .loop import add_common_args, ema_beta, ema_update, run, setup, unfused_modconv

FAMILY = "stylegan2"


def generator_config(resolution: int = 64, channel_base: int = 1024, channel_max: int = 128, z_dim: int = 128,
                     mapping_layers: int = 2) -> dict:
    return {"z_dim": z_dim, "w_dim": z_dim, "c_dim": 0, "img_resolution": resolution, "img_channels": 3,
            "channel_base": channel_base, "channel_max": channel_max,
            "mapping_kwargs": {"num_layers": mapping_layers}}


def channel_table(resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """Channels per resolution, min(base / res, max), the rule the generator uses; D mirrors it."""
    res, table = 4, {}
    while res <= resolution:
        table[res] = min(channel_base // res, channel_max)
        res *= 2
    return table


class StyleGAN2Trainer:
    """G, its EMA copy, D and their Adam optimisers; `step` does one G and one D update."""

    family = FAMILY

    def __init__(self, config: dict, batch: int = 16, lr: float = 0.002, r1_gamma: float = 0.05,
                 r1_interval: int = 16, pl_weight: float = 0.0, pl_interval: int = 4, mixing: float = 0.9,
                 ema_kimg: float = 5.0, ema_rampup: float | None = 0.05):
        self.config, self.batch = config, batch
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.pl_weight, self.pl_interval, self.mixing = pl_weight, pl_interval, mixing
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        self.G = unfused_modconv(build_generator(FAMILY, config)).train()
        self.g_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        for m in self.g_ema.modules():  # the EMA copy renders single images: the engine's form
            if hasattr(m, "fused_modconv"):
                m.fused_modconv = True
        res = config["img_resolution"]
        self.D = Discriminator(res, channel_table(res, config["channel_base"], config["channel_max"]))
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
        self.pl_mean = torch.zeros([])
        self.steps = 0

    def mapping(self, n: int, update_emas: bool = False) -> torch.Tensor:
        """ws for n random z, with a second z taking over from a random layer with probability `mixing`."""
        G = self.G
        ws = G.mapping(torch.randn([n, G.z_dim]), None, update_emas=update_emas)
        if self.mixing > 0 and torch.rand([]) < self.mixing:
            cutoff = int(torch.randint(1, ws.shape[1], []))
            ws2 = G.mapping(torch.randn([n, G.z_dim]), None, update_emas=False)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def generate(self, n: int, update_emas: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        ws = self.mapping(n, update_emas)
        return self.G.synthesis(ws, noise_mode="random"), ws

    def step(self, reals: torch.Tensor, images_seen: int) -> dict[str, float]:
        n = reals.shape[0]
        stats = {}

        # G: make D call the fakes real (non-saturating); now and then keep path lengths even.
        self.D.requires_grad_(False)
        self.G.requires_grad_(True)
        fake, _ = self.generate(n)
        loss_g = F.softplus(-self.D(fake)).mean()
        stats["loss_g"] = loss_g.item()
        if self.pl_weight > 0 and self.steps % self.pl_interval == 0:
            loss_g = loss_g + self.path_length_penalty(max(n // 2, 1)) * self.pl_interval
            stats["pl_mean"] = self.pl_mean.item()
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_G.step()

        # D: fakes fake, reals real; every r1_interval steps add R1 (gradient norm on reals).
        self.D.requires_grad_(True)
        self.G.requires_grad_(False)
        with torch.no_grad():
            fake, _ = self.generate(n, update_emas=True)
        do_r1 = self.r1_gamma > 0 and self.steps % self.r1_interval == 0
        reals = reals.detach().requires_grad_(do_r1)
        logits_fake, logits_real = self.D(torch.cat([fake, reals])).split([n, n])
        loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        stats["loss_d"] = loss_d.item()
        stats["d_real"] = logits_real.mean().item()
        stats["d_fake"] = logits_fake.mean().item()
        if do_r1:
            (grad,) = torch.autograd.grad(logits_real.sum(), reals, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            loss_d = loss_d + r1 * (self.r1_gamma / 2) * self.r1_interval
            stats["r1"] = r1.item()
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_D.step()

        self.steps += 1
        ema_update(self.g_ema, self.G, ema_beta(n, images_seen + n, self.ema_kimg, self.ema_rampup))
        return stats

    def path_length_penalty(self, n: int) -> torch.Tensor:
        """(|J^T y| - running mean)^2 for image-space noise y: keeps a fixed step in w a fixed change in
        the image (StyleGAN2, Section 3.2)."""
        fake, ws = self.generate(n)
        y = torch.randn_like(fake) / np.sqrt(fake.shape[2] * fake.shape[3])
        (grad,) = torch.autograd.grad((fake * y).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
        self.pl_mean = self.pl_mean.lerp(lengths.mean().detach(), 0.01)
        return (lengths - self.pl_mean).square().mean() * self.pl_weight

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        return self.g_ema.synthesis(self.g_ema.mapping(z, None), noise_mode="const")

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "G_ema": self.g_ema.state_dict(), "D": self.D.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "pl_mean": self.pl_mean, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.g_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.pl_mean, self.steps = state["pl_mean"], int(state["steps"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    p.add_argument("--channel-base", type=int, default=1024)
    p.add_argument("--channel-max", type=int, default=128)
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--r1-gamma", type=float, default=0.05)
    p.add_argument("--pl-weight", type=float, default=0.0, help="path-length regularisation weight (paper: 2)")
    p.add_argument("--mixing", type=float, default=0.9, help="style-mixing probability")
    p.add_argument("--ema-kimg", type=float, default=5.0, help="EMA half-life in thousands of images")
    args = setup(p.parse_args(argv))
    config = generator_config(args.resolution, args.channel_base, args.channel_max, args.z_dim)
    trainer = StyleGAN2Trainer(config, batch=args.batch, lr=args.lr, r1_gamma=args.r1_gamma,
                               pl_weight=args.pl_weight, mixing=args.mixing, ema_kimg=args.ema_kimg)
    run(trainer, args)


if __name__ == "__main__":
    main()
