"""Keep a long-running reading process's memory flat.

By default the :class:`~scenetext.reader.Reader` only hands the heap's free pages back to the
system once every :data:`~scenetext.reader.TRIM_EVERY_IMAGES` images read (after each batch of
that many, or every that many photos read one at a time), and for a batch of several also after
the detector's pass over them (:func:`trim_heap`, glibc's ``malloc_trim``): it changes no
setting, costs a few milliseconds each time, and keeps the resident size near what one batch
needs. :func:`bound_heap` is the stronger, opt-in alternative described below.

The pipeline also keeps what outlives the models' buffers out of their way, so the heap they
share fragments less: decoded photos live in memory maps of their own (:mod:`scenetext.mapped`),
annotated copies are encoded by Pillow from the drawing itself (no array or BGR copy of it), and
the recogniser runs its widest batch first (each later batch fits where an earlier one was) and
keeps copies of each crop's outputs, not views that would hold a whole batch's. Together with
recogniser batches bounded at 8,192 columns these took the 200-photo peak of ``scenetext run``
from 470-500 to 428-452 MB (median 437 over 15 runs) at the same images per second
(``python benchmarks/bench.py folder``).

Reading photo after photo allocates and frees many buffers of a few to a few tens of MB (the
detector's feature maps, batches of crops). glibc's allocator raises its mmap threshold each
time such a buffer is freed, up to 32 MB, after which these buffers come from the heap, which
fragments and is not given back: over 100 photos the resident size of the pipeline climbed from
~450 to ~900 MB. Fixing the threshold at 4 MB makes big buffers go straight back to the system
when freed; the pipeline then stays near 350 MB (peak ~400 MB with the detector at short side
720 and recogniser batches bounded by padded size). The price is speed: each big buffer is mapped and zero-filled afresh, which took folder
throughput from ~13 to ~8 photos/s on 2 cores (``make bench``). The median time per photo stays
far inside its target, so memory wins by default.

This changes a process-wide allocator setting, so it is done only when asked
(``Reader(bound_memory=True)``), once, and only on glibc.

The other thing that grows with a long run is oneDNN's cache of compiled kernels (oneDNN is
torch's CPU kernel library). Every new input shape (each batch of crops has its own width and
count, each photo size its own detector shapes) compiles new kernels, kept for reuse: about
1 MB per batch shape of the recogniser, up to oneDNN's default of 1,024 cached kernels. Over 200
photos it grew the peak by ~70 MB. :func:`bound_kernel_cache` bounds it (the command
line does, at :data:`KERNEL_CACHE_ENTRIES`, which measured no slower than the default); like
any process-wide setting, the library leaves it to its caller.

Two more settings keep a process that owns itself (the command line) lower at no measurable cost,
because neither returns memory to the system more often (which is what costs speed: every freed
page handed back is faulted in and zero-filled again by the next photo):

* :func:`bound_arenas` gives glibc one heap for all threads instead of one per thread (up to
  eight per core). Images are decoded and outputs written on worker threads beside the models;
  each thread's own heap kept its free pages apart from the others', so they were not reused.
* :func:`tensor_huge_pages` asks torch to start its big tensors on page boundaries and mark
  those of 2 MB and more for transparent huge pages (torch's ``THP_MEM_ALLOC_ENABLE``): the
  big, short-lived feature maps then occupy whole pages and fewer of them.

Together they lowered the 200-photo peak of ``scenetext run`` from ~620 to ~500-520 MB (each
alone: ~550) at the same images per second (``make bench``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading

__all__ = ["KERNEL_CACHE_ENTRIES", "MMAP_THRESHOLD", "bound_arenas", "bound_heap", "bound_kernel_cache",
           "tensor_huge_pages", "trim_heap"]

#: Compiled kernels oneDNN keeps for reuse in a process that called :func:`bound_kernel_cache`.
KERNEL_CACHE_ENTRIES = 64
_KERNEL_CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"

#: Allocations at least this big are served by mmap (and returned to the system when freed).
MMAP_THRESHOLD = 4 << 20
_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_M_ARENA_MAX = -8
_THP_VARIABLE = "THP_MEM_ALLOC_ENABLE"
_done: bool | None = None
_lock = threading.Lock()


def bound_heap(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes, once per process.

    Returns True when the setting is in force (now or from an earlier call), False where it does
    not apply (not Linux/glibc) or the call failed.
    """
    global _done
    with _lock:
        if _done is None:
            _done = _mallopt(_M_MMAP_THRESHOLD, threshold)
        return _done


@functools.lru_cache(maxsize=None)
def _libc_function(name: str):
    """The C library's function ``name`` (looked up once), or ``None`` where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), name)  # the C library the interpreter runs on
    except (OSError, AttributeError):  # musl and other libcs without it
        return None


def bound_kernel_cache(entries: int = KERNEL_CACHE_ENTRIES) -> int:
    """Bound oneDNN's cache of compiled kernels to ``entries`` for this process (and the processes
    it starts), through oneDNN's ``ONEDNN_PRIMITIVE_CACHE_CAPACITY``; a value already set there is
    kept. oneDNN reads it when it compiles its first kernel, so call this before any model runs.
    Returns the bound in force."""
    if entries < 0:
        raise ValueError("entries must be at least 0")
    value = os.environ.setdefault(_KERNEL_CACHE_VARIABLE, str(int(entries)))
    try:
        return int(value)
    except ValueError:
        return entries


def bound_arenas(arenas: int = 1) -> bool:
    """Let glibc's allocator keep at most ``arenas`` heaps for all threads of this process
    (``mallopt(M_ARENA_MAX)``). Threads started later share them; call it before starting
    threads. Returns False where it does not apply (not Linux/glibc) or the call failed."""
    if arenas < 1:
        raise ValueError("arenas must be at least 1")
    return _mallopt(_M_ARENA_MAX, arenas)


def tensor_huge_pages() -> bool:
    """Ask torch to start its big tensors on page boundaries and mark those of 2 MB and more for
    transparent huge pages (torch's ``THP_MEM_ALLOC_ENABLE``; a value already set there is kept).

    torch reads the variable at its first tensor allocation, so call this before torch is
    imported. Returns whether it is on for this process: False where it was set off, where torch
    was already imported (it may have read the variable), or off Linux. A kernel with transparent
    huge pages disabled ignores the marking; the page alignment still applies."""
    if not sys.platform.startswith("linux"):
        return False
    value = os.environ.setdefault(_THP_VARIABLE, "1")
    return value == "1" and "torch" not in sys.modules


def trim_heap() -> bool:
    """Give the heap's free pages back to the system (glibc ``malloc_trim(0)``); no setting is
    changed. Returns False where it does not apply."""
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True


def _mallopt(param: int, value: int) -> bool:
    """glibc ``mallopt(param, value)``; False where there is none or it fails."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(param, int(value)) == 1
