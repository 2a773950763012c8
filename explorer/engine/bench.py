"""`explorer bench`: seconds per image of the synthesis network, reference ops against fast paths.

The configurations are the published ones (random weights: speed does not depend on their values),
so results compare with the numbers people quote for NVIDIA's code. Medians over repeats, batch 1.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .cpu_heap import freed_memory_kept
from .networks import build_generator
from .ops.impl import force_reference_ops

# name -> (family, generator config), as NVIDIA's training configs build them.
CONFIGS: dict[str, tuple[str, dict]] = {
    "stylegan2-256-f": ("stylegan2", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                                          channel_base=16384, channel_max=512, num_fp16_res=4, conv_clamp=256)),
    "stylegan2-512": ("stylegan2", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=512, img_channels=3,
                                        channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256)),
    "stylegan2-1024": ("stylegan2", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                                         channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256)),
    "stylegan3-t-256": ("stylegan3-t", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                                            channel_base=32768, channel_max=512)),
    "stylegan3-r-256": ("stylegan3-r", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3,
                                            channel_base=65536, channel_max=1024, conv_kernel=1,
                                            use_radial_filters=True)),
    "stylegan3-t-1024": ("stylegan3-t", dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                                             channel_base=32768, channel_max=512)),
}
CPU_DEFAULT = ("stylegan2-256-f", "stylegan2-512", "stylegan3-t-256", "stylegan3-r-256")
IMPLS = ("reference", "fast")


@dataclass
class BenchRow:
    config: str
    impl: str
    device: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_config(config: str, impls=IMPLS, device: str = "cpu", repeats: int = 3, warmup: int = 1) -> list[BenchRow]:
    """Seconds per image of one configuration per implementation; the implementations take turns
    within each repeat, so a machine whose speed drifts affects them alike."""
    family, cfg = CONFIGS[config]
    dev = torch.device(device)
    torch.manual_seed(0)
    g = build_generator(family, cfg).eval().requires_grad_(False).to(dev)
    ws = g.mapping(torch.randn([1, g.z_dim], device=dev), None)
    rows = {impl: BenchRow(config=config, impl=impl, device=str(dev), seconds=[]) for impl in impls}
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                for impl in impls:
                    force_reference_ops(impl == "reference")
                    _sync(dev)
                    t0 = time.perf_counter()
                    g.synthesis(ws)
                    _sync(dev)
                    if i >= warmup:
                        rows[impl].seconds.append(time.perf_counter() - t0)
    finally:
        force_reference_ops(None)
    return list(rows.values())


def run(configs=CPU_DEFAULT, impls=IMPLS, device: str = "cpu", repeats: int = 3,
        report: Callable[[str], None] = print) -> list[BenchRow]:
    """Time every configuration with every implementation, reporting each row as it finishes."""
    rows = []
    for config in configs:
        for row in time_config(config, impls, device, repeats):
            rows.append(row)
            report(f"  {config:<18} {row.impl:<10} {row.median:8.3f} s")
    return rows


def table(rows: list[BenchRow]) -> str:
    """A plain-text table: median seconds per image per implementation, and the speed-up."""
    by_config: dict[str, dict[str, float]] = {}
    for r in rows:
        by_config.setdefault(r.config, {})[r.impl] = r.median
    lines = [f"{'config':<18} {'reference s':>12} {'fast s':>10} {'speed-up':>9}"]
    for config, m in by_config.items():
        ref, fast = m.get("reference"), m.get("fast")
        ratio = f"{ref / fast:8.2f}x" if ref and fast else ""
        lines.append(f"{config:<18} {ref if ref is not None else float('nan'):12.3f} "
                     f"{fast if fast is not None else float('nan'):10.3f} {ratio:>9}")
    return "\n".join(lines)


def write_json(rows: list[BenchRow], path: str | Path) -> None:
    data = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "heap_kept": freed_memory_kept(),
        "rows": [{**asdict(r), "median": r.median} for r in rows],
    }
    Path(path).write_text(json.dumps(data, indent=2))
