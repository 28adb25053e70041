"""Big arrays in memory maps of their own (scenetext.mapped): off the heap, unmapped when freed."""

import io
import mmap
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from scenetext import mapped
from scenetext.imageio import decode_bytes


def _owner(array: np.ndarray):
    """What finally holds ``array``'s memory (an ``mmap`` for a mapped array)."""
    while isinstance(array, np.ndarray):
        array = array.base
    return array.obj if isinstance(array, memoryview) else array


def test_big_arrays_get_a_map_of_their_own_and_small_ones_do_not():
    big = mapped.empty((720, 1280, 3), np.uint8)
    assert isinstance(_owner(big), mmap.mmap)
    assert big.shape == (720, 1280, 3) and big.dtype == np.uint8
    assert big.flags.c_contiguous and big.flags.writeable
    big[:] = 7
    assert int(big.sum()) == 7 * big.size
    floats = mapped.empty((512, 1024), np.float32)
    assert isinstance(_owner(floats), mmap.mmap) and floats.shape == (512, 1024) and floats.dtype == np.float32
    small = mapped.empty((100, 100, 3))
    assert not isinstance(_owner(small), mmap.mmap) and small.shape == (100, 100, 3)
    assert mapped.empty((0, 3)).shape == (0, 3)


def test_a_refused_map_is_a_memory_error_as_for_numpy(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(mapped.mmap, "mmap", refuse)
    with pytest.raises(MemoryError, match="cannot map"):
        mapped.empty((720, 1280, 3))
    assert mapped.empty((10, 10)).shape == (10, 10)  # small arrays never ask for a map


CHILD = """
import sys
import numpy as np
from scenetext import mapped

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

make = mapped.empty if sys.argv[1] == "mapped" else np.empty
np.ones(6 << 20, np.uint8)           # freed at once: glibc now serves buffers this big from its heap
base = rss_mb()
arrays, pins = [], []
for k in range(30):                  # 30 x 6 MB arrays, each followed by a small live object
    arrays.append(make((6 << 20,), np.uint8))
    arrays[-1][:] = k
    pins.append(bytearray(64 << 10))
view = arrays[7][:1000]
del arrays
print(rss_mb() - base, int(view.min()), int(view.max()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmRSS from /proc")
@pytest.mark.parametrize("kind", ["mapped", "heap"])
def test_freed_mapped_arrays_go_back_to_the_system_at_once_and_views_keep_theirs(kind):
    out = subprocess.run([sys.executable, "-c", CHILD, kind], capture_output=True, text=True, check=True)
    held_mb, low, high = out.stdout.split()
    assert (low, high) == ("7", "7")  # the view still reads its array's pixels
    if kind == "mapped":
        assert float(held_mb) < 20  # the view's 6 MB and the ~2 MB of pins, not the 180 MB freed
    else:
        assert float(held_mb) > 150  # the same arrays from the heap, pinned by the small objects


def test_decoded_photos_live_in_their_own_map_with_the_same_pixels():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    rgb = decode_bytes(buffer.getvalue(), "photo.png").rgb
    assert isinstance(_owner(rgb), mmap.mmap)
    np.testing.assert_array_equal(rgb, pixels)
