"""Robust image loading and atomic file writing.

``load_image`` turns anything image-like (a path, encoded bytes, a numpy array or a PIL image)
into one canonical form: an RGB ``uint8`` array of shape ``(H, W, 3)``. EXIF orientation is
applied, every Pillow mode is converted (alpha is composited over white, 16-bit and float
images are scaled to 8 bit), and every failure becomes an :class:`ImageLoadError` whose
one-line message names the file and the problem.

The ``atomic_*`` writers never leave a half-written file behind: they write a temporary file
in the target directory, fsync it and rename it over the target.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageLoadError",
    "atomic_save_image",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable_dir",
    "image_size",
    "is_image_path",
    "load_image",
]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image]

#: Default upper bound on width * height for :func:`load_image` (a 250-megapixel image
#: decodes to 750 MB of RGB).
DEFAULT_MAX_PIXELS = 250_000_000

#: Lower-case file extensions (with the dot) treated as images by the dataset readers.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

_EXIF_ORIENTATION_TAG = 0x0112
_SWAPPED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_TMP_SUFFIX = ".tmp"  # atomic writes go through ".<target>.<8 random characters>.tmp"
_LEFTOVER = re.compile(r"\.(.+)\.[a-z0-9_]{8}" + re.escape(_TMP_SUFFIX))
_NEW_FILE_MODE = 0o644

#: Decoded images are converted to RGB this many pixels at a time (see :func:`_pil_mode_to_rgb`).
_STRIP_PIXELS = 1 << 20

# Serialises the short windows in which Pillow's global decompression-bomb limit is lifted.
_PIXEL_LIMIT_LOCK = threading.Lock()


class ImageLoadError(Exception):
    """An image could not be loaded; the message is ``"<file>: <problem>"``."""

    def __init__(self, source: str | os.PathLike, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def is_image_path(path: str | os.PathLike) -> bool:
    """True when ``path`` has an image extension (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


# --------------------------------------------------------------------------- loading


def load_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load ``source`` as an RGB ``uint8`` array of shape ``(H, W, 3)``.

    ``source`` may be a path, encoded image bytes, a PIL image, or a numpy array (``HxW`` gray,
    ``HxWx1``, ``HxWx3`` RGB or ``HxWx4`` RGBA; ``uint8``, ``uint16``, ``bool`` or float in
    ``[0, 1]``). Images with more than ``max_pixels`` pixels are refused before decoding.
    The result is always a new array that the caller may modify. Decoding a file needs about
    the decoded image (Pillow keeps RGB at 4 bytes a pixel) plus the result at its peak.

    Raises:
        ImageLoadError: the file is missing, empty, not an image, corrupt or too large.
        TypeError: ``source`` is of an unsupported type.
    """
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_pixel_count((source.shape[1], source.shape[0]), "<array>", max_pixels)
        return _array_to_rgb(source, "<array>")
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, "<PIL image>", max_pixels, owned=False)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageLoadError("<bytes>", "empty file")
        return _decode(io.BytesIO(source), "<bytes>", max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with _open_file(path) as stream:
            return _decode(stream, str(path), max_pixels)
    raise TypeError(f"cannot load an image from {type(source).__name__}")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Return ``(width, height)`` as displayed, reading only the file header.

    Sizes are swapped for EXIF orientations 5-8 (rotated by 90 degrees), matching the shape
    :func:`load_image` returns. For PNG only an EXIF chunk stored before the pixel data is seen.
    """
    path = Path(path)
    with _open_file(path) as stream, _open_pil(stream, str(path)) as img:
        width, height = img.size
        if _exif_orientation(img) in _SWAPPED_ORIENTATIONS:
            return height, width
        return width, height


@contextlib.contextmanager
def _open_file(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading, turning the usual failures into :class:`ImageLoadError`."""
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(path, "is a directory, not a file") from None
    except OSError as err:
        raise ImageLoadError(path, f"cannot read file ({err.strerror or err})") from None
    with stream:
        if os.fstat(stream.fileno()).st_size == 0:
            raise ImageLoadError(path, "empty file")
        yield stream


@contextlib.contextmanager
def _pillow_limit_lifted() -> Iterator[None]:
    """Disable Pillow's decompression-bomb check; callers apply their own ``max_pixels``.

    Only header parsing runs inside this window, so holding the lock is cheap.
    """
    with _PIXEL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _open_pil(stream: BinaryIO, name: str) -> Image.Image:
    """Parse the image header of ``stream`` (lazy: pixels are not decoded yet)."""
    with _pillow_limit_lifted():
        try:
            return Image.open(stream)
        except UnidentifiedImageError:
            raise ImageLoadError(name, "not an image or unsupported format") from None
        except Exception as err:  # noqa: BLE001 - any header failure means "cannot identify"
            raise ImageLoadError(name, f"not an image or unsupported format ({err})") from None


def _decode(stream: BinaryIO, name: str, max_pixels: int) -> np.ndarray:
    """Decode an encoded image from ``stream`` into RGB ``uint8``."""
    with _open_pil(stream, name) as img:
        return _pil_to_rgb(img, name, max_pixels, owned=True)


def _check_pixel_count(size: tuple[int, int], name: str, max_pixels: int) -> None:
    """Raise :class:`ImageLoadError` if ``width * height`` exceeds ``max_pixels``."""
    width, height = size
    if width * height > max_pixels:
        raise ImageLoadError(name, f"image too large ({width}\u00d7{height})")


def _pil_to_rgb(img: Image.Image, name: str, max_pixels: int, owned: bool) -> np.ndarray:
    """Check size, decode, apply EXIF orientation and convert a PIL image to RGB ``uint8``.

    ``owned``: ``img`` was opened here, so it may be turned upright in place (a caller's image
    is left as it is).
    """
    _check_pixel_count(img.size, name, max_pixels)
    try:
        img.load()
    except MemoryError:
        raise
    except Image.DecompressionBombError:
        raise ImageLoadError(name, "image too large (decompression bomb)") from None
    except Exception:  # noqa: BLE001 - decoders raise OSError, ValueError, SyntaxError, ...
        raise ImageLoadError(name, "truncated or corrupt image") from None
    try:
        img = _upright(img, owned)
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not lose the pixels
        pass
    try:
        return _pil_mode_to_rgb(img, name)
    except (ValueError, OSError) as err:
        raise ImageLoadError(name, f"unsupported image mode {img.mode} ({err})") from None


def _upright(img: Image.Image, in_place: bool) -> Image.Image:
    """``img`` turned by its EXIF orientation: in place, or as a copy when it needs turning."""
    if in_place:
        ImageOps.exif_transpose(img, in_place=True)
    elif img.getexif().get(_EXIF_ORIENTATION_TAG, 1) != 1:
        img = ImageOps.exif_transpose(img)
    return img


def _pil_mode_to_rgb(img: Image.Image, name: str) -> np.ndarray:
    """Convert a decoded PIL image of any mode to an RGB ``uint8`` array.

    The image is converted in strips of rows written straight into the result, so converting
    needs little memory beyond the decoded image and the result (converting it whole would hold
    a converted copy, its bytes and intermediate arrays as well). Float images are converted
    whole: their scaling depends on the whole image's range.
    """
    if img.mode == "F":
        return _array_to_rgb(np.asarray(img, dtype=np.float32), name)
    width, height = img.size
    rgb = np.empty((height, width, 3), np.uint8)
    rows = max(1, _STRIP_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        rgb[top:top + rows] = _pil_strip_to_rgb(img.crop((0, top, width, min(top + rows, height))), name)
    return rgb


def _pil_strip_to_rgb(strip: Image.Image, name: str) -> np.ndarray:
    """Convert a strip of a decoded PIL image (any mode but ``F``) to RGB ``uint8``."""
    if strip.mode in _SIXTEEN_BIT_MODES:
        return _array_to_rgb(np.clip(np.asarray(strip), 0, 65535).astype(np.uint16), name)
    if strip.has_transparency_data:
        return _array_to_rgb(np.asarray(strip.convert("RGBA")), name)
    return np.asarray(strip.convert("RGB"))


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    """Convert a gray, RGB or RGBA array of a supported dtype to a new RGB ``uint8`` array."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    valid = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
    if not valid or array.size == 0:
        raise ImageLoadError(name, f"unsupported array shape {array.shape}")
    array = _to_uint8(array, name)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.shape[2] == 4:
        return _composite_over_white(array)
    return np.array(array, dtype=np.uint8, order="C")


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    """Scale ``uint16`` (full range), ``bool`` and float (``[0, 1]``) arrays to ``uint8``."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return cv2.convertScaleAbs(array, alpha=1 / 257)  # one rounding pass: round(v / 257)
    if np.issubdtype(array.dtype, np.floating):
        values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        if values.max() <= 1.0:
            values = values * 255.0
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    raise ImageLoadError(name, f"unsupported array dtype {array.dtype}")


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """Blend an RGBA ``uint8`` array over a white background."""
    rgb = rgba[:, :, :3].astype(np.uint16)
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    blended = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def _exif_orientation(img: Image.Image) -> int:
    """EXIF orientation (1-8) without decoding pixels; 1 when absent or unreadable."""
    if img.format == "PNG" and "exif" not in img.info:
        return 1  # PngImageFile.getexif() would decode the whole image to look further
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - malformed EXIF is treated as "no orientation"
        return 1


# --------------------------------------------------------------------------- writing


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent directories.

    The data goes to a temporary file in the same directory, which is flushed, fsynced and
    then renamed over ``path``; readers see either the old or the new content, never a mix.
    The temporary file is removed on failure. An existing file keeps its permission bits;
    a new one gets ``rw-r--r--``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else _NEW_FILE_MODE
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX, delete=False)
    try:
        with tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, mode)
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise


def leftover_target(name: str) -> str | None:
    """The file name a temporary file called ``name``, left by an interrupted atomic write
    (``.<target>.<random>.tmp``), was meant to become; None for any other name."""
    match = _LEFTOVER.fullmatch(name)
    return match.group(1) if match else None


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` atomically (see :func:`atomic_write_bytes`); newlines are not translated."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_save_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 90) -> None:
    """Encode an RGB (or gray, or RGBA) ``uint8`` array by ``path``'s extension and write it atomically.

    ``quality`` (0-100) applies to JPEG and WebP.

    Raises:
        ValueError: unsupported extension, array shape or dtype, or encoding failure.
    """
    path = Path(path)
    extension = path.suffix.lower()
    if extension not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: unsupported image extension {path.suffix!r}")
    ok, encoded = cv2.imencode(extension, _rgb_to_bgr(rgb), _encode_params(extension, quality))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the image")
    atomic_write_bytes(path, encoded.tobytes())


def _rgb_to_bgr(image: np.ndarray) -> np.ndarray:
    """Reorder channels for OpenCV; gray arrays pass through."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {image.shape}")


def _encode_params(extension: str, quality: int) -> list[int]:
    """OpenCV ``imencode`` parameters for ``extension``."""
    if extension in (".jpg", ".jpeg"):
        return [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if extension == ".webp":
        return [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    return []


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create directory ``path`` if needed and check that files can be created in it.

    Returns the path. Raises :class:`OSError` with a message naming the directory otherwise.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OSError(f"{path}: exists and is not a directory") from None
    except OSError as err:
        raise OSError(f"{path}: cannot create directory ({err.strerror or err})") from None
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise OSError(f"{path}: directory is not writable ({err.strerror or err})") from None
    return path
