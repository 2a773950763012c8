"""The trainer skeleton the families share: G, its EMA copy and D with their Adam optimisers, saved and
restored together (`GANTrainer`), and the StyleGAN step (`LogisticTrainer`): non-saturating logistic
loss, lazy R1 on reals and style mixing, as StyleGAN 1, 2 and 3 train.
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

from .loop import ema_beta, ema_update
from .losses import logistic_d, nonsaturating_g, r1_penalty


def use_fused_modconv(G: nn.Module, fused: bool) -> nn.Module:
    """Switch every modulated conv of `G` between the engine's form (True: one weight per sample) and the
    training form (False: activations scaled around one shared weight, much faster for batches)."""
    for m in G.modules():
        if hasattr(m, "fused_modconv"):
            m.fused_modconv = fused
    return G


class GANTrainer:
    """G (trained), g_ema (its exponential moving average, what is sampled and exported), D and the two
    Adam optimisers (betas 0, 0.99, as every family's paper uses)."""

    family: str
    config: dict

    def __init__(self, G: nn.Module, D: nn.Module, lr: float, lr_d: float | None = None, ema_kimg: float = 5.0,
                 ema_rampup: float | None = 0.05):
        self.G = use_fused_modconv(G, False).train()
        self.g_ema = use_fused_modconv(copy.deepcopy(G), True).eval().requires_grad_(False)
        self.D = D
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
        self.g_held = False  # skip G's updates (weights and running averages): a fresh D learns first
        lr_d = lr if lr_d is None else lr_d
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=lr_d, betas=(0.0, 0.99), eps=1e-8)
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        self.steps = 0

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    def to(self, device: torch.device | str) -> GANTrainer:
        """Move the networks (before the optimisers hold any state: they keep the same parameters)."""
        for net in (self.G, self.g_ema, self.D):
            net.to(device)
        return self

    def latents(self, n: int) -> torch.Tensor:
        """n z vectors, drawn on the CPU (so a run's draws do not depend on its device) and moved to G's."""
        return torch.randn([n, self.G.z_dim]).to(self.device)

    def update_ema(self, batch: int, images_seen: int) -> None:
        """Move g_ema toward G after a step that took the count of images seen to `images_seen + batch`."""
        ema_update(self.g_ema, self.G, ema_beta(batch, images_seen + batch, self.ema_kimg, self.ema_rampup))

    @staticmethod
    def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """g_ema's images for z, rendered as the engine renders them."""
        return self.g_ema.synthesis(self.g_ema.mapping(z, None), noise_mode="const")

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "G_ema": self.g_ema.state_dict(), "D": self.D.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        """Restore a run; the optimisers keep the learning rates this trainer was built with (a resumed
        run may change them, see `loop.TUNABLE_ARGS`)."""
        self.G.load_state_dict(state["G"])
        self.g_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        for opt, key in ((self.opt_G, "opt_G"), (self.opt_D, "opt_D")):
            lrs = [group["lr"] for group in opt.param_groups]
            opt.load_state_dict(state[key])
            for group, lr in zip(opt.param_groups, lrs, strict=True):
                group["lr"] = lr
        self.steps = int(state["steps"])


def add_logistic_args(p: argparse.ArgumentParser, mixing: float, r1_gamma: float = 0.05) -> None:
    """R1 weight and mixing; the default R1 weight, 0.05, is the StyleGAN2-ADA rule 2e-4 res^2 / batch
    at 64 px and batch 16."""
    p.add_argument("--r1-gamma", type=float, default=r1_gamma, help="R1 weight")
    p.add_argument("--mixing", type=float, default=mixing, help="style-mixing probability")


class LogisticTrainer(GANTrainer):
    """One G update (non-saturating, plus `g_regulariser`) and one D update (logistic, plus R1 every
    `r1_interval` steps, scaled by the interval) per step, then the EMA. With probability `mixing` the
    fakes take their ws from two z, switching at a random layer (style mixing, StyleGAN Section 3.1)."""

    def __init__(self, G: nn.Module, D: nn.Module, lr: float, r1_gamma: float, r1_interval: int, mixing: float,
                 **kwargs):
        super().__init__(G, D, lr, **kwargs)
        self.r1_gamma, self.r1_interval, self.mixing = r1_gamma, r1_interval, mixing

    def mapping(self, n: int, update_emas: bool = False) -> torch.Tensor:
        G = self.G
        ws = G.mapping(self.latents(n), None, update_emas=update_emas)
        if self.mixing > 0 and torch.rand([]) < self.mixing:
            cutoff = int(torch.randint(1, ws.shape[1], []))
            ws2 = G.mapping(self.latents(n), None, update_emas=False)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def synthesis(self, ws: torch.Tensor, update_emas: bool) -> torch.Tensor:
        return self.G.synthesis(ws, noise_mode="random")

    def generate(self, n: int, update_emas: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """n fakes and their ws; `update_emas` lets G track its running averages (w_avg, magnitudes)."""
        ws = self.mapping(n, update_emas)
        return self.synthesis(ws, update_emas), ws

    def discriminate(self, img: torch.Tensor, images_seen: int) -> torch.Tensor:
        return self.D(img)

    def g_regulariser(self, n: int, stats: dict[str, float]) -> torch.Tensor | float:
        """An extra term of G's loss this step (none here)."""
        return 0.0

    def step(self, reals: torch.Tensor, images_seen: int) -> dict[str, float]:
        n = reals.shape[0]
        stats = {}

        # G: make D call the fakes real.
        if not self.g_held:
            self.D.requires_grad_(False)
            self.G.requires_grad_(True)
            fake, _ = self.generate(n)
            loss_g = nonsaturating_g(self.discriminate(fake, images_seen))
            stats["loss_g"] = loss_g.item()
            self.optimise(self.opt_G, loss_g + self.g_regulariser(n, stats))

        # D: fakes fake, reals real (in separate calls, so minibatch-stddev groups never mix the two);
        # every r1_interval steps add R1.
        self.D.requires_grad_(True)
        self.G.requires_grad_(False)
        with torch.no_grad():
            fake, _ = self.generate(n, update_emas=not self.g_held)
        do_r1 = self.r1_gamma > 0 and self.steps % self.r1_interval == 0
        reals = reals.detach().requires_grad_(do_r1)
        logits_fake = self.discriminate(fake, images_seen)
        logits_real = self.discriminate(reals, images_seen)
        loss_d = logistic_d(logits_fake, logits_real)
        stats.update(loss_d=loss_d.item(), d_real=logits_real.mean().item(), d_fake=logits_fake.mean().item())
        if do_r1:
            r1 = r1_penalty(logits_real, reals)
            loss_d = loss_d + r1 * (self.r1_gamma / 2) * self.r1_interval
            stats["r1"] = r1.item()
        self.optimise(self.opt_D, loss_d)

        self.steps += 1
        self.update_ema(n, images_seen)
        return stats
