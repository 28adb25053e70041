"""The learned word splitter: frame labels, runs -> words, detector integration, its training data."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from scenetext.crop import crop_line, quad_size
from scenetext.synth.render_lines import FRAME, LineSpanRenderer, frame_labels
from scenetext.detection.model import CTPN, CTPNConfig
from scenetext.detection.predictor import Detector
from scenetext.detection.splitter import PAD_X, SplitConfig, WordSplitter, word_runs
from scenetext.train.splitter import box_labels, collate, frame_loss, prepared
from scenetext.recognition.model import CRNN, CRNNConfig
from scenetext.recognition.preprocess import target_width


def box(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


@dataclass
class Gt:
    points: np.ndarray
    ignore: bool = False


def test_frame_labels_mark_frames_whose_centre_is_inside_a_span():
    # Frames of 4 columns: centres 2, 6, 10, 14, 18, 22.
    labels = frame_labels([(4, 12), (16.5, 30)], 24)
    assert labels.tolist() == [0, 1, 1, 0, 1, 1]
    assert frame_labels([], 3).tolist() == [0]  # at least one frame


def test_word_runs_cut_at_gaps_and_drop_specks():
    prob = np.array([0.1, 0.9, 0.9, 0.9, 0.2, 0.8, 0.8, 0.8, 0.1, 0.7, 0.1])
    cfg = SplitConfig(threshold=0.5, min_gap=0.0, min_word=0.25)
    # Height 32: min_word 8 px = 2 frames, so the one-frame run at 9 is a speck.
    assert word_runs(prob, 32.0, cfg) == [(4, 16), (20, 32)]
    # Gaps of one frame (4 px) are bridged when min_gap is 0.2 x 32 = 6.4 px: the speck joins too.
    assert word_runs(prob, 32.0, SplitConfig(min_gap=0.2, min_word=0.25)) == [(4, 40)]
    assert word_runs(np.full(5, 0.2), 32.0, cfg) == []


def _tagger(seed: int = 0) -> CRNN:
    torch.manual_seed(seed)
    return CRNN(CRNNConfig(variant="fast", classes=2)).eval()


def test_a_two_class_crnn_tags_every_frame():
    model = _tagger()
    out = model(torch.zeros(3, 1, 32, 64), torch.tensor([64, 40, 8]))
    assert out.shape == (16, 3, 2)
    assert torch.allclose(out.exp().sum(-1), torch.ones(16, 3), atol=1e-5)


class _Fixed(WordSplitter):
    """A splitter whose network output is replaced by given per-frame probabilities."""

    def __init__(self, probs, config=SplitConfig()):
        super().__init__(_tagger(), config)
        self.probs = probs

    def word_probs(self, crops):
        # As many frames as the network gives: the crop is read at a width that is a multiple of 4.
        return [self.probs(target_width(c.shape[1], c.shape[0]) // FRAME) for c in crops]


def test_split_maps_runs_back_to_image_quads_and_drops_empty_boxes():
    image = np.full((100, 400, 3), 200, np.uint8)
    quad = box(50, 40, 290, 64)  # 240 x 24: crop of height 32 is 320 + 2 * 0.3 * 32 wide

    def two_words(n):  # frames 0-39 a word, 40-44 a gap, 45- a word
        p = np.zeros(n)
        p[:40] = 0.9
        p[45:] = 0.9
        return p

    (left, right), = _Fixed(two_words).split(image, [quad])
    crop = crop_line(image, quad, pad_x=PAD_X, pad_y=0.0, min_height=32, max_height=32)
    scale = 240 / (crop.inner[2] - crop.inner[0])  # image px per crop px
    # Word ends land where the frames said, in image pixels, over the box's own height.
    assert left[:, 0].min() == pytest.approx(50 - crop.inner[0] * scale, abs=1.0)
    assert left[:, 0].max() == pytest.approx(50 + (160 - crop.inner[0]) * scale, abs=1.0)
    assert right[:, 0].min() == pytest.approx(50 + (180 - crop.inner[0]) * scale, abs=1.0)
    assert left[:, 1].min() == pytest.approx(40, abs=0.5) and left[:, 1].max() == pytest.approx(64, abs=0.5)
    assert _Fixed(lambda n: np.zeros(n)).split(image, [quad]) == [[]]
    kept = _Fixed(lambda n: np.zeros(n), SplitConfig(drop_empty=False)).split(image, [quad])
    assert np.allclose(kept[0][0], quad)
    # Vertical boxes are left whole.
    tall = box(10, 10, 30, 90)
    assert np.allclose(_Fixed(lambda n: np.zeros(n)).split(image, [tall])[0][0], tall)


def test_detector_with_a_splitter_returns_clipped_word_boxes(shared_data):
    from scenetext.imageio import load_image

    image = load_image(sorted((shared_data / "det/ic03_train/images").glob("*.jpg"))[0])
    torch.manual_seed(0)
    model = CTPN(CTPNConfig()).eval()
    half = _Fixed(lambda n: np.r_[np.full(n // 2, 0.9), np.zeros(n - n // 2)])
    det = Detector(model, scales=(600,), max_side=1000, score_threshold=0.0, word_split=half)
    lines = det.detect(image, level="line")
    words = det.detect(image, level="word")
    assert len(words) == sum(len(line.words) for line in lines)
    h, w = image.shape[:2]
    for found in words:
        assert found.quad.shape == (4, 2)
        assert (found.quad >= 0).all() and (found.quad[:, 0] <= w).all() and (found.quad[:, 1] <= h).all()
    # A splitter that finds no word anywhere leaves only boxes it does not read (taller than wide).
    none = Detector(model, scales=(600,), max_side=1000, score_threshold=0.0, word_split=_Fixed(lambda n: np.zeros(n)))
    left = none.detect(image, level="word")
    assert len(left) < len(words)
    assert all(quad_size(found.quad)[0] <= quad_size(found.quad)[1] for found in left)
    assert len(none.detect(image, level="line")) < len(lines)


def test_box_labels_follow_the_ground_truth_words_inside_a_crop():
    image = np.full((100, 500, 3), 200, np.uint8)
    quad = box(100, 40, 340, 64)
    crop = crop_line(image, quad, pad_x=PAD_X, pad_y=0.0, min_height=32, max_height=32)
    width = crop.image.shape[1] // 4 * 4
    words = [Gt(box(110, 41, 200, 63)), Gt(box(230, 40, 330, 65)), Gt(box(100, 0, 340, 20)),
             Gt(box(205, 40, 225, 64), ignore=True)]
    labels = box_labels(crop, words, width)
    assert len(labels) == width // 4
    # Crop column of an image x on the line: inner start + (x - 100) * crop px per image px.
    to_col = lambda x: crop.inner[0] + (x - 100) * (crop.inner[2] - crop.inner[0]) / 240
    frame = lambda x: int(to_col(x) * width / crop.image.shape[1] // 4)
    assert labels[frame(150)] == 1 and labels[frame(280)] == 1
    assert labels[frame(215)] == -1  # the ### region
    assert labels[frame(104)] == 0 and labels[frame(336)] == 0
    assert labels[0] == 0 and labels[-1] == 0  # the off-line region above never counts


def test_rendered_lines_are_labelled_where_their_words_are():
    renderer = LineSpanRenderer()
    positives = 0
    for seed in range(12):
        image, labels = renderer.render(random.Random(seed))
        assert image.shape[0] == 32 and image.shape[1] % 4 == 0
        assert len(labels) == image.shape[1] // FRAME
        assert set(np.unique(labels)) <= {0, 1}
        positives += int(labels.sum() > 0)
    assert positives >= 6  # most samples hold text (10 % are background only)


def test_training_loss_falls_on_a_fixed_batch():
    renderer = LineSpanRenderer()
    items = [prepared(*renderer.render(random.Random(s))) for s in range(8)]
    x, widths, labels = collate(items)
    torch.manual_seed(0)
    model = CRNN(CRNNConfig(variant="fast", classes=2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = float(frame_loss(model, x, widths, labels).detach())
    for _ in range(30):
        opt.zero_grad()
        loss = frame_loss(model, x, widths, labels)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.6 * first


def test_shipped_splitter_separates_tightly_set_words_and_drops_blank_boxes():
    """The shipped weights on drawn text: two words one narrow space apart come out as two boxes,
    each over its own word; a box on a plain wall gives no word."""
    import cv2

    splitter = WordSplitter.load()
    image = np.full((120, 520, 3), 225, np.uint8)
    font, scale, thick = cv2.FONT_HERSHEY_DUPLEX, 1.0, 2
    (w1, _), _ = cv2.getTextSize("TOAST", font, scale, thick)
    space = 9  # ~0.4 x the 22-px cap height: no blank 16-px column anywhere
    cv2.putText(image, "TOAST", (40, 70), font, scale, (30, 30, 30), thick, cv2.LINE_AA)
    cv2.putText(image, "BOX", (40 + w1 + space, 70), font, scale, (30, 30, 30), thick, cv2.LINE_AA)
    (w2, _), _ = cv2.getTextSize("BOX", font, scale, thick)
    right_end = 40 + w1 + space + w2
    (words,) = splitter.split(image, [box(34, 44, right_end + 6, 76)])
    assert len(words) == 2
    left, right = words
    gap = (40 + w1, 40 + w1 + space)
    assert left[:, 0].min() < 48 and gap[0] - 4 <= left[:, 0].max() <= gap[1] + 4
    assert gap[0] - 4 <= right[:, 0].min() <= gap[1] + 4 and right[:, 0].max() > right_end - 8
    assert splitter.split(image, [box(40, 85, 300, 115)]) == [[]]


def test_lines_are_cut_at_spaces_wider_than_the_line_gap():
    from scenetext.detection.predictor import _word_groups

    # Words 20 px high: spaces of 6 px (0.3 h) and 50 px (2.5 h).
    words = [box(0, 0, 40, 20), box(46, 0, 90, 20), box(140, 0, 200, 20)]
    assert [len(g) for g in _word_groups(words, 1.0)] == [2, 1]
    assert [len(g) for g in _word_groups(words, 3.0)] == [3]
    assert [len(g) for g in _word_groups(words, None)] == [3]
    # A slanted line: the space is measured along the words' direction.
    turn = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]], np.float32)
    slanted = [w @ turn.T for w in words]
    assert [len(g) for g in _word_groups(slanted, 1.0)] == [2, 1]
