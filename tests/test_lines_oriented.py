"""The oriented line builder (scenetext/detection/oriented.py) on hand-made proposal sets.

Proposals are made the way the detector is trained to give them: each text quad is cut into
16-px columns (as its training targets are), a column counts when the text covers at least
half of it, and a column's slice taller than :data:`MAX_SLICE` (the tallest anchors) comes as
overlapping slices stacked in the column, as the shipped detector gives on steep text.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shapely.geometry import box

from scenetext import checkpoint
from scenetext.crop import quad_size, reading_order
from scenetext.detection.lines import LineConfig
from scenetext.detection.model import CTPN
from scenetext.detection.oriented import (
    OrientedConfig,
    build_oriented,
    column_runs,
    connect_oriented,
    grow_across,
    text_shape,
)
from scenetext.detection.predictor import Detector
from scenetext.detection.proposals import Proposals
from scenetext.train.det_targets import slice_regions
from scenetext.evaluation.iou import polygon

PLAIN = LineConfig(side_refinement=False)
MAX_SLICE = 200.0
STEP = 130.0  # stacked slices start about this far apart (IoU about 0.2: slice NMS at 0.3 keeps them)
HEIGHT = 32.0


def text_quad(centre, length, height, angle):
    """A text rectangle clockwise from its top-left; ``angle`` in degrees counter-clockwise on
    screen (rising to the right), so 90 is text reading upwards."""
    a = np.radians(angle)
    along, across = np.array([np.cos(a), -np.sin(a)]), np.array([np.sin(a), np.cos(a)])
    c = np.asarray(centre, float)
    half_l, half_h = along * length / 2, across * height / 2
    return np.array([c - half_l - half_h, c + half_l - half_h, c + half_l + half_h, c - half_l + half_h], np.float32)


def column_slices(quads, width=1200):
    """Proposals of the text ``quads``: per 16-px column covered at least half by a quad, the y
    range of the quad inside the column, stacked where tall."""
    boxes = []
    for quad in quads:
        text = polygon(quad)
        for col in range(width // 16):
            part = text.intersection(box(col * 16.0, -1e4, col * 16.0 + 16, 1e4))
            if part.is_empty or part.bounds[2] - part.bounds[0] < 8:
                continue
            x0, y0, y1 = col * 16.0, part.bounds[1], part.bounds[3]
            count = 1 if y1 - y0 <= MAX_SLICE else max(2, round((y1 - y0 - MAX_SLICE) / STEP) + 1)
            tops = np.linspace(y0, max(y1 - MAX_SLICE, y0), count)
            boxes += [[x0, top, x0 + 16, min(top + MAX_SLICE, y1)] for top in tops]
    boxes = np.asarray(boxes, np.float32)
    return Proposals(boxes, np.full(len(boxes), 0.95, np.float32), (boxes[:, 0] + 8).astype(np.float32))


def long_edge_angle(quad):
    """Direction of the quad's longer pair of edges, degrees in [0, 180) counter-clockwise on screen."""
    q = np.asarray(quad, float)
    edges = [q[1] - q[0], q[2] - q[1]]
    edge = max(edges, key=np.linalg.norm)
    return float(np.degrees(np.arctan2(-edge[1], edge[0])) % 180)


def angle_error(a, b):
    d = abs(a - b) % 180
    return min(d, 180 - d)


def covered(inner, outer):
    """Share of polygon ``inner``'s area inside ``outer``."""
    p = polygon(inner)
    return p.intersection(polygon(outer)).area / p.area


def iou(a, b):
    pa, pb = polygon(a), polygon(b)
    return pa.intersection(pb).area / pa.union(pb).area


def clockwise(quad):
    """Clockwise on screen (y down): positive shoelace area."""
    x, y = np.asarray(quad, float).T
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) > 0


ANGLES = [0, 30, 45, 60, 75, 90, -30, -60]


