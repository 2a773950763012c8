"""The engine worker (latest-wins mailbox, jobs, errors, stamps), seed blending, the default model,
and the import boundaries between the engine and the widgets."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.engine import load_model
from explorer.engine.default_model import (
    ASSETS_DIR,
    BUNDLED_MODELS,
    ENV_PATH,
    TRAINED,
    build_default_checkpoint,
    default_model_path,
    ensure_default_model,
)
from explorer.engine.render import RenderRequest, blend_seeds, render
from explorer.engine.worker import FrameRendered, JobFailed, ModelLoaded, RenderWorker, describe_error

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def default_model(tmp_path_factory) -> Path:
    return ensure_default_model(tmp_path_factory.mktemp("models") / "default.pt")


class Events:
    """Collects worker events (delivered on the worker thread) and waits for them."""

    def __init__(self):
        self.items: list = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def __call__(self, event) -> None:
        with self._cond:
            self.items.append(event)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def wait(self, predicate, timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.items):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting; events so far: {self.items}")
                self._cond.wait(left)
            return list(self.items)

    def of(self, kind) -> list:
        with self._cond:
            return [e for e in self.items if isinstance(e, kind)]


class GatedRender:
    """The real render, but each call waits until the test opens the gate: makes 'busy' deterministic."""

    def __init__(self):
        self.gate = threading.Event()
        self.started = threading.Event()
        self.requests: list[RenderRequest] = []

    def __call__(self, model, request):
        self.requests.append(request)
        self.started.set()
        assert self.gate.wait(30), "gate never opened"
        return render(model, request)


@pytest.fixture
def worker_factory():
    workers: list[RenderWorker] = []

    def make(**kwargs) -> tuple[RenderWorker, Events]:
        events = Events()
        worker = RenderWorker(events, device="cpu", **kwargs)
        workers.append(worker)
        return worker, events

    yield make
    for w in workers:
        w.close()


def frames(events: Events) -> list[FrameRendered]:
    return events.of(FrameRendered)


# -- boundaries --------------------------------------------------------------------------------------


def test_engine_imports_no_qt():
    code = ("import sys, explorer.engine, explorer.engine.worker, explorer.engine.render, "
            "explorer.engine.default_model, explorer.cli\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', "
            "'PyQt6', 'pyqtgraph'))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"explorer.engine imported Qt modules: {out.stdout.strip()}"


def test_widgets_import_no_torch():
    for path in sorted((ROOT / "explorer" / "widgets").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "torch" for n in names), f"{path.name} imports torch"


# -- seed blending -----------------------------------------------------------------------------------


def test_blend_seeds_whole_position_is_one_seed():
    assert blend_seeds(7.0, 0.0) == [(7, 1.0)]
    assert blend_seeds(7.0, 2.0) == [(207, 1.0)]


def test_blend_seeds_bilinear_weights():
    seeds = dict(blend_seeds(3.25, 1.5))
    assert seeds == pytest.approx({103: 0.375, 104: 0.125, 203: 0.375, 204: 0.125})
    assert sum(seeds.values()) == pytest.approx(1.0)


def test_blend_seeds_wraps_negative_positions_into_valid_seeds():
    seeds = blend_seeds(-0.5, 0.0)
    assert [s for s, _ in seeds] == [2**32 - 1, 0]
    assert all(0 <= s < 2**32 for s, _ in seeds)


# -- the default model -------------------------------------------------------------------------------


def test_default_model_is_deterministic_and_loads(default_model):
    a = build_default_checkpoint().generator.state_dict()
    b = build_default_checkpoint().generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = load_model(default_model)
    assert (model.info.family, model.info.resolution, model.info.source_format) == ("stylegan2", 64, "latent-explorer")
    assert any("untrained" in n for n in model.info.notes)
    image = render(model, RenderRequest()).image
    assert image.shape == (64, 64, 3) and image.std() > 10  # a pattern, not a flat field


def test_default_model_path_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "sub" / "m.pt"))
    assert default_model_path() == tmp_path / "sub" / "m.pt"
    placeholder = BUNDLED_MODELS[-1]
    assert placeholder.path() == tmp_path / "sub" / "m.pt"
    before = torch.get_rng_state()
    assert placeholder.prepare() == tmp_path / "sub" / "m.pt"
    assert (tmp_path / "sub" / "m.pt").is_file()
    assert torch.equal(torch.get_rng_state(), before), "building the default model must not touch the global RNG"


def test_trained_models_ship_first_load_and_fit_the_size_limit():
    trained = [m for m in BUNDLED_MODELS if m.path().parent == ASSETS_DIR]
    assert [m.label for m in trained] == [label for label, *_ in TRAINED], "a trained model is missing in assets/"
    assert BUNDLED_MODELS[: len(trained)] == tuple(trained), "trained models come before the placeholder"
    assert sum(m.path().stat().st_size for m in trained) <= 40 * 2**20
    for entry in trained:
        model = load_model(entry.prepare())
        family = entry.label.split()[0].lower()
        assert (model.info.family.replace("-", ""), model.info.resolution) == (family.replace("-", ""), 64)
        assert any("kimg" in n for n in model.info.notes), "the notes say how long it trained"
        a, b = (render(model, RenderRequest(seeds=[(seed, 1.0)])).image.astype(float) for seed in (0, 1))
        assert a.shape == (64, 64, 3) and a.std() > 10 and np.abs(a - b).mean() > 10  # pictures, and seeds differ
        request = RenderRequest.from_dict(entry.start)
        start = render(model, request).image
        others = [render(model, replace(request, seeds=[(seed, 1.0)])).image.mean() for seed in range(16)]
        # Picked by eye for a clear face; this guards only against a dark one (the lower quarter of seeds 0-15).
        assert start.mean() > np.percentile(others, 25), "the first picture is a dark one"


# -- the worker --------------------------------------------------------------------------------------


def test_load_then_render_matches_render(worker_factory, default_model):
    worker, events = worker_factory()
    load_stamp = worker.load(default_model)
    events.wait(lambda ev: any(isinstance(e, ModelLoaded) for e in ev))
    loaded = events.of(ModelLoaded)[0]
    assert loaded.stamp == load_stamp and loaded.info.resolution == 64
    assert (loaded.device, loaded.kernels) == ("cpu", "fast")
    req = RenderRequest(seeds=[(5, 1.0)], truncation_psi=0.7)
    stamp = worker.submit(req)
    events.wait(lambda ev: frames(events))
    frame = frames(events)[0]
    assert frame.stamp == stamp > load_stamp
    assert frame.image.dtype == np.uint8 and frame.image.shape == (64, 64, 3)
    # The same pixels as a direct render, up to rounding: the worker runs torch with fewer CPU threads,
    # which can change the summation order and so the last bit of a float.
    diff = np.abs(frame.image.astype(int) - render(load_model(default_model), req).image.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert events.threads == {"explorer-engine"}


def test_latest_request_wins(worker_factory, default_model):
    gated = GatedRender()
    worker, events = worker_factory(render_fn=gated)
    gated.gate.set()
    worker.load(default_model)
    events.wait(lambda ev: events.of(ModelLoaded))
    gated.gate.clear()
    gated.started.clear()
    first = worker.submit(RenderRequest(seeds=[(0, 1.0)]))
    assert gated.started.wait(10)
    stamps = [worker.submit(RenderRequest(seeds=[(s, 1.0)])) for s in range(1, 20)]
    assert worker.busy
    gated.gate.set()
    events.wait(lambda ev: any(getattr(e, "stamp", None) == stamps[-1] for e in ev))
    assert [f.stamp for f in frames(events)] == [first, stamps[-1]]
    assert frames(events)[-1].request.seeds == [(19, 1.0)]
    deadline = time.monotonic() + 5
    while worker.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not worker.busy


def test_submitted_request_is_copied(worker_factory, default_model):
    worker, events = worker_factory()
    worker.load(default_model)
    req = RenderRequest(seeds=[(3, 1.0)])
    worker.submit(req)
    req.seeds = [(4, 1.0)]  # the GUI keeps editing its request; the engine must not see it change
    events.wait(lambda ev: frames(events))
    assert frames(events)[0].request.seeds == [(3, 1.0)]


def test_bad_file_reports_and_keeps_the_previous_model(worker_factory, default_model, tmp_path):
    worker, events = worker_factory()
    worker.load(default_model)
    events.wait(lambda ev: events.of(ModelLoaded))
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"this is not a checkpoint")
    stamp = worker.load(bad)
    events.wait(lambda ev: events.of(JobFailed))
    failure = events.of(JobFailed)[0]
    assert (failure.stamp, failure.job) == (stamp, "load")
    assert "bad.pkl" in failure.message and "not a checkpoint" in failure.message
    worker.submit(RenderRequest())
    events.wait(lambda ev: frames(events))
    assert worker.is_alive()


def test_render_error_is_reported_and_the_worker_goes_on(worker_factory, default_model):
    worker, events = worker_factory()
    worker.load(default_model)
    stamp = worker.submit(RenderRequest(mix_seed=1, mix_layers=[99]))
    events.wait(lambda ev: events.of(JobFailed))
    failure = events.of(JobFailed)[0]
    assert (failure.stamp, failure.job) == (stamp, "render")
    assert "outside" in failure.message
    worker.submit(RenderRequest())
    events.wait(lambda ev: frames(events))


def test_render_before_any_model_is_an_error(worker_factory):
    worker, events = worker_factory()
    worker.submit(RenderRequest())
    events.wait(lambda ev: events.of(JobFailed))
    assert "no model" in events.of(JobFailed)[0].message


def test_waiting_request_is_dropped_when_a_new_model_loads(worker_factory, default_model):
    gated = GatedRender()
    worker, events = worker_factory(render_fn=gated)
    gated.gate.set()
    worker.load(default_model)
    events.wait(lambda ev: events.of(ModelLoaded))
    gated.gate.clear()
    gated.started.clear()
    first = worker.submit(RenderRequest())
    assert gated.started.wait(10)
    worker.submit(RenderRequest(seeds=[(1, 1.0)]))  # made for the model about to be replaced
    load = worker.load(default_model)
    gated.gate.set()
    events.wait(lambda ev: len(events.of(ModelLoaded)) == 2)
    time.sleep(0.2)
    assert [f.stamp for f in frames(events)] == [first]
    assert events.of(ModelLoaded)[-1].stamp == load


def test_prepare_runs_on_the_worker_thread(worker_factory, default_model):
    seen = []
    worker, events = worker_factory()
    worker.load(default_model, prepare=lambda: seen.append(threading.current_thread().name))
    events.wait(lambda ev: events.of(ModelLoaded))
    assert seen == ["explorer-engine"]


def test_a_failing_listener_does_not_stop_the_worker(default_model, capsys):
    calls = []

    def listener(event):
        calls.append(event)
        raise RuntimeError("listener bug")

    worker = RenderWorker(listener, device="cpu")
    try:
        worker.load(default_model)
        worker.submit(RenderRequest())
        deadline = time.monotonic() + 30
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [type(c) for c in calls] == [ModelLoaded, FrameRendered]
        assert worker.is_alive()
    finally:
        worker.close()
    assert "listener bug" in capsys.readouterr().err


def test_close_stops_the_thread_and_events(worker_factory, default_model):
    gated = GatedRender()
    worker, events = worker_factory(render_fn=gated)
    worker.load(default_model)  # warm-up blocks in the gate
    assert gated.started.wait(10)
    threading.Timer(0.2, gated.gate.set).start()
    worker.close()
    assert not worker.is_alive()
    assert events.items == []  # the load finished after close: nothing is delivered


def test_out_of_memory_message():
    msg = describe_error(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert msg.startswith("out of memory on the device") and "2.00 GiB" in msg
