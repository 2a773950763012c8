"""The heap setting of `explorer.engine.cpu_heap`: big tensors come from glibc's heap, also on a worker
thread, and stay there once freed. Each case runs in its own process, as the setting is process-wide."""

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is for glibc only")

MB = 1 << 20
TENSOR_MB = 96  # above glibc's largest mmap threshold (32 MB): by default always a fresh mmap

# On a worker thread, as the window's engine allocates: mallinfo2's hblkhd counts the bytes in
# mmap-ed blocks, arena the main heap's size.
PROBE = f"""
import ctypes, json, threading
import torch
from explorer.engine.cpu_heap import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
kept = keep_freed_memory()
out = {{}}

def work():
    before = libc.mallinfo2()
    x = torch.ones({TENSOR_MB} * 2**20 // 4)
    during = libc.mallinfo2()
    del x
    after = libc.mallinfo2()
    out.update(kept=kept, mmapped=during.hblkhd - before.hblkhd, heap_kept=after.arena - before.arena)

t = threading.Thread(target=work)
t.start()
t.join()
print(json.dumps(out))
"""


def probe(**env: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_freed_tensors_stay_in_the_heap():
    r = probe(EXPLORER_SYSTEM_MALLOC="0")
    assert r["kept"] is True
    assert r["mmapped"] < MB  # not a fresh mapping ...
    assert r["heap_kept"] >= TENSOR_MB * MB  # ... and still the process's after the tensor is gone


def test_system_malloc_leaves_glibc_defaults():
    r = probe(EXPLORER_SYSTEM_MALLOC="1")
    assert r["kept"] is False
    assert r["mmapped"] >= TENSOR_MB * MB
    assert r["heap_kept"] < TENSOR_MB * MB