@pytest.mark.parametrize("angle", ANGLES)
def test_one_line_at_any_angle_gives_a_rotated_quad(angle):
    truth = text_quad((600, 600), 320, HEIGHT, angle)
    proposals = column_slices([truth])
    found = connect_oriented(proposals, PLAIN)
    assert len(found) == 1
    quad, score, words = found[0]
    assert quad.shape == (4, 2) and quad.dtype == np.float32 and clockwise(quad)
    assert angle_error(long_edge_angle(quad), angle) < 3
    assert covered(truth, quad) > 0.95  # the text is inside the line...
    assert iou(truth, quad) > 0.65  # ...which is not its bounding box (a 60-degree line's is 4x larger)
    centres = (proposals.boxes[:, :2] + proposals.boxes[:, 2:]) / 2
    assert all(polygon(quad).buffer(0.5).contains(polygon(np.tile(c, (4, 1)) + [[0, 0], [1e-3, 0], [1e-3, 1e-3], [0, 1e-3]]))
               for c in centres)  # every proposal's centre lies on it
    assert len(words) == 1 and np.allclose(words[0][0], quad)


@pytest.mark.parametrize("angle", [0, 30, 60])
def test_a_line_within_the_vertical_angle_starts_at_the_texts_top_left(angle):
    truth = text_quad((600, 600), 320, HEIGHT, angle)
    quad = connect_oriented(column_slices([truth]), PLAIN)[0][0]
    assert np.linalg.norm(quad - truth, axis=1).max() < HEIGHT  # corner by corner
    assert np.allclose(reading_order(quad), quad)  # read along its first edge


@pytest.mark.parametrize("angle", [90, -90, 85])
def test_a_vertical_line_is_a_tall_quad_read_top_to_bottom(angle):
    truth = text_quad((600, 600), 320, HEIGHT, angle)
    quad = connect_oriented(column_slices([truth]), PLAIN)[0][0]
    width, height = quad_size(quad)
    assert height > 1.5 * width  # scenetext.crop reads it as text rotated 90 degrees clockwise
    assert quad[0, 0] < quad[1, 0] and quad[0, 1] < quad[3, 1]  # image top-left first
    text = reading_order(quad)  # the crop's corner order: along the text, which runs downwards
    assert text[1, 1] - text[0, 1] > 0.9 * np.linalg.norm(text[1] - text[0])


def test_stacked_slices_of_a_column_become_one_run():
    proposals = column_slices([text_quad((600, 600), 480, HEIGHT, 90)])
    assert len(proposals) >= 3 * len(np.unique(proposals.boxes[:, 0]))  # stacks of slices per column
    runs = column_runs(proposals.boxes, proposals.scores, OrientedConfig())
    assert len(runs) == len(np.unique(proposals.boxes[:, 0]))
    assert np.allclose(runs.boxes[:, 3] - runs.boxes[:, 1], 480, atol=1)
    nested = np.array([[0, 100, 16, 140], [0, 104, 16, 136]], np.float32)  # a slice inside another: no stack
    assert len(column_runs(nested, np.ones(2, np.float32), OrientedConfig())) == 2


@pytest.mark.parametrize("angle", [0, 30, 60, 90])
def test_parallel_lines_are_not_merged(angle):
    a = np.radians(angle)
    across = np.array([np.sin(a), np.cos(a)])
    offset = across * HEIGHT * 1.5  # a gap of half a text height between them
    truths = [text_quad(np.array([600, 600]) - offset, 320, HEIGHT, angle),
              text_quad(np.array([600, 600]) + offset, 320, HEIGHT, angle)]
    found = connect_oriented(column_slices(truths), PLAIN)
    assert len(found) == 2
    for truth in truths:
        best = max(found, key=lambda f: iou(truth, f[0]))[0]
        assert iou(truth, best) > 0.6 and angle_error(long_edge_angle(best), angle) < 3


def two_words(angle, gap):
    """Two 160-px words on one axis, ``gap`` text heights apart, and the whole line's quad."""
    a = np.radians(angle)
    along = np.array([np.cos(a), -np.sin(a)])
    shift = along * (160 + gap * HEIGHT) / 2
    centre = np.array([600.0, 600.0])
    words = [text_quad(centre - shift, 160, HEIGHT, angle), text_quad(centre + shift, 160, HEIGHT, angle)]
    return words, text_quad(centre, 320 + gap * HEIGHT, HEIGHT, angle)


@pytest.mark.parametrize("angle", [0, 30, 60, 90])
def test_a_modest_gap_along_the_axis_keeps_one_line_of_two_words(angle):
    words, line = two_words(angle, gap=1.2)
    found = connect_oriented(column_slices(words), PLAIN)
    assert len(found) == 1
    quad, _, word_boxes = found[0]
    assert covered(line, quad) > 0.95 and angle_error(long_edge_angle(quad), angle) < 3
    assert len(word_boxes) == 2
    for truth, (box, _) in zip(sorted(words, key=lambda w: w.mean(axis=0)[1] if abs(angle) >= 75 else w.mean(axis=0)[0]),
                               word_boxes):
        assert iou(truth, box) > 0.6  # in reading order


