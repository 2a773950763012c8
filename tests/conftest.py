"""Shared test helpers: where the reference fixtures live and how results are compared with them."""

import faulthandler
import gc
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.engine.cpu_heap import keep_freed_memory

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
TEST_TIMEOUT_S = 900  # far above the slowest test; a deadlock must not eat CI's whole time


def pytest_configure(config):
    """Run with the heap the `explorer` command sets up (and as fast)."""
    keep_freed_memory()


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` skip, saying why, on a machine without a CUDA GPU (deselect them with -m "not cuda")."""
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU; torch.cuda.is_available() is False here")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(no_gpu)


@pytest.fixture(autouse=True)
def watchdog():
    """End the run with every thread's stack when a test hangs; collect garbage on the main thread after
    each test, since a window turns automatic collection off (explorer.widgets.gc_thread)."""
    faulthandler.dump_traceback_later(TEST_TIMEOUT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
    if not gc.isenabled():
        gc.collect()


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


def assert_same_picture(ours: np.ndarray, ref: np.ndarray) -> None:
    """uint8 pictures equal up to float rounding. A batch of several latents may run other kernels than
    one alone, which can move a value across a rounding edge: one level at most, on a few values."""
    diff = np.abs(np.asarray(ours, np.int16) - np.asarray(ref, np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, f"{(diff > 0).sum()} of {diff.size} values differ, " \
        f"by up to {diff.max()}"


@pytest.fixture(scope="module")
def one_thread():
    """The fixture networks are tiny: on shared cores one thread runs them several times faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sg2():
    """The StyleGAN2-ADA 32 px fixture model (noise, 8 ws), loaded once."""
    from explorer.engine import load_model

    return load_model(fixtures_dir() / "nvidia/stylegan2-ada-32/model.pkl")


@pytest.fixture(scope="session")
def sg3():
    """The StyleGAN3-T 32 px fixture model (input transform, no noise), loaded once."""
    from explorer.engine import load_model

    return load_model(fixtures_dir() / "nvidia/stylegan3-t-32/model.pkl")
