"""Robust image loading and atomic file writing.

``load_image`` turns anything image-like (a path, encoded bytes, a numpy array or a PIL image)
into one canonical form: an RGB ``uint8`` array of shape ``(H, W, 3)``. EXIF orientation is
applied, every Pillow mode is converted (alpha is composited over white, 16-bit images are
scaled by their bit depth and float images from ``[0, 1]`` to 8 bit), and every failure
becomes an :class:`ImageLoadError` whose one-line message names the file and the problem.
Only regular files are opened: a FIFO, socket or device file is refused without being opened
(opening a FIFO would wait for a writer). A file of several pages or frames (multi-page TIFF,
animated GIF, WebP or PNG) gives its first page; :func:`decode_image` also says how many
pages it has.

The ``atomic_*`` writers never leave a half-written file behind: they write a temporary file
in the target directory, fsync it and rename it over the target.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO, Iterator, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import mapped

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageLoadError",
    "atomic_save_image",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_regular_file",
    "check_writable_dir",
    "DecodedImage",
    "decode_bytes",
    "decode_image",
    "encode_image",
    "encode_jpeg",
    "image_size",
    "is_image_path",
    "jpeg_comments",
    "load_image",
    "read_file_head",
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
#: Bit depths that integer data wider than 8 bits is taken to have (see :func:`bit_depth`).
_BIT_DEPTHS = (8, 10, 12, 14, 16)
#: What :func:`check_regular_file` calls the file types it refuses.
_FILE_TYPES = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
               (stat.S_ISBLK, "block device"))
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


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image: RGB ``uint8`` pixels of its first page, and how many pages the file has
    (a multi-page TIFF, an animated GIF, WebP or PNG; 1 for everything else)."""

    rgb: np.ndarray
    pages: int = 1


def load_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load ``source`` as an RGB ``uint8`` array of shape ``(H, W, 3)``.

    ``source`` may be a path, encoded image bytes, a PIL image, or a numpy array (``HxW`` gray,
    ``HxWx1``, ``HxWx3`` RGB or ``HxWx4`` RGBA; ``uint8``, ``uint16``, ``bool`` or float in
    ``[0, 1]``). Images with more than ``max_pixels`` pixels are refused before decoding.
    The result is always a new array that the caller may modify. Decoding a file needs about
    the decoded image (Pillow keeps RGB at 4 bytes a pixel) plus the result at its peak.

    Integer data wider than 8 bits (``uint16`` arrays, 16-bit and 32-bit integer Pillow modes)
    is scaled by the bit depth its largest value implies: values up to 255 are taken as 8-bit
    and kept, up to 1023 as 10-bit, 4095 as 12-bit, 16383 as 14-bit, anything larger as 16-bit
    (negative values count as 0, values above 65535 as 65535). So a 12-bit camera frame stored
    in ``uint16`` is not left nearly black, at the price that a 16-bit image whose brightest
    pixel is below 4096 is brightened as if it were 12-bit. Of a file with several pages only
    the first is decoded (:func:`decode_image` gives the page count).

    Raises:
        ImageLoadError: the file is missing, not a regular file, empty, not an image, corrupt
            or too large.
        TypeError: ``source`` is of an unsupported type.
    """
    return decode_image(source, max_pixels).rgb


def decode_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """:func:`load_image`, also telling how many pages the file has (only the first is decoded)."""
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_pixel_count((source.shape[1], source.shape[0]), "<array>", max_pixels)
        return DecodedImage(_array_to_rgb(source, "<array>"))
    if isinstance(source, Image.Image):
        return DecodedImage(_pil_to_rgb(source, "<PIL image>", max_pixels, owned=False), _page_count(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_bytes(source, "<bytes>", max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with _open_file(path) as stream:
            return _decode(stream, str(path), max_pixels)
    raise TypeError(f"cannot load an image from {type(source).__name__}")


def decode_bytes(data: bytes | bytearray | memoryview, name: str,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """:func:`decode_image` of a file's encoded bytes (e.g. read from an object store), with the
    same checks and one-line reasons; ``name`` is the file an :class:`ImageLoadError` names."""
    if len(data) == 0:
        raise ImageLoadError(name, "empty file")
    return _decode(io.BytesIO(data), name, max_pixels)


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


def check_regular_file(path: str | os.PathLike) -> os.stat_result:
    """``os.stat(path)`` when ``path`` is a regular file (symbolic links followed); otherwise an
    :class:`ImageLoadError` saying what it is: missing, a directory, a FIFO, a socket, a device,
    a symbolic link loop or unreadable. Nothing is opened."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except OSError as err:
        raise ImageLoadError(path, f"cannot read file ({err.strerror or err})") from None
    _require_regular(path, info.st_mode)
    return info


