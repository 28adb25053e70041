"""Word boxes cut where the photo goes blank (scenetext/detection/words.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from scenetext.detection.model import CTPN, CTPNConfig
from scenetext.detection.predictor import Detector
from scenetext.detection.words import InkSplit, ink_spans, split_by_ink
from scenetext.evaluation.iou import polygon

FONT = cv2.FONT_HERSHEY_SIMPLEX


def text_image(words, scale=1.0, thickness=2, origin=(20, 60), size=(100, 420)):
    """White photo with dark words separated by one space; returns it and each word's x extent."""
    img = np.full((*size, 3), 235, np.uint8)
    x, spans = origin[0], []
    for word in words:
        (w, _), _ = cv2.getTextSize(word, FONT, scale, thickness)
        cv2.putText(img, word, (x, origin[1]), FONT, scale, (20, 20, 20), thickness, cv2.LINE_AA)
        spans.append((x, x + w))
        x += w + cv2.getTextSize(" ", FONT, scale, thickness)[0][0] + 6
    return img, spans


def box(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def test_two_words_in_one_box_are_cut_at_the_space():
    img, ((a0, a1), (b0, b1)) = text_image(["HOTEL", "PARIS"])
    words = split_by_ink(img, box(a0 - 4, 35, b1 + 4, 68))
    assert len(words) == 2
    left, right = words
    # The first word ends in the space and the second starts in it, each keeping its letters.
    assert a1 - 2 <= left[:, 0].max() <= b0 + 1
    assert a1 - 1 <= right[:, 0].min() <= b0 + 2
    assert left[:, 0].max() <= right[:, 0].min()
    # Outer ends and heights are the box's own.
    assert left[:, 0].min() == pytest.approx(a0 - 4, abs=0.5)
    assert right[:, 0].max() == pytest.approx(b1 + 4, abs=0.5)
    assert np.allclose(sorted(left[:, 1]), [35, 35, 68, 68], atol=0.5)


def test_one_word_stays_whole():
    img, ((a0, a1),) = text_image(["WILLKOMMEN"])
    quad = box(a0 - 4, 35, a1 + 4, 68)
    words = split_by_ink(img, quad)
    assert len(words) == 1 and np.array_equal(words[0], quad)


def test_small_blurred_words_are_cut_too():
    img, spans = text_image(["OPEN", "DAILY", "9AM"], scale=0.45, thickness=1, origin=(20, 40), size=(60, 220))
    img = cv2.GaussianBlur(img, (3, 3), 0.8)
    words = split_by_ink(img, box(spans[0][0] - 2, 28, spans[-1][1] + 2, 44))
    assert len(words) == 3


def test_slanted_box_pieces_stay_inside_it():
    img, ((a0, _), (_, b1)) = text_image(["NORTH", "GATE"], origin=(60, 110), size=(220, 420))
    turn = cv2.getRotationMatrix2D((210, 110), 8, 1.0)
    img = cv2.warpAffine(img, turn, (420, 220), borderValue=(235, 235, 235))
    quad = cv2.transform(box(a0 - 4, 85, b1 + 4, 118)[None], turn)[0].astype(np.float32)
    words = split_by_ink(img, quad)
    assert len(words) == 2
    whole = polygon(quad)
    for word in words:
        assert whole.buffer(1.0).contains(polygon(word))
    assert sum(polygon(w).area for w in words) < whole.area


@pytest.mark.parametrize("quad", [box(10, 10, 200, 40), box(10, 10, 40, 200), box(10, 10, 10, 40)])
def test_blank_vertical_and_degenerate_boxes_are_left_alone(quad):
    img = np.full((240, 240, 3), 128, np.uint8)
    words = split_by_ink(img, quad)
    assert len(words) == 1 and np.array_equal(words[0], quad)


def test_ink_spans_rules():
    cfg = InkSplit(threshold=0.1, min_gap=0.3, min_word=0.5)
    ink = np.ones(100, np.float32)
    assert ink_spans(ink, 20, cfg) == [(0, 100)]
    margins = ink.copy()
    margins[:10] = margins[-10:] = 0  # blank margins are not spaces
    assert ink_spans(margins, 20, cfg) == [(0, 100)]
    gap = ink.copy()
    gap[40:48] = 0  # 8 columns >= 0.3 x 20
    assert ink_spans(gap, 20, cfg) == [(0, 40), (48, 100)]
    narrow = ink.copy()
    narrow[40:45] = 0  # 5 columns: a gap between letters
    assert ink_spans(narrow, 20, cfg) == [(0, 100)]
    stray = ink.copy()
    stray[5:15] = 0  # would leave a 5-column piece (< 0.5 x 20) at the left end
    assert ink_spans(stray, 20, cfg) == [(0, 100)]
    assert ink_spans(np.zeros(50, np.float32), 20, cfg) == [(0, 50)]


def test_detector_cuts_word_boxes_not_lines(monkeypatch):
    img, ((a0, _), (_, b1)) = text_image(["HOTEL", "PARIS"])
    quad = box(a0 - 4, 35, b1 + 4, 68)
    det = Detector(CTPN(CTPNConfig()))
    # One line whose proposals left no gap: a single word box over both words.
    monkeypatch.setattr(det, "_detect_at", lambda rgb, scale, zoom=None: [(quad.copy(), 0.9, [(quad.copy(), 0.9)])])
    assert len(det.detect(img, level="word")) == 2
    (line,) = det.detect(img, level="line")
    np.testing.assert_allclose(line.quad, quad)  # the line itself is never cut
    assert len(line.words) == 2
    assert line.words[0][:, 0].max() < line.words[1][:, 0].min()  # left to right
    det.word_split = None
    assert len(det.detect(img, level="word")) == 1
    assert len(det.detect(img, level="line")[0].words) == 1


def test_line_margin_grows_lines_but_not_their_words(monkeypatch):
    img, ((a0, _), (_, b1)) = text_image(["HOTEL", "PARIS"])
    quad = box(a0 - 4, 35, b1 + 4, 68)
    det = Detector(CTPN(CTPNConfig()), word_split=None, line_margin=0.25)
    monkeypatch.setattr(det, "_detect_at", lambda rgb, scale, zoom=None: [(quad.copy(), 0.9, [(quad.copy(), 0.9)])])
    (line,) = det.detect(img, level="line")
    # 33 px high: a quarter of that more above (35 -> 26.75) and below (68 -> 76.25), same width
    np.testing.assert_allclose(line.quad, box(a0 - 4, 35 - 8.25, b1 + 4, 68 + 8.25), atol=1e-4)
    np.testing.assert_allclose(line.words[0], quad)
    (word,) = det.detect(img, level="word")
    np.testing.assert_allclose(word.quad, quad)
    edge = box(10, 2, 60, 22)  # grown past the top of the image: clipped to it
    monkeypatch.setattr(det, "_detect_at", lambda rgb, scale, zoom=None: [(edge.copy(), 0.9, [(edge.copy(), 0.9)])])
    (line,) = det.detect(img, level="line")
    np.testing.assert_allclose(line.quad, box(10, 0, 60, 27), atol=1e-4)
    with pytest.raises(ValueError):
        Detector(CTPN(CTPNConfig()), line_margin=-0.1)


def test_any_word_cut_plugs_into_the_detector(monkeypatch):
    """The detector only needs the WordCut interface: cut(), name, rules."""
    img, ((a0, _), (_, b1)) = text_image(["HOTEL", "PARIS"])
    quad = box(a0 - 4, 35, b1 + 4, 68)

    class Thirds:
        name, rules = "thirds", None

        def cut(self, image, quads):
            out = []
            for q in quads:
                x0, x1 = q[:, 0].min(), q[:, 0].max()
                edges = np.linspace(x0, x1, 4)
                out.append([box(edges[i], q[:, 1].min(), edges[i + 1], q[:, 1].max()) for i in range(3)])
            return out

    det = Detector(CTPN(CTPNConfig()), word_split=Thirds())
    monkeypatch.setattr(det, "_detect_at", lambda rgb, scale, zoom=None: [(quad.copy(), 0.9, [(quad.copy(), 0.9)])])
    (line,) = det.detect(img, level="line")
    assert len(line.words) == 3
    with pytest.raises(ValueError, match="word_split"):
        Detector(CTPN(CTPNConfig()), word_split="learned")


def test_detector_and_load_agree_on_the_word_cut_and_the_splitter_keeps_its_settings(tmp_path):
    from dataclasses import asdict, replace

    from scenetext import checkpoint
    from scenetext.detection.predictor import default_word_split
    from scenetext.detection.splitter import SplitConfig, WordSplitter
    from scenetext.shipped import model_path

    made = Detector(CTPN(CTPNConfig())).word_split
    loaded = Detector.load().word_split
    assert type(made) is type(loaded) is type(default_word_split())
    stored = replace(SplitConfig(), threshold=0.55, min_word=0.3)
    out = checkpoint.export_weights(model_path("wordsplit"), tmp_path / "w.pt", settings=asdict(stored))
    assert WordSplitter.load(out).config == stored
    assert WordSplitter.load(out, config=SplitConfig()).config == SplitConfig()
