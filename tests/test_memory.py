"""The process-wide memory settings that keep a long reading run's memory flat (scenetext.memory):
only when asked, and a user's own setting wins."""

import os
import subprocess
import sys

import pytest

from scenetext import memory

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


def test_bound_kernel_cache_sets_onednn_capacity_unless_set(monkeypatch):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    assert memory.bound_kernel_cache(32) == 32
    assert memory.os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "32"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "500")
    assert memory.bound_kernel_cache() == 500  # the user's value is kept
    with pytest.raises(ValueError):
        memory.bound_kernel_cache(-1)


def test_the_library_leaves_its_settings_alone_and_the_command_line_sets_them():
    code = ("import os, scenetext.reader, scenetext.detection.predictor; scenetext.reader.Reader(); "
            "print(os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'), os.environ.get('THP_MEM_ALLOC_ENABLE'))")
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "THP_MEM_ALLOC_ENABLE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["None", "None"]
    code = ("import os; from scenetext.cli import main; import click.testing as t; "
            "r = t.CliRunner().invoke(main, ['models']); "
            "print(r.exit_code, os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'), os.environ.get('THP_MEM_ALLOC_ENABLE'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split()[-3:] == ["0", str(memory.KERNEL_CACHE_ENTRIES),
                                       "1" if sys.platform.startswith("linux") else "None"]


THP_CHILD = """
import os, sys
from scenetext.memory import tensor_huge_pages
if sys.argv[1] == "off":
    os.environ["THP_MEM_ALLOC_ENABLE"] = "0"   # a user's own setting wins
on = tensor_huge_pages()
import torch
print(on, tensor_huge_pages(), all(torch.empty(n << 20, dtype=torch.uint8).data_ptr() % 4096 == 0 for n in (3, 4, 5, 7)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torch's transparent huge page allocation")
@pytest.mark.parametrize("setting", ["on", "off"])
def test_tensor_huge_pages_puts_big_tensors_on_page_boundaries_unless_the_user_said_no(setting):
    out = subprocess.run([sys.executable, "-c", THP_CHILD, setting], capture_output=True, text=True, check=True)
    on, after_import, aligned = out.stdout.split()
    assert on == aligned == ("True" if setting == "on" else "False")  # torch's own 64-byte alignment otherwise
    assert after_import == "False"  # once torch is imported it may have read the variable already


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator")
def test_bound_arenas_applies_and_refuses_nonsense():
    code = "from scenetext.memory import bound_arenas; print(bound_arenas(1))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    with pytest.raises(ValueError):
        memory.bound_arenas(0)


def test_a_reader_trims_the_heap_every_few_images_not_after_every_photo(monkeypatch):
    from helpers import BlobDetector, InkReader, dark_boxes_image

    from scenetext import reader as reader_module
    from scenetext.reader import Reader

    calls = []
    monkeypatch.setattr(memory, "trim_heap", lambda: calls.append(1) or True)
    image = dark_boxes_image()
    one_by_one = Reader(BlobDetector(), InkReader(), min_confidence=0)
    for _ in range(2 * reader_module.TRIM_EVERY_IMAGES):
        one_by_one.read(image)
    assert len(calls) == 2  # once per TRIM_EVERY_IMAGES photos read one at a time
    calls.clear()
    batch = [reader_module.load(image)] * reader_module.TRIM_EVERY_IMAGES
    Reader(BlobDetector(), InkReader(), min_confidence=0).read_loaded(batch)
    assert len(calls) == 2  # a whole batch: after the detector's pass and after the batch
    calls.clear()
    Reader(BlobDetector(), InkReader(), min_confidence=0, trim_memory=False).read_loaded(batch)
    assert calls == []
