"""Walks: keyframes as data, interpolation in W and Z, easing, looping, held layers and transforms."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.engine.interpolate import EASINGS, Interpolator, Keyframe, Walk, slerp, walk_from_seeds
from explorer.engine.render import DirectionEdit, RenderRequest, render, request_ws, seed_z


def test_easings_start_and_end_on_the_keyframes():
    a = np.linspace(0, 1, 11)
    for name, ease in EASINGS.items():
        e = ease(a)
        assert e[0] == 0 and e[-1] == 1, name
        assert np.all(np.diff(e) >= 0), name
    assert EASINGS["ease-in"](np.array(0.5)) < 0.5 < EASINGS["ease-out"](np.array(0.5))


def test_walk_json_round_trip():
    walk = Walk([Keyframe(RenderRequest(seeds=[(1, 0.5), (2, 0.5)], mix_seed=3, mix_layers=[0, 1]), 0.0),
                 Keyframe(RenderRequest(truncation_psi=0.5, rotate=30.0), 2.5)],
                easing="ease-in-out", loop=True, loop_time=4.0, layers=[4, 5])
    assert Walk.from_json(walk.to_json()) == walk
    with pytest.raises(ValueError, match="unknown walk field"):
        Walk.from_dict({**json.loads(walk.to_json()), "speed": 2})


def test_frame_times():
    walk = walk_from_seeds([1, 2, 3], spacing=2.0)
    np.testing.assert_array_equal(walk.frame_times(5), [0, 1, 2, 3, 4])
    walk.loop = True  # back at the first keyframe one spacing after the last; the end frame is left out
    assert walk.length == 6
    np.testing.assert_array_equal(walk.frame_times(3), [0, 2, 4])


def test_w_walk_is_exact_at_keyframes_and_linear_between(sg2):
    base = RenderRequest(truncation_psi=0.7, mix_seed=9, mix_layers=[6, 7])
    walk = Walk([Keyframe(RenderRequest(seeds=[(1, 0.3), (2, 0.7)]), 0.0), Keyframe(base, 1.0)])
    ws, requests = Interpolator(sg2, walk).sample([0.0, 0.25, 1.0])
    a, b = (request_ws(sg2, k.request) for k in walk.keyframes)
    assert torch.equal(ws[0:1], a) and torch.equal(ws[2:3], b)
    torch.testing.assert_close(ws[1:2], 0.75 * a + 0.25 * b)
    assert len(requests) == 3


def test_psi_moves_with_the_latents(sg2):
    walk = Walk([Keyframe(RenderRequest(seeds=[(5, 1.0)], truncation_psi=0.0), 0.0),
                 Keyframe(RenderRequest(seeds=[(5, 1.0)], truncation_psi=1.0), 1.0)])
    ws, _ = Interpolator(sg2, walk).sample([0.5])
    half = request_ws(sg2, RenderRequest(seeds=[(5, 1.0)], truncation_psi=0.5))
    torch.testing.assert_close(ws, half)


def test_z_walk_slerps_seeds(sg2):
    walk = walk_from_seeds([1, 2], RenderRequest(truncation_psi=0.6, truncation_cutoff=4), space="z")
    sampler = Interpolator(sg2, walk)
    ws, _ = sampler.sample([0.0, 0.5, 1.0])
    for row, key in ((0, 0), (2, 1)):
        torch.testing.assert_close(ws[row:row + 1], request_ws(sg2, walk.keyframes[key].request))
    z0, z1 = (torch.as_tensor(seed_z(s, sg2.info.z_dim)) for s in (1, 2))
    mid = slerp(z0, z1, torch.tensor([0.5]))
    expected = sg2.map(mid, None, 0.6, 4)
    torch.testing.assert_close(ws[1:2], expected)
    # Slerp keeps the norm of unit vectors where a straight line would shrink it.
    u0, u1 = z0 / z0.norm(), z1 / z1.norm()
    assert torch.allclose(slerp(u0, u1, torch.tensor([0.5])).norm(), torch.tensor(1.0))


def test_z_walk_needs_single_seed_keyframes(sg2):
    walk = walk_from_seeds([1, 2], RenderRequest(mix_seed=3, mix_layers=[0]), space="z")
    with pytest.raises(ValueError, match="slerp in Z needs one seed"):
        Interpolator(sg2, walk)


def test_held_layers_keep_the_first_keyframe(sg2):
    walk = walk_from_seeds([1, 2, 3], layers=[5, 6, 7])
    ws, _ = Interpolator(sg2, walk).sample([0.0, 0.7, 1.5, 2.0])
    first = request_ws(sg2, walk.keyframes[0].request)
    assert torch.equal(ws[:, :5], first[:, :5].expand(4, -1, -1))
    assert not torch.equal(ws[3, 5:], first[0, 5:])


def test_loop_returns_to_the_first_keyframe(sg2):
    walk = walk_from_seeds([1, 2], loop=True, easing="ease-in-out")
    ws, _ = Interpolator(sg2, walk).sample([0.0, 1.0, 2.0, 1.5])
    assert torch.equal(ws[0], ws[2])
    first, second = (request_ws(sg2, k.request)[0] for k in walk.keyframes)
    torch.testing.assert_close(ws[3], 0.5 * first + 0.5 * second)  # smoothstep(0.5) = 0.5


def test_transform_interpolates_and_noise_follows_the_nearer_keyframe(sg3):
    walk = Walk([Keyframe(RenderRequest(translate=(0.0, 0.0), rotate=0.0, noise_mode="const"), 0.0),
                 Keyframe(RenderRequest(translate=(0.5, -0.25), rotate=90.0, noise_mode="none"), 1.0)])
    _, requests = Interpolator(sg3, walk).sample([0.0, 0.4, 0.6, 1.0])
    assert [r.rotate for r in requests] == pytest.approx([0.0, 36.0, 54.0, 90.0])
    assert requests[1].translate == pytest.approx((0.2, -0.1))
    assert [r.noise_mode for r in requests] == ["const", "const", "none", "none"]


def test_preview_render_matches_the_keyframe(sg2):
    walk = walk_from_seeds([4, 7], RenderRequest(truncation_psi=0.5, noise_mode="random", noise_seed=3))
    sampler = Interpolator(sg2, walk)
    np.testing.assert_array_equal(sampler.render(1.0), render(sg2, walk.keyframes[1].request).image)


def test_z_walk_keeps_direction_edits(sg2):
    rng = np.random.RandomState(0)
    edit = DirectionEdit(direction=rng.randn(sg2.info.w_dim).tolist(), amount=2.0, layers=[0, 1, 2])
    walk = Walk([Keyframe(RenderRequest(seeds=[(1, 1.0)], edits=[edit]), 0.0),
                 Keyframe(RenderRequest(seeds=[(2, 1.0)]), 1.0)], space="z")
    ws, _ = Interpolator(sg2, walk).sample([0.0, 1.0])
    torch.testing.assert_close(ws[0:1], request_ws(sg2, walk.keyframes[0].request))
    torch.testing.assert_close(ws[1:2], request_ws(sg2, walk.keyframes[1].request))