@pytest.mark.parametrize("angle", [0, 30, 60, 90])
def test_a_wide_gap_along_the_axis_splits_the_line(angle):
    words, _ = two_words(angle, gap=3.5)
    found = connect_oriented(column_slices(words), PLAIN)
    assert len(found) == 2
    for truth in words:
        assert max(iou(truth, f[0]) for f in found) > 0.6


def test_the_gap_bound_is_a_setting_in_text_heights():
    words, _ = two_words(30, gap=3.0)
    proposals = column_slices(words)
    assert len(build_oriented(proposals, PLAIN, OrientedConfig(max_gap=3.5))) == 1
    assert len(build_oriented(proposals, PLAIN, OrientedConfig(max_gap=1.5))) == 2


def test_a_curved_baseline_is_covered():
    # An arc: the centre line sags 24 px (0.75 text heights) over 480 px.
    x = np.arange(360, 840, 16, dtype=np.float64)
    centre = lambda v: 600 + 24 * ((v - 600) / 240) ** 2 - 24  # noqa: E731
    lo = np.minimum(centre(x), centre(x + 16)) - HEIGHT / 2
    hi = np.maximum(centre(x), centre(x + 16)) + HEIGHT / 2
    boxes = np.stack([x, lo, x + 16, hi], axis=1).astype(np.float32)
    proposals = Proposals(boxes, np.full(len(x), 0.95, np.float32), (x + 8).astype(np.float32))
    found = connect_oriented(proposals, PLAIN)
    assert len(found) == 1
    quad = found[0][0]
    assert angle_error(long_edge_angle(quad), 0) < 2
    for box in boxes:
        x0, y0, x1, y1 = box
        assert covered(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), quad) > 0.99


def test_text_shape_takes_the_slant_out_of_a_slice():
    slope = np.tan(np.radians(60))
    box = np.array([[0, 100, 16, 100 + 16 * slope + 64]])
    shape = text_shape(box, slope)[0]
    # Descending to the right: the top edge falls by 16 * slope across the column.
    assert np.allclose(shape[:, 1], [100, 100 + 16 * slope, box[0, 3], box[0, 3] - 16 * slope])
    assert np.allclose(text_shape(box, 0.0)[0], [[0, 100], [16, 100], [16, box[0, 3]], [0, box[0, 3]]])
    low = np.array([[0, 100, 16, 120]])  # a piece lower than its column's rise: its own box
    assert np.allclose(text_shape(low, slope)[0], [[0, 100], [16, 100], [16, 120], [0, 120]])


def test_grow_across_grows_a_vertical_quad_sideways():
    tall = np.array([[100, 100], [132, 100], [132, 420], [100, 420]], np.float32)
    assert np.allclose(grow_across(tall, 0.25), [[92, 100], [140, 100], [140, 420], [92, 420]])
    wide = np.array([[100, 100], [420, 100], [420, 132], [100, 132]], np.float32)
    assert np.allclose(grow_across(wide, 0.25), [[100, 92], [420, 92], [420, 140], [100, 140]])


def test_detector_line_builder_is_a_setting_and_columns_by_default(tmp_path):
    torch.manual_seed(0)
    model = CTPN()
    trained = tmp_path / "last.pt"
    checkpoint.save(trained, {"kind": "ctpn", "config": model.config.to_dict(), "state_dict": model.state_dict()})
    plain = checkpoint.export_weights(trained, tmp_path / "plain.pt")
    oriented = checkpoint.export_weights(trained, tmp_path / "oriented.pt", settings={"line_builder": "oriented"})
    assert Detector.load(plain, word_split=None).line_builder == "columns"
    detector = Detector.load(oriented, word_split=None, score_threshold=0.0)
    assert detector.line_builder == "oriented"
    assert Detector.load(oriented, word_split=None, line_builder="columns").line_builder == "columns"
    rgb = np.random.default_rng(0).integers(0, 255, (200, 320, 3), dtype=np.uint8)
    for found in detector.detect(rgb):
        assert found.quad.shape == (4, 2) and (found.quad >= 0).all() and (found.quad <= [320, 200]).all()
    with pytest.raises(ValueError):
        Detector(model, line_builder="diagonal")
