"""The allocator setting that keeps a long reading run's memory flat (scenetext.memory)."""

import subprocess
import sys

import pytest

CHILD = """
import sys
import numpy as np
from scenetext.memory import bound_heap

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

applied = bound_heap() if sys.argv[1] == "bound" else False
np.ones(6 << 20, np.uint8)          # freed at once: glibc would raise its mmap threshold here
base = rss_mb()
big, pins = [], []
for _ in range(30):                  # 30 x 6 MB buffers, each followed by a small live object
    big.append(np.ones(6 << 20, np.uint8))
    pins.append(bytearray(64 << 10))
del big
print(applied, rss_mb() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator setting")
def test_bound_heap_returns_freed_buffers_to_the_system():
    out = subprocess.run([sys.executable, "-c", CHILD, "bound"], capture_output=True, text=True, check=True)
    applied, grown_mb = out.stdout.split()
    assert applied == "True"
    assert float(grown_mb) < 20  # the 180 MB of freed buffers are not held (the pins are ~2 MB)


def test_bound_heap_is_applied_once():
    from scenetext.memory import bound_heap

    first = bound_heap()
    assert bound_heap() is first


TRIM_CHILD = """
import numpy as np
from scenetext.memory import trim_heap

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

np.ones(6 << 20, np.uint8)          # glibc now serves buffers this big from the heap
base = rss_mb()
big, pins = [], []
for _ in range(30):
    big.append(np.ones(6 << 20, np.uint8))
    pins.append(bytearray(64 << 10))
del big
held = rss_mb() - base
print(trim_heap(), held, rss_mb() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator")
def test_trim_heap_gives_freed_buffers_back_without_changing_settings():
    out = subprocess.run([sys.executable, "-c", TRIM_CHILD], capture_output=True, text=True, check=True)
    applied, held, after = out.stdout.split()
    assert applied == "True"
    assert float(held) > 100  # without the trim, the freed 180 MB stay resident (fragmented heap)
    assert float(after) < 20


def test_a_reader_changes_no_allocator_setting_by_default():
    code = ("import scenetext.memory as m, scenetext; scenetext.Reader(); "
            "print(m._done)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"  # bound_heap was never called
