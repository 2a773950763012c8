"""Analysis pictures of the current request, as jobs for the GUI's aliasing dock: the texture-sticking
average around its latent and the untransform diff of its translate/rotate."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from .equivariance import DiffResult, untransform_diff
from .model import Model
from .render import RenderRequest, class_vector, request_ws, seed_z
from .spectrum import texture_sticking
from .video import Progress


def request_sticking(
    model: Model,
    req: RenderRequest,
    num_frames: int = 32,
    radius: float = 0.2,
    translate: float = 0.0,
    untransform_frames: bool = False,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray | None:
    """`spectrum.texture_sticking` around a request's heaviest seed, with its class and ψ.

    Returns:
        The average image uint8 [H, W, 3], or None if cancelled.
    """
    req.validate(model)
    info = model.info
    seed = max(req.seeds, key=lambda sw: sw[1])[0]
    return texture_sticking(model, seed_z(seed, info.z_dim), class_vector(req.class_idx, info.c_dim),
                            truncation_psi=req.truncation_psi, num_frames=num_frames, radius=radius,
                            translate=translate, untransform_frames=untransform_frames,
                            progress=progress, cancel=cancel)


def request_diff(model: Model, req: RenderRequest) -> DiffResult:
    """`equivariance.untransform_diff` of a request's latents and its translate/rotate.

    Raises:
        ValueError: for a model without an input transform, or an identity transform.
    """
    req.validate(model)
    if not model.info.has_input_transform:
        raise ValueError(f"a {model.info.family} model has no input transform to undo")
    matrix = req.input_transform()
    if matrix is None:
        raise ValueError("set a translation or rotation first: with none there is nothing to compare")
    return untransform_diff(model, request_ws(model, req), matrix, noise_mode=req.noise_mode)
