"""The objectives the trainers optimise, in one place so the families can be compared: D logits in,
scalar losses out.

StyleGAN 1, 2 and 3 use the non-saturating logistic loss with an R1 penalty on reals; ProGAN uses the
Wasserstein loss with a gradient penalty and a small drift term.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def nonsaturating_g(logits_fake: torch.Tensor) -> torch.Tensor:
    """G's loss -log sigmoid(D(fake)): strong gradients while D still rejects the fakes (Goodfellow et al. 2014)."""
    return F.softplus(-logits_fake).mean()


def logistic_d(logits_fake: torch.Tensor, logits_real: torch.Tensor) -> torch.Tensor:
    """D's logistic loss: fakes toward 0, reals toward 1."""
    return F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()


def r1_penalty(logits_real: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
    """Mean squared norm of D's gradient at the reals (Mescheder et al. 2018), kept differentiable;
    `reals` must have required grad when D saw them."""
    (grad,) = torch.autograd.grad(logits_real.sum(), reals, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3]).mean()


def wasserstein_g(logits_fake: torch.Tensor) -> torch.Tensor:
    """G's Wasserstein loss: raise D's score of the fakes."""
    return -logits_fake.mean()


def wasserstein_d(logits_fake: torch.Tensor, logits_real: torch.Tensor, drift: float) -> torch.Tensor:
    """D(fake) - D(real), plus `drift` x D(real)^2 so the logits cannot wander off (ProGAN, Appendix A.1)."""
    return logits_fake.mean() - logits_real.mean() + drift * logits_real.square().mean()


def gradient_penalty(D: Callable[[torch.Tensor], torch.Tensor], reals: torch.Tensor,
                     fakes: torch.Tensor) -> torch.Tensor:
    """(|grad D| - 1)^2 at random points between reals and fakes (WGAN-GP, Gulrajani et al. 2017)."""
    t = torch.rand([reals.shape[0], 1, 1, 1]).to(reals)  # drawn on the CPU, whatever the device
    mixed = reals.detach().lerp(fakes.detach(), t).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
    norms = grad.square().sum(dim=[1, 2, 3]).add(1e-8).sqrt()
    return (norms - 1).square().mean()
