"""Shared test helpers: where the reference fixtures live and how results are compared with them."""

from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def fixtures_dir() -> Path:
    """Return the reference fixtures folder, skipping the calling test when it is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(f"reference fixtures not found at {FIXTURES}")
    return FIXTURES


def rel_err(ours, ref) -> float:
    """Return ``max|ours - ref| / (std(ref) + 1e-8)`` for numpy arrays or tensors of one shape."""
    ours, ref = (
        a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, np.float64)
        for a in (ours, ref)
    )
    if ours.shape != ref.shape:
        raise AssertionError(f"shape mismatch: ours {list(ours.shape)} vs reference {list(ref.shape)}")
    return float(np.max(np.abs(ours - ref)) / (np.std(ref) + 1e-8))
