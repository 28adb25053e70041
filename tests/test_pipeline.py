"""The Python pipeline: crops, split/merge, word placement, Reader, results and their schema, rendering.

The recogniser is the real :class:`Recognizer` on an untrained CRNN (the ``recognizer`` fixture in
conftest.py; tests check behaviour, not text); detectors are small stand-ins with the real
interface (tests/helpers.py). All images are generated.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from shapely.geometry import Point, Polygon

from helpers import (
    BlobDetector,
    FixedDetector,
    InkReader,
    WordBoxDetector,
    blank,
    dark_boxes_image,
    save_mode,
    word_image,
)
from scenetext.crop import (
    CropPiece,
    Reading,
    crop_line,
    merge_readings,
    merge_texts,
    quad_size,
    split_crop,
    word_spans,
)
from scenetext.imageio import ImageLoadError
from scenetext.reader import Reader
from scenetext.render import confidence_colour, render
from scenetext.results import PageResult, SchemaError, validate_result


def polygon(points):
    return Polygon(np.asarray(points, dtype=float))


# --------------------------------------------------------------------------- crops


def test_slanted_line_comes_out_straight():
    canvas, quad = word_image()
    straight = crop_line(canvas, quad)
    rotation = cv2.getRotationMatrix2D((300, 150), 20, 1.0)
    rotated = cv2.warpAffine(canvas, rotation, (600, 300), borderValue=(255, 255, 255))
    rotated_quad = (np.c_[quad, np.ones(4)] @ rotation.T).astype(np.float32)
    slanted = crop_line(rotated, rotated_quad)

    assert slanted.image.shape == straight.image.shape
    assert straight.image.shape[0] >= 32 and straight.image.shape[1] > straight.image.shape[0]
    diff = np.abs(slanted.image.astype(int) - straight.image.astype(int)).mean()
    assert diff < 12
    # the ink stays within the line's rows of the padded crop
    x0, y0, x1, y1 = slanted.inner
    ink_rows = np.nonzero((slanted.image[:, :, 0] < 128).any(1))[0]
    assert ink_rows.min() >= y0 - 2 and ink_rows.max() <= y1 + 2


def test_crop_homography_maps_back_to_the_quad():
    quad = np.array([[50, 40], [300, 70], [295, 120], [45, 90]], np.float32)
    crop = crop_line(blank(200, 400), quad)
    x0, y0, x1, y1 = crop.inner
    corners = crop.map_to_image(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    np.testing.assert_allclose(corners, quad, atol=0.01)
    np.testing.assert_allclose(crop.span_to_image(x0, x1), quad, atol=0.01)


def test_crop_padding_and_height_limits():
    small = crop_line(blank(100, 400), np.array([[10, 10], [110, 10], [110, 20], [10, 20]], np.float32))
    assert small.image.shape[0] == 32  # 10-px text is upsampled to the recogniser's height
    big = crop_line(blank(900, 900), np.array([[0, 0], [800, 0], [800, 400], [0, 400]], np.float32))
    assert big.image.shape[0] == 128  # huge text is warped straight to a bounded size
    x0, y0, x1, y1 = big.inner
    assert y0 == pytest.approx(0.1 * (y1 - y0)) and x0 == pytest.approx(0.2 * (y1 - y0))


def test_vertical_line_is_rotated_before_reading():
    canvas, quad = word_image()
    straight = crop_line(canvas, quad)
    height = canvas.shape[0] - 1  # pixel centres: row y becomes column height - 1 - y
    turned = np.ascontiguousarray(np.rot90(canvas, k=-1))  # text now runs top to bottom
    (x0, y0), (x1, y1) = quad[0], quad[2]
    tall = np.array([[height - y1, x0], [height - y0, x0], [height - y0, x1], [height - y1, x1]], np.float32)
    assert quad_size(tall)[1] > 1.5 * quad_size(tall)[0]

    crop = crop_line(turned, tall)
    assert crop.image.shape == straight.image.shape  # wider than tall: upright
    assert np.abs(crop.image.astype(int) - straight.image.astype(int)).mean() < 12
    np.testing.assert_allclose(crop.quad[0], tall[1])  # polygons start at the text's top-left


def test_split_crop_pieces_overlap_and_partition():
    crop = np.zeros((32, 3000, 3), np.uint8)
    pieces = split_crop(crop, max_aspect=25, overlap=2)
    assert len(pieces) > 1
    assert all(p.image.shape[1] <= 25 * 32 for p in pieces)
    assert pieces[0].offset == 0 and pieces[-1].offset + pieces[-1].image.shape[1] == 3000
    for a, b in zip(pieces, pieces[1:]):
        assert b.offset < a.offset + a.image.shape[1]  # overlapping
        assert a.keep[1] == b.keep[0]
        assert b.offset <= a.keep[1] <= a.offset + a.image.shape[1]  # the cut lies in the overlap
    assert split_crop(crop[:, :700], max_aspect=25)[0].offset == 0


def test_merge_readings_cuts_in_the_overlap():
    text = "the quick brown fox jumps over the lazy dog again and again"
    pitch = 20.0
    crop = np.zeros((32, int(len(text) * pitch), 3), np.uint8)
    pieces = split_crop(crop, max_aspect=12, overlap=2)
    assert len(pieces) >= 3
    readings = []
    for piece in pieces:  # each piece reads the characters whose span lies inside it
        lo, hi = piece.offset, piece.offset + piece.image.shape[1]
        idx = [i for i in range(len(text)) if lo <= i * pitch and (i + 1) * pitch <= hi]
        readings.append(Reading("".join(text[i] for i in idx), 0.8, [0.8] * len(idx),
                                [(i * pitch - lo, (i + 1) * pitch - lo) for i in idx]))
    merged = merge_readings(pieces, readings)
    assert merged.text == text
    assert merged.char_spans == [(i * pitch, (i + 1) * pitch) for i in range(len(text))]
    assert merged.confidence == pytest.approx(0.8)


def test_merge_without_positions_joins_at_the_longest_overlap():
    assert merge_texts("hello wor", "o world") == "hello world"
    assert merge_texts("abc", "xyz") == "abcxyz"
    pieces = [CropPiece(np.zeros((1, 1, 3), np.uint8), 0, (0, 1))] * 2
    merged = merge_readings(pieces, [Reading("open dai", 0.6), Reading("daily", 0.8)])
    assert merged.text == "open daily" and merged.confidence == pytest.approx(0.7)


# --------------------------------------------------------------------------- words


def test_word_spans_are_ordered_disjoint_and_inside():
    text = "abc de fgh"
    centres = [12, 22, 32, 46, 60, 70, 90, 110, 120, 130]
    reading = Reading(text, 0.9, [0.9] * 6 + [0.5] * 4, [(c - 3, c + 3) for c in centres])
    words = word_spans(reading, 0, 140)
    assert [w.text for w in words] == ["abc", "de", "fgh"]
    # outer edges at the line's ends; inner edges half a pitch (10 px) beyond the centres
    assert [(w.left, w.right) for w in words] == [(0, 37), (55, 75), (105, 140)]
    assert words[0].confidence == pytest.approx(0.9) and words[2].confidence == pytest.approx(0.5)

    even = word_spans(Reading("ab cd", 0.5), 0, 50)  # no positions: spread evenly
    assert [(w.left, w.right) for w in even] == [(0, 20), (30, 50)]
    (single,) = word_spans(Reading("x", 0.9, [0.9], [(20, 24)]), 0, 100)
    assert (single.left, single.right) == (0, 100)  # one word: the whole line
    assert even[0].confidence == 0.5
    assert word_spans(Reading("   ", 0.9), 0, 10) == []


def test_words_lie_on_their_ink_inside_a_slanted_line():
    canvas = blank(400, 700)
    blobs = [(150, 200), (300, 200), (450, 200)]
    for x, y in blobs:
        cv2.rectangle(canvas, (x - 15, y - 20), (x + 15, y + 20), (0, 0, 0), -1)
    rotation = cv2.getRotationMatrix2D((350, 200), 15, 1.0)
    canvas = cv2.warpAffine(canvas, rotation, (700, 400), borderValue=(255, 255, 255))
    centres = np.c_[np.array(blobs, float), np.ones(3)] @ rotation.T
    line = np.c_[np.array([[100, 170], [500, 170], [500, 230], [100, 230]], float), np.ones(4)] @ rotation.T

    page = Reader(FixedDetector([line]), InkReader(), min_confidence=0).read(canvas)
    (result,) = page.lines
    assert result.text == "x x x"
    words = result.words
    assert [w.text for w in words] == ["x", "x", "x"]
    line_poly = polygon(result.polygon).buffer(0.5)
    direction = (line[1] - line[0]) / np.linalg.norm(line[1] - line[0])
    along = [float(np.asarray(w.polygon).mean(0) @ direction) for w in words]
    assert along == sorted(along)  # left to right along the line
    for word, centre in zip(words, centres):
        word_poly = polygon(word.polygon)
        assert line_poly.contains(word_poly)
        assert word_poly.contains(Point(centre))
    for a, b in zip(words, words[1:]):
        assert polygon(a.polygon).intersection(polygon(b.polygon)).area < 1.0


def three_blobs():
    """A white canvas with three dark blobs on one row (x centres 150, 300, 450) and boxes."""
    canvas = blank(300, 600)
    for x in (150, 300, 450):
        canvas[130:170, x - 15:x + 15] = 0

    def rect(x0, x1):
        return [[x0, 120], [x1, 120], [x1, 180], [x0, 180]]

    return canvas, rect


def test_lines_are_read_word_box_by_word_box():
    canvas, rect = three_blobs()
    detector = WordBoxDetector(rect(100, 500), [rect(120, 330), rect(420, 480)])
    reader = InkReader()
    (line,) = Reader(detector, reader, min_confidence=0).read(canvas).lines
    assert len(reader.calls[0]) == 2  # one crop per word box, not one for the line
    assert line.text == "x x x"
    np.testing.assert_allclose(line.polygon, rect(100, 500))  # the line keeps its own quad
    first, second = polygon(rect(120, 330)).buffer(1), polygon(rect(420, 480)).buffer(1)
    assert [first.contains(polygon(w.polygon)) for w in line.words[:2]] == [True, True]
    assert second.contains(polygon(line.words[2].polygon))

    whole = InkReader()
    (line,) = Reader(detector, whole, min_confidence=0, read_by_word=False).read(canvas).lines
    assert len(whole.calls[0]) == 1 and line.text == "x x x"
    # read from the first word's start to the last one's end, not over the line's own margin
    span = crop_line(canvas, np.float32(rect(120, 480))).image
    assert whole.calls[0][0].shape == span.shape
    np.testing.assert_allclose(line.polygon, rect(100, 500))


def test_unsure_word_boxes_are_dropped_and_the_rest_of_the_line_kept():
    canvas, rect = three_blobs()
    detector = WordBoxDetector(rect(100, 500), [rect(120, 330), rect(420, 480)])
    wide_is_unsure = InkReader(lambda crop: 0.2 if crop.shape[1] > 2 * crop.shape[0] else 0.8)
    (line,) = Reader(detector, wide_is_unsure, min_confidence=0.5).read(canvas).lines
    assert line.text == "x" and len(line.words) == 1
    assert line.confidence == pytest.approx(0.8)
    (line,) = Reader(detector, wide_is_unsure, min_confidence=0.1).read(canvas).lines
    # geometric mean over characters: two at 0.2, one at 0.8
    assert line.confidence == pytest.approx((0.2 * 0.2 * 0.8) ** (1 / 3), abs=1e-4)  # stored to 4 places
    assert Reader(detector, InkReader(lambda crop: 0.2), min_confidence=0.5).read(canvas).lines == []


# --------------------------------------------------------------------------- Reader


def test_read_any_input_kind(recognizer, tmp_path):
    rgb = dark_boxes_image()
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    reader = Reader(BlobDetector(), recognizer, min_confidence=0)
    pages = [reader.read(path), reader.read(str(path)), reader.read(path.read_bytes()), reader.read(rgb),
             reader.read(Image.fromarray(rgb))]
    assert pages[0].path == str(path) and pages[1].path == str(path)
    assert all(p.path is None for p in pages[2:])
    for page in pages:
        assert (page.width, page.height) == (320, 120)
        assert len(page.lines) == 2
        assert [line.to_dict() for line in page.lines] == [line.to_dict() for line in pages[0].lines]
        assert page.models == {"detector": "blob-detector", "recognizer": "crnn-untrained"}
        validate_result(page.to_dict())


def test_results_keep_original_coordinates(recognizer):
    rgb = dark_boxes_image()
    page = Reader(BlobDetector(), recognizer, min_confidence=0).read(rgb)
    assert page.lines[0].polygon == [[30.0, 20.0], [200.0, 20.0], [200.0, 44.0], [30.0, 44.0]]
    for line in page.lines:
        assert line.text and line.words
        for word in line.words:
            assert polygon(line.polygon).buffer(0.5).contains(polygon(word.polygon))


def test_exif_orientation_gives_displayed_coordinates(recognizer, tmp_path):
    stored = blank(100, 200)  # 200 wide, 100 high as stored
    stored[10:30, 20:80] = 0
    path = tmp_path / "rotated.jpg"
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: 100 wide, 200 high
    img.save(path, exif=exif, quality=95)
    page = Reader(BlobDetector(), recognizer, min_confidence=0).read(path)
    assert (page.width, page.height) == (100, 200)
    (line,) = page.lines
    xs, ys = np.asarray(line.polygon).T
    # stored rows 10..30 become displayed columns 100-30..100-10, stored columns 20..80 rows 20..80
    assert xs.min() == pytest.approx(70, abs=2) and xs.max() == pytest.approx(90, abs=2)
    assert ys.min() == pytest.approx(20, abs=2) and ys.max() == pytest.approx(80, abs=2)


@pytest.mark.parametrize(("mode", "suffix"), [("L", "png"), ("RGBA", "png"), ("P", "png"), ("I;16", "png"),
                                              ("CMYK", "jpg")])
def test_image_modes(recognizer, tmp_path, mode, suffix):
    path = save_mode(tmp_path / f"image.{suffix}", dark_boxes_image(), mode)
    page = Reader(BlobDetector(), recognizer, min_confidence=0).read(path)
    assert (page.width, page.height) == (320, 120)
    assert len(page.lines) == 2
    np.testing.assert_allclose(page.lines[0].polygon, [[30, 20], [200, 20], [200, 44], [30, 44]], atol=2)


def test_read_many_batches_recognition_across_images(recognizer, tmp_path):
    calls = []

    class CountingRecognizer:
        name = "counting"
        max_width = recognizer.max_width

        def recognize(self, crops, orient=True):
            calls.append((len(crops), orient))
            return recognizer.recognize(crops, orient)

    images = [dark_boxes_image(), blank(50, 60), dark_boxes_image(140, 330)]
    reader = Reader(BlobDetector(), CountingRecognizer(), min_confidence=0)
    pages = list(reader.read_many(images, batch_images=8))
    assert calls == [(4, False)]  # one call for the 4 lines of 3 images, already turned upright by crop.py
    assert [len(p.lines) for p in pages] == [2, 0, 2]
    assert [(p.width, p.height) for p in pages] == [(320, 120), (60, 50), (330, 140)]
    for page in pages:
        assert set(page.timings_ms) == {"decode", "detect", "recognize", "total"}
        assert page.timings_ms["total"] == pytest.approx(
            page.timings_ms["decode"] + page.timings_ms["detect"] + page.timings_ms["recognize"])
    assert pages[1].timings_ms["recognize"] == 0  # no crops, no share of the recogniser's time
    assert len(list(reader.read_many(images, batch_images=1))) == 3 and [n for n, _ in calls[1:]] == [2, 0, 2]


def test_min_confidence_and_empty_pages(recognizer):
    rgb = dark_boxes_image()
    assert Reader(BlobDetector(), recognizer, min_confidence=1.0).read(rgb).lines == []
    assert Reader(FixedDetector([]), recognizer).read(rgb).lines == []
    thin = FixedDetector([[[10, 10], [100, 10], [100, 11], [10, 11]]])  # too thin to crop
    assert Reader(thin, recognizer, min_confidence=0).read(rgb).lines == []


def test_long_line_is_split_and_merged_without_losing_or_doubling(recognizer):
    rgb = blank(60, 2400)
    centres = list(range(40, 2400, 80))  # 30 marks along a line 80 heights long
    for x in centres:
        rgb[20:40, x - 10:x + 10] = 0
    line = [[5, 15], [2395, 15], [2395, 45], [5, 45]]
    page = Reader(FixedDetector([line]), InkReader(), min_confidence=0).read(rgb)
    (result,) = page.lines
    assert result.text == " ".join(["x"] * len(centres))
    for word, x in zip(result.words, centres):
        assert polygon(word.polygon).contains(Point(x, 30))
    assert len(Reader(FixedDetector([line]), recognizer, min_confidence=0).read(rgb).lines) == 1


def test_bad_input_raises_image_load_error(recognizer, tmp_path):
    reader = Reader(BlobDetector(), recognizer)
    with pytest.raises(ImageLoadError, match="<bytes>"):
        reader.read(b"not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty.jpg: empty file"):
        reader.read(empty)


def test_reader_options_are_checked(recognizer):
    with pytest.raises(ValueError, match="CPU"):
        Reader(device="cuda")
    with pytest.raises(ValueError, match="level"):
        Reader(level="page")
    with pytest.raises(ValueError, match="lexicon"):
        Reader(recognizer=recognizer, lexicon=["a"])
    with pytest.raises(ValueError, match="zoom"):
        Reader(BlobDetector(), zoom=1400)


# --------------------------------------------------------------------------- results and schema


def test_result_round_trip_and_schema(recognizer):
    page = Reader(BlobDetector(), recognizer, min_confidence=0).read(dark_boxes_image())
    d = json.loads(page.to_json())
    validate_result(d)
    assert PageResult.from_dict(d).to_dict() == d
    assert all(isinstance(v, float) for pt in d["lines"][0]["polygon"] for v in pt)
    assert page.text == "\n".join(line.text for line in page.lines)


@pytest.mark.parametrize("breakage", [
    lambda d: d.pop("timings_ms"),
    lambda d: d["lines"][0].update(confidence=1.5),
    lambda d: d["lines"][0]["polygon"].pop(),
    lambda d: d["lines"][0]["words"][0].update(text=3),
    lambda d: d.update(width=0),
    lambda d: d.update(extra=1),
    lambda d: d["lines"][0]["polygon"][0].append(1.0),
])
def test_schema_rejects_broken_documents(recognizer, breakage):
    d = Reader(BlobDetector(), recognizer, min_confidence=0).read(dark_boxes_image()).to_dict()
    breakage(d)
    with pytest.raises(SchemaError):
        validate_result(d)


def test_schema_file_is_draft_2020_12():
    from scenetext.results import load_schema

    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"path", "width", "height", "lines", "timings_ms", "models", "version"}


# --------------------------------------------------------------------------- rendering


def test_render_draws_scaled_labels(recognizer):
    rgb = dark_boxes_image()
    page = Reader(BlobDetector(), recognizer, min_confidence=0).read(rgb)
    out = render(rgb, page)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (out != rgb).any()
    assert rgb[5, 5].tolist() == [255, 255, 255]  # input untouched
    big = cv2.resize(rgb, (3200, 1200), interpolation=cv2.INTER_NEAREST)
    big_page = Reader(BlobDetector(), recognizer, min_confidence=0).read(big)
    assert render(big, big_page, max_side=1000).shape == (375, 1000, 3)
    assert render(rgb, PageResult(None, 320, 120, [], page.timings_ms, page.models, "x")).tolist() == rgb.tolist()


def test_confidence_colours():
    red, orange, green = confidence_colour(0.2), confidence_colour(0.6), confidence_colour(0.9)
    assert len({red, orange, green}) == 3
    assert confidence_colour(0.5) == orange and confidence_colour(0.8) == green


# --------------------------------------------------------------------------- import cost


def test_import_is_cheap():
    code = (
        "import sys, scenetext\n"
        "assert 'torch' not in sys.modules and 'cv2' not in sys.modules\n"
        "scenetext.PageResult, scenetext.Reader, scenetext.load_image\n"
        "assert 'torch' not in sys.modules, 'Reader import loaded torch'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
