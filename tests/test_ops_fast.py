"""The fast op paths against the step-by-step reference definitions, on random inputs."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import rel_err

from explorer.engine.ops import filtered_lrelu, upfirdn2d
from explorer.engine.ops.impl import force_reference_ops, use_reference_ops


@pytest.fixture
def impl():
    """Run a callable with the reference ops and with the fast ones."""

    def both(fn):
        force_reference_ops(True)
        try:
            ref = fn()
        finally:
            force_reference_ops(False)
        try:
            fast = fn()
        finally:
            force_reference_ops(None)
        return ref, fast

    return both


def _random_case(rng: random.Random):
    up = rng.choice([1, 2, 4])
    down = 1 if up > 1 else rng.choice([2, 4])
    ups = (up, rng.choice([1, up]))
    downs = (down, rng.choice([1, down]))
    taps = rng.choice([1, 2, 4, 5, 12, 24])
    shape = [taps] if rng.random() < 0.6 else [taps, rng.choice([taps, max(1, taps - 1)])]
    return dict(f=torch.randn(shape), up=list(ups), down=list(downs),
                padding=[rng.randint(-3, 12) for _ in range(4)], flip_filter=rng.random() < 0.5,
                gain=rng.choice([1.0, 3.0]))


@pytest.mark.parametrize("seed", range(8))
def test_upfirdn2d_fast_matches_reference(impl, seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    checked = 0
    while checked < 20:
        kw = _random_case(rng)
        x = torch.randn(2, 3, rng.randint(3, 20), rng.randint(3, 20))
        try:
            ref, fast = impl(lambda x=x, kw=kw: upfirdn2d(x, **kw))
        except RuntimeError:  # cropped to nothing: the reference refuses too
            continue
        if min(ref.shape[2:]) <= 0:
            continue
        assert fast.shape == ref.shape, kw
        assert rel_err(fast, ref) < 1e-5, kw
        checked += 1


@pytest.mark.parametrize(
    ("up", "down", "fu_taps", "fd_shape", "padding", "clamp", "flip"),
    [
        (2, 2, 12, [12], [9, 8, 9, 8], 256.0, False),    # a StyleGAN3-T layer
        (4, 2, 24, [12], [-6, -9, -6, -9], None, False),  # a critically sampled -T layer
        (2, 2, 12, [12, 12], [9, 8, 9, 8], 0.5, True),  # -R: radial 2-D down filter, clamping hard
        (1, 1, 1, [1], 0, 1.0, False),
    ],
)
def test_filtered_lrelu_fast_matches_reference(impl, up, down, fu_taps, fd_shape, padding, clamp, flip):
    torch.manual_seed(0)
    x, b = torch.randn(2, 5, 16, 16) * 3, torch.randn(5)
    fu, fd = torch.randn(fu_taps), torch.randn(fd_shape)
    ref, fast = impl(lambda: filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, clamp=clamp,
                                            flip_filter=flip))
    assert fast.shape == ref.shape
    assert rel_err(fast, ref) < 1e-5
    assert fast.is_contiguous()


def test_reference_switch(monkeypatch):
    monkeypatch.setenv("EXPLORER_REFERENCE_OPS", "1")
    assert use_reference_ops()
    force_reference_ops(False)
    try:
        assert not use_reference_ops()
    finally:
        force_reference_ops(None)
    monkeypatch.setenv("EXPLORER_REFERENCE_OPS", "0")
    assert not use_reference_ops()


def test_filtered_lrelu_fast_gradients_match_reference(impl):
    torch.manual_seed(1)
    x0, b0 = torch.randn(1, 3, 12, 12) * 3, torch.randn(3)
    fu, fd = torch.randn(12), torch.randn(12)

    def grads():
        x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[9, 8, 9, 8], clamp=1.0)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        return torch.cat([x.grad.flatten(), b.grad])

    ref, fast = impl(grads)
    assert rel_err(fast, ref) < 1e-5
