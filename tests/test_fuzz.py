"""Bounded property-based fuzzing (hypothesis): mutated real image bytes through the image loader,
random lines through every dataset and label parser. Only the documented errors may come out
(:class:`ImageLoadError`; :class:`FormatError` naming ``file:line``), and no case may take long.
The whole module runs in well under a minute."""

from __future__ import annotations

import io
import re
import signal
import tempfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from scenetext.data import formats
from scenetext.data.formats import FormatError
from scenetext.imageio import ImageLoadError, load_image

CASE_SECONDS = 30  # a hang is cut off here (SIGALRM); a slow case fails on the deadline below
FUZZ = settings(max_examples=60, deadline=timedelta(seconds=10), derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@contextmanager
def time_limit(seconds: int):
    def stop(signum, frame):
        raise TimeoutError(f"case ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _encoded(fmt: str, **options) -> bytes:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    pixels[8:16, 4:28] = 0  # some structure for the encoders
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


SAMPLES = {
    "jpeg": _encoded("JPEG", quality=80),
    "png": _encoded("PNG"),
    "webp": _encoded("WEBP", quality=80),
    "tiff": _encoded("TIFF", compression="tiff_lzw"),
}


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few bytes overwritten, a run inserted or deleted, or cut short."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[at:at + draw(st.integers(1, 16))]
        else:
            del out[at:]
    return bytes(out)


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_mutated_images_give_only_image_load_errors(fmt):
    @FUZZ
    @given(mutated(SAMPLES[fmt]))
    def case(data):
        with time_limit(CASE_SECONDS):
            try:
                image = load_image(data, max_pixels=4_000_000)  # a mutated header may claim any size
            except ImageLoadError as err:
                assert str(err).startswith("<bytes>: ") and "\n" not in str(err)
            else:
                assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3

    case()


def test_unmutated_samples_load():
    for data in SAMPLES.values():
        assert load_image(data).shape == (24, 32, 3)


# --------------------------------------------------------------------------- dataset parsers

FIELD_CHARS = st.sampled_from(list("0123456789-.,; \t\"'e+x#*[]{}:") + ["nan", "inf", "1e400", "é", "\x00", "\r",
                                                                        "\ufeff", "images/a.jpg", '"points"'])
LINE = st.lists(FIELD_CHARS, max_size=40).map("".join)
PADDLE_LINE = st.tuples(st.sampled_from(["a.jpg", "", "sub/b.png", "c d.jpg"]), st.sampled_from(["\t", " ", ""]),
                        st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.text(max_size=4),
                                     lambda inner: st.lists(inner, max_size=5)
                                     | st.dictionaries(st.sampled_from(["transcription", "points", "difficult"]),
                                                       inner, max_size=3), max_leaves=12)
                        ).map(lambda t: f"{t[0]}{t[1]}{__import__('json').dumps(t[2])}")
CONTENT = st.one_of(
    st.lists(LINE, max_size=6).map("\n".join).map(lambda s: s.encode("utf-8")),
    st.lists(PADDLE_LINE, max_size=4).map("\n".join).map(lambda s: s.encode("utf-8")),
    st.binary(max_size=64),
    st.sampled_from([b"\xff\xfe\x00", b"\r\n\r\n"]),
)
#: Hostile inputs every run tries, whatever hypothesis draws.
EXAMPLES = [b"[" * 100_000, b"a.jpg\t" + b"[" * 100_000, b'a.jpg\t[{"transcription": "x", "points": ' + b"[" * 5000 + b"]",
            b"a.jpg\t" + b'{"a": ' * 50_000, "x\u2028y\u0085z,1,2\tq".encode("utf-8"), b"\x00\t\x00"]
FILE_LINE = re.compile(r"^.+:\d+: .+", re.S)


def _parse_all(folder: Path, data: bytes) -> None:
    """Every parser of scenetext.data.formats on ``data``; only file:line FormatErrors may come out."""
    labels = folder / "labels.txt"
    labels.write_bytes(data)
    gt = folder / "set" / "gt"
    gt.mkdir(parents=True, exist_ok=True)
    (gt / "img_1.txt").write_bytes(data)
    parsers = [lambda: formats.read_icdar_gt(labels),
               lambda: formats.read_paddle_det(labels, check_images=False),
               lambda: formats.read_paddle_det(labels, check_images=True),
               lambda: formats.read_det_set(folder / "set", check_images=False)]
    for fmt in ("auto", "tsv", "space", "paddle"):
        for check in (False, True):
            parsers.append(lambda fmt=fmt, check=check: formats.read_rec_labels(labels, fmt=fmt, check_images=check))
    for parse in parsers:
        try:
            parse()
        except FormatError as err:
            assert err.lineno is not None and FILE_LINE.match(str(err)), str(err)


@FUZZ
@given(CONTENT)
@example(EXAMPLES[0])
@example(EXAMPLES[1])
@example(EXAMPLES[2])
@example(EXAMPLES[3])
@example(EXAMPLES[4])
@example(EXAMPLES[5])
def test_random_lines_give_only_file_line_format_errors(data):
    with tempfile.TemporaryDirectory() as tmp, time_limit(CASE_SECONDS):
        _parse_all(Path(tmp), data)