def _require_regular(path: str | os.PathLike, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise ImageLoadError(path, "is a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_TYPES if test(mode)), "special file")
        raise ImageLoadError(path, f"not a regular file ({kind}), not read")


@contextlib.contextmanager
def _open_file(path: Path) -> Iterator[BinaryIO]:
    """Open the regular file ``path`` for reading, turning the usual failures into :class:`ImageLoadError`.

    The file is checked before it is opened and opened without blocking (``O_NONBLOCK``), then
    checked again: a FIFO put in its place in between is refused, not waited on.
    """
    check_regular_file(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except OSError as err:
        raise ImageLoadError(path, f"cannot read file ({err.strerror or err})") from None
    try:
        info = os.fstat(fd)
        _require_regular(path, info.st_mode)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~getattr(os, "O_NONBLOCK", 0))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as stream:
        if info.st_size == 0:
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


def _decode(stream: BinaryIO, name: str, max_pixels: int) -> DecodedImage:
    """Decode (the first page of) an encoded image from ``stream`` into RGB ``uint8``."""
    with _open_pil(stream, name) as img:
        pages = _page_count(img)
        return DecodedImage(_pil_to_rgb(img, name, max_pixels, owned=True), pages)


def _page_count(img: Image.Image) -> int:
    """Pages (frames) of ``img``; 1 when unknown or unreadable."""
    try:
        return max(1, int(getattr(img, "n_frames", 1)))
    except Exception:  # noqa: BLE001 - counting pages of a corrupt file must not lose its first one
        return 1


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
    whole: their scaling depends on the whole image's range; 16-bit and 32-bit integer images
    are scaled by the bit depth of the whole image's largest value.
    """
    if img.mode == "F":
        return _array_to_rgb(np.asarray(img, dtype=np.float32), name)
    bits = _pil_bit_depth(img) if img.mode in _SIXTEEN_BIT_MODES else 8
    width, height = img.size
    rgb = mapped.empty((height, width, 3), np.uint8)  # kept while the models run: off their heap
    rows = max(1, _STRIP_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        # One strip is the image itself, not a cropped copy of it.
        strip = img if rows >= height else img.crop((0, top, width, min(top + rows, height)))
        rgb[top:top + rows] = _pil_strip_to_rgb(strip, name, bits)
    return rgb


def _pil_bit_depth(img: Image.Image) -> int:
    """:func:`bit_depth` of an integer PIL image, from its extrema (no copy of its pixels)."""
    try:
        low, high = img.getextrema()
    except Exception:  # noqa: BLE001 - some Pillow versions cannot take extrema of every 16-bit mode
        high = int(np.asarray(img).max())
    return bit_depth(int(min(max(high, 0), 65535)))


def bit_depth(largest: int) -> int:
    """The bit depth (8, 10, 12, 14 or 16) integer data whose largest value is ``largest`` is taken to have."""
    return next(bits for bits in _BIT_DEPTHS if largest < 1 << bits or bits == 16)


def _pil_strip_to_rgb(strip: Image.Image, name: str, bits: int) -> np.ndarray:
    """Convert a strip of a decoded PIL image (any mode but ``F``) to RGB ``uint8``; ``bits``
    is the bit depth of a 16-bit or 32-bit integer image."""
    if strip.mode in _SIXTEEN_BIT_MODES:
        gray = _scale_to_uint8(np.clip(np.asarray(strip), 0, 65535).astype(np.uint16), bits)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if strip.has_transparency_data:
        return _array_to_rgb(np.asarray(strip.convert("RGBA")), name)
    return np.asarray(strip if strip.mode == "RGB" else strip.convert("RGB"))


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
    """Scale ``uint16`` (by the bit depth of its largest value, see :func:`load_image`), ``bool``
    and float (``[0, 1]``) arrays to ``uint8``."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return _scale_to_uint8(array, bit_depth(int(array.max())))
    if np.issubdtype(array.dtype, np.floating):
        values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        if values.max() <= 1.0:
            values = values * 255.0
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    raise ImageLoadError(name, f"unsupported array dtype {array.dtype}")


def _scale_to_uint8(array: np.ndarray, bits: int) -> np.ndarray:
    """``uint16`` values of ``bits`` significant bits scaled to ``uint8`` in one rounding pass:
    ``round(v * 255 / (2**bits - 1))``, clipped (an alpha of the same scale is scaled alike)."""
    if bits == 8:
        return np.minimum(array, 255).astype(np.uint8)
    return cv2.convertScaleAbs(array, alpha=255 / ((1 << bits) - 1))


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


def atomic_save_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 90, comment: bytes | None = None) -> None:
    """Encode an RGB (or gray, or RGBA) ``uint8`` array by ``path``'s extension and write it
    atomically (see :func:`encode_image`).

    Raises:
        ValueError: unsupported extension, array shape or dtype, or encoding failure.
    """
    atomic_write_bytes(path, encode_image(path, rgb, quality, comment))


def encode_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 90, comment: bytes | None = None) -> bytes:
    """An RGB (or gray, or RGBA) ``uint8`` array encoded by ``path``'s extension.

    ``quality`` (0-100) applies to JPEG and WebP; ``comment`` (JPEG only) is stored in a comment
    segment before the image data (see :func:`jpeg_comments`).

    Raises:
        ValueError: unsupported extension, array shape or dtype, or encoding failure.
    """
    path = PurePath(path)
    extension = path.suffix.lower()
    if extension not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: unsupported image extension {path.suffix!r}")
    ok, encoded = cv2.imencode(extension, _rgb_to_bgr(rgb), _encode_params(extension, quality))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the image")
    data = encoded.tobytes()
    if comment is not None:
        if extension not in (".jpg", ".jpeg"):
            raise ValueError(f"{path}: only JPEG files carry a comment")
        data = _with_jpeg_comment(data, comment)
    return data


