"""`explorer bench`: rows per configuration and implementation, a table, and JSON."""

from __future__ import annotations

import json

from explorer.cli import main
from explorer.engine import bench
from explorer.engine.cpu_heap import freed_memory_kept

TINY = ("stylegan3-t", dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                            channel_base=64, channel_max=8))


def test_bench_rows_table_and_json(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(bench.CONFIGS, "tiny", TINY)
    out = tmp_path / "bench.json"
    assert main(["bench", "--configs", "tiny", "--repeats", "2", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["config", "reference", "s", "fast", "s", "speed-up"]
    assert table.splitlines()[1].startswith("tiny")
    data = json.loads(out.read_text())
    assert data["heap_kept"] is freed_memory_kept()
    rows = {r["impl"]: r for r in data["rows"]}
    assert set(rows) == {"reference", "fast"}
    assert all(len(r["seconds"]) == 2 and r["median"] > 0 for r in rows.values())


def test_bench_rejects_unknown_config(capsys):
    assert main(["bench", "--configs", "nope"]) == 1
    assert "choose configs from" in capsys.readouterr().err
