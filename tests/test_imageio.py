"""Tests for scenetext.imageio: every input kind becomes RGB uint8; failures are named; writes are atomic."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenetext import imageio
from scenetext.imageio import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    atomic_save_image,
    atomic_write_bytes,
    atomic_write_text,
    check_writable_dir,
    encode_jpeg,
    image_size,
    is_image_path,
    jpeg_comments,
    load_image,
)


def assert_rgb(image: np.ndarray, height: int, width: int) -> None:
    assert image.dtype == np.uint8
    assert image.shape == (height, width, 3)


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- files of every mode


def test_grayscale_png(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.fromarray(np.full((5, 7), 77, dtype=np.uint8)).save(path)
    image = load_image(path)
    assert_rgb(image, 5, 7)
    assert (image == 77).all()


def test_rgba_png_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(str(path))
    assert tuple(image[0, 0]) == (255, 0, 0)
    assert tuple(image[0, 1]) == (255, 255, 255)
    assert tuple(image[1, 0]) == (127, 127, 127)


def test_palette_png_with_and_without_transparency(tmp_path: Path) -> None:
    palette_image = Image.fromarray(noise(6, 6)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    plain = tmp_path / "palette.png"
    palette_image.save(plain)
    expected = np.asarray(palette_image.convert("RGB"))
    np.testing.assert_array_equal(load_image(plain), expected)

    transparent = tmp_path / "palette_transparent.png"
    palette_image.save(transparent, transparency=int(np.asarray(palette_image)[0, 0]))
    assert tuple(load_image(transparent)[0, 0]) == (255, 255, 255)


def test_sixteen_bit_png_is_scaled(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as stored:
        assert stored.mode.startswith("I")
    image = load_image(path)
    assert_rgb(image, 1, 3)
    assert image[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.frombytes("I;16B", (2, 1), b"\xff\xff\x01\x01"), [255, 1]),
        (Image.frombytes("I;16", (2, 1), b"\xff\xff\x01\x01"), [255, 1]),
        (Image.fromarray(np.array([[0, 65535]], dtype=np.int32)), [0, 255]),
        (Image.fromarray(np.array([[0.0, 0.5]], dtype=np.float32)), [0, 128]),
        (Image.new("LA", (2, 1), (10, 255)), [10, 10]),
        (Image.new("1", (2, 1), 1), [255, 255]),
    ],
    ids=["I;16B", "I;16", "I", "F", "LA", "1"],
)
def test_pil_modes(image: Image.Image, expected: list[int]) -> None:
    rgb = load_image(image)
    assert_rgb(rgb, 1, 2)
    assert rgb[0, :, 1].tolist() == expected


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (10, 6), (0, 255, 255, 0)).save(path, quality=95)  # red
    image = load_image(path)
    assert_rgb(image, 6, 10)
    red, green, blue = image[3, 5].tolist()
    assert red > 200 and green < 60 and blue < 60


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(path, exif=exif)
    assert_rgb(load_image(path), 40, 20)
    assert image_size(path) == (20, 40)


def test_image_size_reads_plain_header(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (13, 7)).save(path)
    assert image_size(path) == (13, 7)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc")
def test_large_png_peak_memory(tmp_path: Path) -> None:
    """Loading needs little beyond the decoded image and the result: about 320 MB here (Pillow's
    144 MB at 4 bytes a pixel, the 108 MB result, ~50 MB interpreter and imports); converting
    the image whole took about 700 MB.

    The child reports VmHWM: its ``ru_maxrss`` would start at this process's RSS (inherited at exec).
    """
    path = tmp_path / "large.png"
    img = Image.new("RGB", (6000, 6000), (235, 230, 220))
    img.paste((20, 20, 20), (500, 2500, 5500, 3500))
    img.save(path, compress_level=1)
    code = (
        "import sys\n"
        "from scenetext.imageio import load_image\n"
        "image = load_image(sys.argv[1])\n"
        "peak = next(line for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
        "print(image.nbytes, int(peak.split()[1]) * 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    size, peak = map(int, result.stdout.split())
    assert size == 6000 * 6000 * 3
    assert peak < 3 * size + 250_000_000, f"peak RSS {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB image"


# --------------------------------------------------------------------------- broken files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="file not found") as excinfo:
        load_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(excinfo.value)
    with pytest.raises(ImageLoadError, match="file not found"):
        image_size(tmp_path / "nope.jpg")


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageLoadError, match="empty file") as excinfo:
        load_image(path)
    assert str(excinfo.value) == f"{path}: empty file"


def test_truncated_jpeg(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buffer, "JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt image") as excinfo:
        load_image(path)
    assert "cut.jpg" in str(excinfo.value)


def test_text_file_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n", encoding="utf-8")
    with pytest.raises(ImageLoadError, match="not an image or unsupported format") as excinfo:
        load_image(path)
    assert "notes.jpg" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_max_pixels_exceeded(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (30, 20)).save(path)
    with pytest.raises(ImageLoadError, match="image too large \\(30\u00d720\\)"):
        load_image(path, max_pixels=599)
    assert_rgb(load_image(path, max_pixels=600), 20, 30)
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(np.zeros((20, 30), dtype=np.uint8), max_pixels=100)


def test_pillow_limit_is_replaced_by_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow would refuse (>2x) or warn
    path = tmp_path / "medium.png"
    Image.new("RGB", (30, 20)).save(path)
    assert_rgb(load_image(path), 20, 30)
    assert Image.MAX_IMAGE_PIXELS == 10


# --------------------------------------------------------------------------- in-memory inputs


def test_bytes_input() -> None:
    buffer = io.BytesIO()
    pixels = noise(4, 5)
    Image.fromarray(pixels).save(buffer, "PNG")
    np.testing.assert_array_equal(load_image(buffer.getvalue()), pixels)
    np.testing.assert_array_equal(load_image(bytearray(buffer.getvalue())), pixels)
    with pytest.raises(ImageLoadError, match="<bytes>: empty file"):
        load_image(b"")
    with pytest.raises(ImageLoadError, match="<bytes>: not an image"):
        load_image(b"GIF? no")


def test_numpy_inputs() -> None:
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(load_image(gray)[:, :, 2], gray)
    np.testing.assert_array_equal(load_image(gray[:, :, None])[:, :, 0], gray)
    rgb = noise(2, 3)
    result = load_image(rgb)
    np.testing.assert_array_equal(result, rgb)
    result[:] = 0
    assert rgb.any(), "the result must be a copy"
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 1] = (10, 20, 30, 255)
    assert load_image(rgba).tolist() == [[[255, 255, 255], [10, 20, 30]]]
    assert load_image(np.array([[0, 65535]], dtype=np.uint16))[0, :, 0].tolist() == [0, 255]
    assert load_image(np.array([[0.0, 1.0]]))[0, :, 0].tolist() == [0, 255]
    assert load_image(np.array([[False, True]]))[0, :, 0].tolist() == [0, 255]


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.zeros((2, 2, 2), dtype=np.uint8), "shape"),
        (np.zeros(5, dtype=np.uint8), "shape"),
        (np.zeros((0, 4), dtype=np.uint8), "shape"),
        (np.zeros((2, 2), dtype=np.int64), "dtype"),
    ],
)
def test_bad_numpy_inputs(array: np.ndarray, problem: str) -> None:
    with pytest.raises(ImageLoadError, match=f"<array>: unsupported array {problem}"):
        load_image(array)


def test_unsupported_source_type() -> None:
    with pytest.raises(TypeError):
        load_image(42)  # type: ignore[arg-type]


def test_image_extensions() -> None:
    assert {".jpg", ".jpeg", ".png", ".bmp", ".webp"} <= IMAGE_EXTENSIONS
    assert is_image_path("a/B.JPG") and is_image_path(Path("x.webp"))
    assert not is_image_path("labels.tsv")


# --------------------------------------------------------------------------- atomic writing


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "file.txt"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "zweite Version ü\n")
    assert target.read_text(encoding="utf-8") == "zweite Version ü\n"
    assert os.listdir(target.parent) == ["file.txt"]
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(target.parent) == ["file.txt"]


def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    target.write_text("old", encoding="utf-8")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(imageio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_atomic_write_keeps_permissions(tmp_path: Path) -> None:
    target = tmp_path / "script.sh"
    target.write_text("#!/bin/sh\n", encoding="utf-8")
    target.chmod(0o755)
    atomic_write_text(target, "#!/bin/sh\necho hi\n")
    assert target.stat().st_mode & 0o777 == 0o755
    fresh = tmp_path / "fresh.txt"
    atomic_write_text(fresh, "x")
    assert fresh.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name", ["out.png", "out.bmp"])
def test_atomic_save_image_lossless_round_trip(tmp_path: Path, name: str) -> None:
    pixels = noise(9, 11)
    path = tmp_path / "sub" / name
    atomic_save_image(path, pixels)
    np.testing.assert_array_equal(load_image(path), pixels)
    assert os.listdir(path.parent) == [name]


def test_atomic_save_image_jpeg_and_gray(tmp_path: Path) -> None:
    solid = np.zeros((8, 12, 3), dtype=np.uint8)
    solid[:] = (250, 10, 10)
    atomic_save_image(tmp_path / "red.JPG", solid, quality=95)
    red = load_image(tmp_path / "red.JPG")
    assert_rgb(red, 8, 12)
    assert red[4, 6, 0] > 230 and red[4, 6, 2] < 30
    gray = np.full((3, 4), 90, dtype=np.uint8)
    atomic_save_image(tmp_path / "gray.png", gray)
    assert (load_image(tmp_path / "gray.png") == 90).all()


def test_encode_jpeg_writes_the_pil_image_with_its_comment(tmp_path: Path) -> None:
    canvas = Image.new("RGB", (40, 24), (250, 10, 10))
    canvas.paste((10, 10, 250), (20, 0, 40, 24))
    data = encode_jpeg(canvas, quality=95, comment=b"scenetext annotated copy")
    assert jpeg_comments(data[:4096]) == [b"scenetext annotated copy"]
    (tmp_path / "out.jpg").write_bytes(data)
    back = load_image(tmp_path / "out.jpg")
    assert_rgb(back, 24, 40)
    assert back[12, 5, 0] > 230 and back[12, 5, 2] < 30 and back[12, 35, 2] > 230 and back[12, 35, 0] < 30
    assert jpeg_comments(encode_jpeg(canvas)[:4096]) == []
    with pytest.raises(ValueError, match="65533"):
        encode_jpeg(canvas, comment=b"x" * 65534)


def test_atomic_save_image_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="extension"):
        atomic_save_image(tmp_path / "x.gif", noise(2, 2))
    with pytest.raises(ValueError, match="uint8"):
        atomic_save_image(tmp_path / "x.png", np.zeros((2, 2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        atomic_save_image(tmp_path / "x.png", np.zeros((2, 2, 2), dtype=np.uint8))
    assert os.listdir(tmp_path) == []


def test_check_writable_dir(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert check_writable_dir(target) == target
    assert target.is_dir() and os.listdir(target) == []
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OSError, match="not a directory"):
        check_writable_dir(blocker)
    with pytest.raises(OSError, match="cannot create directory"):
        check_writable_dir(blocker / "child")
