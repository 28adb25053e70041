"""Arrays in memory of their own: handed back to the system the moment they are freed.

A folder run holds a few decoded photos (a batch, the next ones being decoded, the last ones
being written) while the models allocate and free their feature maps on the same heap. The
photos live longer than the feature maps around them, so each one pins a stretch of heap
between freed ones: the heap keeps growing in holes it cannot hand back, and the process's
peak rises over the run.

:func:`empty` gives a big array a memory map of its own instead (``mmap`` of anonymous memory,
no file): it never sits in the heap, and freeing it unmaps it at once. It changes no allocator
setting, so nothing else in the process is affected. Mapping fresh pages costs about a
millisecond per photo (1280x720), so only arrays of at least :data:`MIN_BYTES` take this path;
smaller ones come from numpy's allocator as usual.
"""

from __future__ import annotations

import mmap
import operator

import numpy as np

__all__ = ["MIN_BYTES", "empty"]

#: Arrays of fewer bytes than this come from numpy's allocator (a map's cost is not worth it).
MIN_BYTES = 1 << 20


def empty(shape: tuple[int, ...], dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """An uninitialised, writable, C-contiguous array like ``np.empty(shape, dtype)``, in an
    anonymous memory map of its own when it takes at least :data:`MIN_BYTES`. The map is
    unmapped when the array and every view of it are gone."""
    shape = tuple(operator.index(n) for n in shape)
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    size = count * dtype.itemsize
    if size < MIN_BYTES:
        return np.empty(shape, dtype)
    return np.frombuffer(_anonymous_map(size), dtype, count=count).reshape(shape)


def _anonymous_map(size: int) -> mmap.mmap:
    """``size`` bytes of private anonymous memory; on Linux populated up front (one call maps
    every page, about half the cost of faulting them in one by one). Raises MemoryError, as
    numpy does, when the system refuses the map."""
    try:
        if not hasattr(mmap, "MAP_PRIVATE"):  # Windows: anonymous maps take no flags
            return mmap.mmap(-1, size)
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0))
    except OSError as err:  # no memory for it: what np.empty would raise, not an I/O error
        raise MemoryError(f"cannot map {size} bytes: {err.strerror or err}") from None