def encode_jpeg(image: Image.Image, quality: int = 90, comment: bytes | None = None) -> bytes:
    """A PIL image encoded as JPEG by Pillow, straight from its pixels; ``quality`` 0-100 and
    ``comment`` as for :func:`encode_image` (one COM segment before the image data)."""
    if comment is not None:
        _check_jpeg_comment(comment)
    out = io.BytesIO()
    options = {"comment": comment} if comment is not None else {}
    image.save(out, format="JPEG", quality=int(quality), **options)
    return out.getvalue()


def _with_jpeg_comment(jpeg: bytes, comment: bytes) -> bytes:
    """``jpeg`` with a COM segment holding ``comment`` after its SOI and JFIF (APP0) segments."""
    _check_jpeg_comment(comment)
    at = 2
    if jpeg[2:4] == b"\xff\xe0":
        at += 2 + int.from_bytes(jpeg[4:6], "big")
    return jpeg[:at] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[at:]


def _check_jpeg_comment(comment: bytes) -> None:
    """Refuse a comment too long for one COM segment (ValueError)."""
    if len(comment) > 65533:
        raise ValueError("a JPEG comment holds at most 65533 bytes")


def jpeg_comments(head: bytes) -> list[bytes]:
    """The comment (COM) segments among the segments before the image data of a JPEG file,
    given its first bytes ``head``; ``[]`` for anything else."""
    comments = []
    if head[:2] != b"\xff\xd8":
        return comments
    at = 2
    while at + 4 <= len(head) and head[at] == 0xFF and head[at + 1] not in (0xDA, 0xD9):
        length = int.from_bytes(head[at + 2:at + 4], "big")
        if length < 2:
            break
        if head[at + 1] == 0xFE:
            comments.append(head[at + 4:at + 2 + length])
        at += 2 + length
    return comments


def read_file_head(path: str | os.PathLike, size: int) -> bytes:
    """The first ``size`` bytes of the regular file ``path`` (checked and opened as
    :func:`load_image` does: a FIFO or device is refused, never opened blocking).

    Raises:
        ImageLoadError: missing, not a regular file, empty or unreadable.
    """
    with _open_file(Path(path)) as stream:
        return stream.read(size)


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
