"""CTPN detector: anchors, targets, loss, proposals, line construction and the model's shapes.

Hand-made cases only; no training.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from scenetext import checkpoint
from scenetext.data.formats import Region
from scenetext.detection.anchors import (
    ANCHOR_HEIGHTS,
    decode_side,
    decode_vertical,
    encode_side,
    encode_vertical,
    feature_size,
    make_anchors,
)
from scenetext.detection.lines import (
    LineConfig,
    build_lines,
    connect,
    link_proposals,
    nms_quads,
    split_words,
)
from scenetext.train.det_loss import LossConfig, ctpn_loss, hard_negative_loss
from scenetext.detection.model import CTPN, MEAN, STD, CTPNConfig, normalize
from scenetext.detection.predictor import Detector
from scenetext.detection.proposals import Proposals, decode_proposals, slice_nms
from scenetext.train.det_targets import (
    IGNORE,
    NEGATIVE,
    POSITIVE,
    TargetConfig,
    build_targets,
    label_anchors,
    slice_regions,
)
from scenetext.evaluation.iou import polygon
from scenetext.nn import fold_batchnorm


def box_region(x0, y0, x1, y1, text="word"):
    return Region(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), text)


def anchor_boxes(shape):
    return make_anchors(*shape[:2]).reshape(-1, 4)


# --------------------------------------------------------------------------- anchors


def test_anchor_grid():
    anchors = make_anchors(2, 3)
    assert anchors.shape == (2, 3, 10, 4)
    assert np.allclose(anchors[1, 2, :, 0], 32) and np.allclose(anchors[1, 2, :, 2], 48)
    assert np.allclose(anchors[1, 2, :, 3] - anchors[1, 2, :, 1], ANCHOR_HEIGHTS)
    assert np.allclose((anchors[1, 2, :, 1] + anchors[1, 2, :, 3]) / 2, 24)
    assert feature_size(600, 1067) == (38, 67)


def test_vertical_and_side_round_trip():
    rng = np.random.default_rng(0)
    anchor_cy, anchor_h = rng.uniform(0, 600, 50), rng.choice(ANCHOR_HEIGHTS, 50)
    cy, h = rng.uniform(0, 600, 50), rng.uniform(2, 300, 50)
    back_cy, back_h = decode_vertical(anchor_cy, anchor_h, encode_vertical(anchor_cy, anchor_h, cy, h))
    assert np.allclose(back_cy, cy, atol=1e-3) and np.allclose(back_h, h, rtol=1e-5)
    x = rng.uniform(0, 1000, 50)
    assert np.allclose(decode_side(anchor_cy, encode_side(anchor_cy, x)), x, atol=1e-3)


# --------------------------------------------------------------------------- targets


def test_axis_aligned_box_targets():
    box = (32, 40, 96, 63)  # columns 2..5, height 23
    targets = label_anchors([box_region(*box)], (160, 320), TargetConfig())
    positive = targets.labels == POSITIVE
    rows, cols, ks = np.nonzero(positive)
    assert set(cols.tolist()) == {2, 3, 4, 5}
    # Row 3 is centred at y = 56; the anchors of height 16, 23 and 33 there overlap [40, 63] by IoU >= 0.5.
    assert set(rows.tolist()) == {3}
    assert {ANCHOR_HEIGHTS[k] for k in ks} == {16, 23, 33}
    assert (targets.vertical_mask[positive]).all()
    anchors = make_anchors(10, 20)[positive]
    cy, h = decode_vertical((anchors[:, 1] + anchors[:, 3]) / 2, anchors[:, 3] - anchors[:, 1],
                            targets.vertical[positive])
    assert np.allclose(cy - h / 2, 40, atol=1) and np.allclose(cy + h / 2, 63, atol=1)
    # Far from the box everything is background.
    assert (targets.labels[:, 10:] == NEGATIVE).all()


def test_small_text_gets_its_best_anchor():
    targets = label_anchors([box_region(32, 40, 96, 45)], (160, 320), TargetConfig())  # 5 px: IoU < 0.5 everywhere
    rows, cols, ks = np.nonzero(targets.labels == POSITIVE)
    assert cols.tolist() == [2, 3, 4, 5] and {ANCHOR_HEIGHTS[k] for k in ks} == {11}


def test_side_targets_only_near_ends():
    targets = label_anchors([box_region(32, 40, 160, 63)], (160, 320), TargetConfig())
    rows, cols, ks = np.nonzero(targets.side_mask)
    assert set(cols.tolist()) == {2, 3, 8, 9}  # centres within 32 px of x = 32 or x = 160
    cx = cols * 16 + 8.0
    x_side = decode_side(cx, targets.side[rows, cols, ks])
    assert np.allclose(x_side[cols <= 3], 32) and np.allclose(x_side[cols >= 8], 160)


def test_slanted_quadrilateral_columns_follow_slant():
    # Top edge y = 40 + 0.25 * (x - 16), 24 px thick, from x = 16 to 176.
    quad = np.array([[16, 40], [176, 80], [176, 104], [16, 64]], np.float32)
    columns = slice_regions([Region(quad, "slanted")], 320, 200)
    assert columns.col.tolist() == list(range(1, 11))
    x_left = columns.col * 16.0
    assert np.allclose(columns.y0, 40 + 0.25 * (x_left - 16), atol=1e-3)
    assert np.allclose(columns.y1, 64 + 0.25 * (x_left + 16 - 16), atol=1e-3)
    targets = label_anchors([Region(quad, "slanted")], (200, 320), TargetConfig())
    rows, cols, _ = np.nonzero(targets.labels == POSITIVE)
    mean_row = [rows[cols == c].mean() for c in range(1, 11)]
    assert mean_row[-1] > mean_row[0] + 1  # positives move down with the line


def test_ignore_region_anchors_are_neither_positive_nor_negative():
    ignored = Region(box_region(160, 40, 240, 63).points, "###")
    targets = label_anchors([box_region(32, 40, 96, 63), ignored], (160, 320), TargetConfig())
    assert ignored.ignore
    inside = targets.labels[3, 10:15]  # row 3 (centre y 56), columns 10..14
    assert not (inside == POSITIVE).any()
    assert (inside[:, ANCHOR_HEIGHTS.index(23)] == IGNORE).all()
    assert (targets.labels[:, 2:6] == POSITIVE).any()


@pytest.mark.parametrize("region", [
    box_region(32, 40, 96, 40),  # zero height
    box_region(50, 40, 50, 90),  # zero width
    box_region(400, 300, 500, 330),  # outside the image
    box_region(-50, -20, 40, 10),  # partly outside
    Region(np.array([[10, 10], [60, 60], [60, 10], [10, 60]], np.float32), "bow-tie"),
])
def test_degenerate_regions_give_finite_targets(region):
    targets = build_targets([region], (160, 320), TargetConfig(), np.random.default_rng(0))
    for array in (targets.vertical, targets.side):
        assert np.isfinite(array).all()
    assert set(np.unique(targets.labels).tolist()) <= {IGNORE, NEGATIVE, POSITIVE}


def test_sampling_is_balanced_and_seeded():
    regions = [box_region(16, 16 + 40 * i, 300, 40 + 40 * i) for i in range(3)]
    cfg = TargetConfig(batch_size=64, positive_fraction=0.5)
    a = build_targets(regions, (160, 320), cfg, np.random.default_rng(1))
    b = build_targets(regions, (160, 320), cfg, np.random.default_rng(1))
    assert np.array_equal(a.labels, b.labels)
    assert (a.labels == POSITIVE).sum() == 32 and (a.labels == NEGATIVE).sum() == 32


# --------------------------------------------------------------------------- loss


def _batched(targets):
    return {
        "labels": torch.from_numpy(targets.labels.astype(np.int64))[None],
        "vertical": torch.from_numpy(targets.vertical)[None],
        "vertical_mask": torch.from_numpy(targets.vertical_mask)[None],
        "side": torch.from_numpy(targets.side)[None],
        "side_mask": torch.from_numpy(targets.side_mask)[None],
        "negatives": torch.from_numpy(targets.negatives)[None],
    }


@pytest.mark.parametrize("regions", [[], [box_region(32, 40, 96, 63)]])
def test_loss_is_finite(regions):
    model = CTPN()
    out = model(torch.zeros(1, 3, 160, 320))
    targets = _batched(build_targets(regions, (160, 320), TargetConfig(), np.random.default_rng(0)))
    losses = ctpn_loss(out, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    if not regions:
        assert losses["vertical"] == 0 and losses["side"] == 0
    empty = {k: torch.zeros_like(v) - 1 if k == "labels" else torch.zeros_like(v) for k, v in targets.items()}
    assert torch.isfinite(ctpn_loss(model(torch.zeros(1, 3, 160, 320)), empty)["loss"])


def test_hard_negative_loss_takes_each_images_worst_background_anchors():
    ce = torch.tensor([[5.0, 1.0, 3.0, 2.0, 9.0], [0.5, 4.0, 0.1, 0.2, 0.3]], requires_grad=True)
    negatives = torch.tensor([[True, True, True, True, False], [False, False, True, False, False]])
    loss = hard_negative_loss(ce, negatives, k=2)
    # image 0: 5 and 3 (9 is not background); image 1 has one background anchor: 0.1
    assert loss.item() == pytest.approx((5 + 3 + 0.1) / 3)
    loss.backward()
    assert ce.grad[0].tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 0]) and ce.grad[1, 2] == pytest.approx(1 / 3)
    none = hard_negative_loss(ce, torch.zeros_like(negatives), k=2)
    assert none.item() == 0 and none.requires_grad


def test_loss_with_hard_negatives_adds_a_term_only_when_asked():
    model = CTPN()
    out = model(torch.rand(1, 3, 160, 320))
    targets = _batched(build_targets([box_region(32, 40, 96, 63)], (160, 320), TargetConfig(),
                                     np.random.default_rng(0)))
    assert targets["negatives"].sum() > (targets["labels"] == 0).sum()  # more than the sampled ones
    plain = ctpn_loss(out, targets)
    mined = ctpn_loss(out, targets, LossConfig(hard_negatives=64))
    assert "hard" not in plain
    ce = torch.nn.functional.cross_entropy(out["scores"].reshape(-1, 2), torch.zeros(out["scores"][..., 0].numel(),
                                           dtype=torch.long), reduction="none")
    sampled_negatives = ce[(targets["labels"] == 0).reshape(-1)]
    assert mined["hard"] >= sampled_negatives.mean()  # the worst 64 are at least as bad as a random draw
    assert mined["loss"].item() == pytest.approx((plain["loss"] + mined["hard"]).item(), rel=1e-6)


# --------------------------------------------------------------------------- proposals


def reference_nms(boxes, scores, threshold):
    """Textbook greedy NMS with 2-D IoU."""
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        ok = True
        for k in keep:
            w = max(0.0, min(boxes[i, 2], boxes[k, 2]) - max(boxes[i, 0], boxes[k, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[k, 3]) - max(boxes[i, 1], boxes[k, 1]))
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            union = area(boxes[i]) + area(boxes[k]) - w * h
            ok &= union <= 0 or w * h / union <= threshold
        if ok:
            keep.append(i)
    return keep


def test_slice_nms():
    boxes = np.array([[0, 0, 16, 30], [0, 2, 16, 32], [0, 40, 16, 70], [16, 0, 32, 30]], np.float32)
    scores = np.array([0.9, 0.95, 0.8, 0.7], np.float32)
    assert slice_nms(boxes, scores, 0.3).tolist() == [1, 2, 3]
    assert slice_nms(boxes, scores, 0.99).tolist() == [1, 0, 2, 3]
    assert slice_nms(boxes[:0], scores[:0], 0.3).tolist() == []
    rng = np.random.default_rng(0)
    cols, top = rng.integers(0, 6, 300), rng.uniform(0, 200, 300)
    boxes = np.stack([cols * 16, top, cols * 16 + 16, top + rng.uniform(5, 60, 300)], axis=1).astype(np.float32)
    scores = rng.random(300).astype(np.float32)
    assert slice_nms(boxes, scores, 0.3).tolist() == reference_nms(boxes, scores, 0.3)


def _ideal_outputs(targets):
    """Logits that reproduce the (unsampled) targets exactly."""
    text = (targets.labels == POSITIVE) & targets.vertical_mask
    scores = np.where(text[..., None], [-5.0, 5.0], [5.0, -5.0]).astype(np.float32)
    return scores, targets.vertical, targets.side


@pytest.mark.parametrize("quad", [
    [[40, 50], [200, 50], [200, 75], [40, 75]],  # on the grid
    [[37, 50], [133, 50], [133, 61], [37, 61]],  # ends between grid lines: side refinement
    [[16, 40], [176, 80], [176, 104], [16, 64]],  # slanted
    [[30, 50], [290, 20], [292, 50], [32, 80]],  # slanted the other way, rotated ends
])
def test_targets_decode_back_to_the_region(quad):
    """Outputs equal to the targets give back the region through proposals and line building."""
    region = Region(np.array(quad, np.float32), "line")
    targets = label_anchors([region], (160, 320), TargetConfig())
    proposals = decode_proposals(*_ideal_outputs(targets), (160, 320))
    found = connect(proposals, LineConfig(normalize_scores=False))
    assert len(found) == 1
    detected, truth = polygon(found[0][0]), polygon(region.points)
    assert detected.intersection(truth).area / detected.union(truth).area > 0.98


# --------------------------------------------------------------------------- lines


def make_proposals(columns, top, bottom, scores=None, side_x=None):
    """One proposal per column with the given top/bottom y (scalars or per column)."""
    columns = np.asarray(columns)
    x0 = columns * 16.0
    top, bottom = np.broadcast_to(top, x0.shape), np.broadcast_to(bottom, x0.shape)
    boxes = np.stack([x0, top, x0 + 16, bottom], axis=1).astype(np.float32)
    scores = np.full(len(x0), 0.95, np.float32) if scores is None else np.asarray(scores, np.float32)
    side_x = (x0 + 8).astype(np.float32) if side_x is None else np.asarray(side_x, np.float32)
    return Proposals(boxes, scores, side_x)


def concat(*parts):
    return Proposals(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("boxes", "scores", "side_x")))


NOISE = make_proposals([60], 300, 310, scores=[0.71])  # a lone weak proposal, as in real outputs
PLAIN = LineConfig(side_refinement=False)  # make_proposals gives no side predictions


def test_horizontal_chain_gives_one_line():
    line = make_proposals(range(5, 16), 100, 124, scores=np.linspace(0.9, 0.99, 11))
    found = connect(concat(line, NOISE), PLAIN)
    assert len(found) == 1
    quad, score = found[0]
    assert np.allclose(quad, [[80, 100], [256, 100], [256, 124], [80, 124]], atol=1e-3)
    assert 0.7 <= score <= 1


def test_side_refinement_moves_the_ends():
    side_x = np.arange(5, 16) * 16.0 + 8
    side_x[0], side_x[-1] = 84, 250
    found = connect(concat(make_proposals(range(5, 16), 100, 124, side_x=side_x), NOISE))
    quad, _ = found[0]
    assert quad[0, 0] == pytest.approx(84) and quad[1, 0] == pytest.approx(250)


def test_two_lines_far_apart():
    first = make_proposals(range(2, 12), 40, 64)
    second = make_proposals(range(20, 30), 200, 230)
    found = connect(concat(first, second, NOISE), PLAIN)
    assert len(found) == 2
    tops = sorted(q[0, 1] for q, _ in found)
    assert tops == pytest.approx([40, 200], abs=1e-3)


def test_mismatched_heights_are_not_linked():
    low = make_proposals(range(2, 6), 40, 64)
    tall = make_proposals(range(6, 14), 20, 90)
    assert len(connect(concat(low, tall, NOISE), PLAIN)) == 2


@pytest.mark.parametrize("second", [(3, 20, 90), (40, 40, 64)])  # a neighbour too tall; one too far away
def test_proposals_with_no_linkable_pair_make_no_links(second):
    column, top, bottom = second
    boxes = np.array([[32, 40, 47, 64], [16 * column, top, 16 * column + 15, bottom]], np.float32)
    assert link_proposals(boxes, np.array([0.9, 0.8], np.float32), LineConfig()).tolist() == [-1, -1]
    assert link_proposals(boxes[:1], np.array([0.9], np.float32), LineConfig()).tolist() == [-1]


def test_slanted_chain_gives_slanted_quad():
    slope, columns = 0.25, np.arange(4, 20)
    left = columns * 16.0
    # A proposal spans the slanted text over its whole column: top at the column's left, bottom at its right.
    proposals = make_proposals(columns, 100 + slope * left, 124 + slope * (left + 16))
    found = connect(concat(proposals, NOISE), PLAIN)
    assert len(found) == 1
    quad, _ = found[0]
    assert (quad[1, 1] - quad[0, 1]) / (quad[1, 0] - quad[0, 0]) == pytest.approx(slope, abs=1e-3)
    assert (quad[2, 1] - quad[3, 1]) / (quad[2, 0] - quad[3, 0]) == pytest.approx(slope, abs=1e-3)
    # The fitted edges are the text's edges: y = 100 + slope * x and y = 124 + slope * x.
    assert quad[0, 1] == pytest.approx(100 + slope * quad[0, 0], abs=1e-3)
    assert quad[3, 1] == pytest.approx(124 + slope * quad[3, 0], abs=1e-3)


def test_word_split_at_wide_gap():
    proposals = concat(make_proposals([*range(5, 11), *range(13, 19)], 100, 124), NOISE)
    assert len(connect(proposals, PLAIN, level="line")) == 1
    words = connect(proposals, PLAIN, level="word")
    assert len(words) == 2
    xs = sorted((q[0, 0], q[1, 0]) for q, _ in words)
    assert xs[0] == pytest.approx((80, 176)) and xs[1] == pytest.approx((208, 304))
    line = build_lines(proposals, PLAIN)[0]
    assert len(split_words(line, proposals, gap=2.0)) == 1  # 32 px < 2 x 24 px: one word
    # One empty 16-px column in a 40-px-high line is a word gap by default, not at gap=0.6.
    tall = concat(make_proposals([*range(5, 11), *range(12, 19)], 100, 140), NOISE)
    assert len(connect(tall, PLAIN, level="word")) == 2
    assert len(split_words(build_lines(tall, PLAIN)[0], tall, gap=0.6)) == 1


def test_short_and_weak_lines_are_dropped():
    short = make_proposals([3], 40, 64)  # one proposal, 16 px
    weak = make_proposals(range(20, 30), 100, 124, scores=np.full(10, 0.72))
    strong = make_proposals(range(5, 15), 200, 224, scores=np.full(10, 0.99))
    found = connect(concat(short, weak, strong), PLAIN)
    assert len(found) == 1 and found[0][0][0, 1] == pytest.approx(200)


def test_line_nms():
    quad = np.array([[80, 100], [240, 100], [240, 124], [80, 124]], np.float32)
    quads = [quad, quad + [2, 2], quad + [0, 40], quad + [120, 0]]  # IoU 0.83, 0, 0.14 with the first
    assert nms_quads(quads, np.array([0.9, 0.95, 0.8, 0.7]), 0.3).tolist() == [1, 2, 3]


# --------------------------------------------------------------------------- model


@pytest.mark.parametrize("variant", ["small", "lite"])
@pytest.mark.parametrize("size", [(96, 160), (100, 150)])
def test_model_forward_shapes(size, variant):
    model = CTPN(CTPNConfig(variant=variant)).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, *size))
    h, w = feature_size(*size)
    assert out["scores"].shape == (1, h, w, 10, 2)
    assert out["vertical"].shape == (1, h, w, 10, 2)
    assert out["side"].shape == (1, h, w, 10)


def test_fold_batchnorm_keeps_outputs():
    torch.manual_seed(0)
    model = CTPN().eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        before = model(x)["scores"]
        after = fold_batchnorm(model)(x)["scores"]
    assert torch.allclose(before, after, atol=1e-4)


def test_detector_runs_on_a_photo_sized_image(tmp_path):
    torch.manual_seed(0)
    model = CTPN()
    path = tmp_path / "ctpn.pt"
    checkpoint.save(path, {"kind": "ctpn", "config": model.config.to_dict(), "state_dict": model.state_dict()})
    detector = Detector.load(path, scales=(300, 200), score_threshold=0.0)
    rgb = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    for level in ("line", "word"):
        for found in detector.detect(rgb, level=level):
            assert found.quad.shape == (4, 2) and found.quad.dtype == np.float32
            assert (found.quad >= 0).all() and (found.quad <= [640, 360]).all()
    with pytest.raises(ValueError):
        detector.detect(rgb, level="page")


def test_exported_settings_are_the_detectors_defaults(tmp_path):
    from click.testing import CliRunner

    from scenetext.cli import main
    from scenetext.recognition.model import CRNN, CRNNConfig

    model = CTPN()
    trained = tmp_path / "last.pt"
    checkpoint.save(trained, {"kind": "ctpn", "config": model.config.to_dict(), "state_dict": model.state_dict()})
    runner = CliRunner()
    plain, tuned = tmp_path / "plain.pt", tmp_path / "tuned.pt"
    assert runner.invoke(main, ["export", str(trained), str(plain)]).exit_code == 0
    assert runner.invoke(main, ["export", str(trained), str(tuned), "--score-threshold", "0.55"]).exit_code == 0
    assert Detector.load(plain).score_threshold == 0.7
    assert Detector.load(tuned).score_threshold == pytest.approx(0.55)
    assert Detector.load(tuned, score_threshold=0.9).score_threshold == 0.9  # an explicit argument wins
    assert Detector.load(tuned).lines.min_score == LineConfig().min_score
    lined = tmp_path / "lined.pt"
    assert runner.invoke(main, ["export", str(trained), str(lined), "--line-min-score", "0.4"]).exit_code == 0
    assert Detector.load(lined).lines.min_score == pytest.approx(0.4)
    assert Detector.load(lined, line_min_score=0.6).lines.min_score == pytest.approx(0.6)
    own = LineConfig(word_gap=0.3)
    assert Detector.load(lined, lines=own).lines is own  # a whole LineConfig replaces the stored score
    scaled = tmp_path / "scaled.pt"
    args = ["export", str(trained), str(scaled), "--scale", "900", "--scale", "1200", "--max-side", "1600"]
    assert runner.invoke(main, args).exit_code == 0
    default = Detector.load(plain)
    assert (default.scales, default.max_side) == ((720,), 1280)
    loaded = Detector.load(scaled)
    assert (loaded.scales, loaded.max_side, loaded.score_threshold) == ((900, 1200), 1600, 0.7)
    assert Detector.load(scaled, max_side=1000).max_side == 1000
    from scenetext.detection.predictor import Zoom

    zoomed = tmp_path / "zoomed.pt"
    args = ["export", str(trained), str(zoomed), "--zoom", "1400", "--zoom-threshold", "0.3"]
    assert runner.invoke(main, args).exit_code == 0
    assert Detector.load(zoomed).zoom == Zoom(1400, 0.3) and default.zoom is None
    assert Detector.load(zoomed, zoom=None).zoom is None
    assert runner.invoke(main, ["export", str(trained), str(zoomed), "--zoom-threshold", "0.3"]).exit_code == 2
    margined = tmp_path / "margined.pt"
    assert runner.invoke(main, ["export", str(trained), str(margined), "--line-margin", "0.2"]).exit_code == 0
    assert Detector.load(margined).line_margin == pytest.approx(0.2) and default.line_margin == 0.0
    rec = CRNN(CRNNConfig())
    rec_file = tmp_path / "crnn.pt"
    checkpoint.save(rec_file, {"kind": "crnn", "config": rec.config.to_dict(), "state_dict": rec.state_dict()})
    refused = runner.invoke(main, ["export", str(rec_file), str(tmp_path / "x.pt"), "--score-threshold", "0.5"])
    assert refused.exit_code == 2 and "detector" in refused.output
    refused = runner.invoke(main, ["export", str(rec_file), str(tmp_path / "x.pt"), "--scale", "900"])
    assert refused.exit_code == 2 and "scales" in refused.output
    assert not (tmp_path / "x.pt").exists()


def test_normalized_planes_is_the_normalized_image_in_planes():
    from scenetext.detection.inputs import normalized_planes

    rgb = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    planes = normalized_planes(rgb, pad_to=16)
    assert planes.shape == (1, 3, 48, 64) and planes.flags["C_CONTIGUOUS"]
    expected = (rgb.transpose(2, 0, 1) / 255 - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
    np.testing.assert_allclose(planes[0, :, :37, :53], expected, rtol=0, atol=1e-6)
    assert not planes[:, :, 37:].any() and not planes[:, :, :, 53:].any()  # padded with the mean colour
    np.testing.assert_array_equal(planes, normalize(rgb, pad_to=16).numpy())


def test_normalize_pads_with_the_mean_and_gives_the_model_the_same_input():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    x = normalize(rgb)
    assert x.shape == (2, 3, 37, 53) and x.is_contiguous()
    expected = (torch.from_numpy(rgb).permute(0, 3, 1, 2).float() - torch.tensor(MEAN).view(1, 3, 1, 1) * 255) \
        / (torch.tensor(STD).view(1, 3, 1, 1) * 255)
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)
    padded = normalize(rgb[0], pad_to=16, channels_last=True)
    assert padded.shape == (1, 3, 48, 64) and padded.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(padded[:, :, :37, :53], expected[:1], rtol=0, atol=1e-6)
    assert padded[:, :, 37:].abs().sum() == 0 and padded[:, :, :, 53:].abs().sum() == 0  # the mean colour
    torch.manual_seed(0)
    model = CTPN().eval()
    with torch.no_grad():
        a, b = model(padded), model(expected[:1])  # the model pads an unpadded input itself
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", ["small", "lite"])
@pytest.mark.parametrize("size,strip_rows", [((300, 517), 64), ((333, 90), 40), ((161, 200), 8), ((64, 64), 256)])
def test_the_stem_in_strips_gives_the_one_pass_outputs(size, strip_rows, variant):
    """forward_rgb runs the first layers strip by strip: with strips of many sizes (one, a few,
    many; the last one short; heights that are not multiples of 16) the outputs are those of
    one pass over the padded image."""
    torch.manual_seed(1)
    model = CTPN(CTPNConfig(variant=variant)).eval()
    for module in model.modules():  # BatchNorms with statistics of their own, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    layers, stride, halo = model.stem()
    assert (layers, stride) == (5, 8) and halo % stride == 0 and halo >= 20  # a 39-row receptive field
    rgb = np.random.default_rng(size[0]).integers(0, 256, (*size, 3), dtype=np.uint8)
    with torch.no_grad():
        one = model(normalize(rgb, pad_to=16))
        strips = model.forward_rgb(rgb, strip_rows=strip_rows)
        whole = model.forward_rgb(rgb, strip_rows=None)
    for key in one:
        torch.testing.assert_close(strips[key], one[key], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(whole[key], one[key], rtol=1e-5, atol=1e-5)


def test_zoom_regions_cover_weak_spots_outside_found_lines_on_the_zoomed_grid():
    from scenetext.detection.predictor import Zoom, zoom_regions

    cells = np.zeros((20, 30), np.float32)
    cells[5, 10:13] = 0.3  # a weak spot: three cells at first-scale x 160..208, y 80..96
    cells[15, 2:20] = 0.9  # a found line
    covered = [np.array([32, 240, 320, 256])]
    zoom = Zoom(scale=450, threshold=0.2, margin=1)
    rects = zoom_regions(cells, covered, zoom, (1.5, 1.5), (720, 480))
    # Grown by one cell: first-scale cells x 9..13, y 4..6, i.e. px x 144..224, y 64..112;
    # x1.5 -> 216..336, 96..168, moved out to the 16-px grid (208..336, 96..176), then grown to
    # whole 64-px buckets (128 x 128).
    assert rects == [(208, 96, 336, 224)]
    assert all(v % 16 == 0 for v in rects[0])
    unbucketed = zoom_regions(cells, covered, Zoom(450, threshold=0.2, margin=1, bucket=16), (1.5, 1.5), (720, 480))
    assert unbucketed == [(208, 96, 336, 176)]
    # A region grown past the image's edge moves back inside it, still on the grid.
    edge = np.zeros((20, 30), np.float32)
    edge[19, 0:2] = 0.3
    assert zoom_regions(edge, [], Zoom(450, 0.2, margin=0, bucket=64), (1.5, 1.5), (720, 470)) == [(0, 400, 64, 470)]
    assert zoom_regions(cells, covered, Zoom(450, threshold=0.5), (1.5, 1.5), (720, 480)) == []
    # Two spots whose grown regions overlap become one rectangle.
    cells[7, 14] = 0.3
    assert len(zoom_regions(cells, covered, zoom, (1.5, 1.5), (720, 480))) == 1
    # Regions stop at the zoomed image's edge.
    cells[0, 29] = 0.3
    assert max(r[2] for r in zoom_regions(cells, covered, zoom, (1.5, 1.5), (700, 470))) <= 700


def test_new_lines_skip_pieces_of_lines_already_found():
    from scenetext.detection.predictor import new_lines

    def grouped(x0, y0, x1, y1):
        quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        return quad, 0.9, [(quad, 0.9)]

    found = [grouped(100, 100, 500, 160)]
    piece, beside, overlapping = grouped(120, 110, 300, 150), grouped(100, 300, 200, 320), grouped(450, 100, 600, 160)
    kept = new_lines(found, [piece, beside, overlapping], 0.5)
    # The piece lies inside the found line; the one beside it is new; a third of the last is inside.
    assert [k[0][0, 0] for k in kept] == [100, 450]
    assert new_lines([], [piece], 0.5) == [piece]


def test_zoom_reads_its_regions_like_a_whole_image_pass_at_the_zoomed_scale(monkeypatch):
    from scenetext.detection import predictor
    from scenetext.detection.predictor import Zoom

    torch.manual_seed(0)
    model = CTPN().eval()
    fold_batchnorm(model)
    rgb = np.random.default_rng(0).integers(0, 255, (240, 400, 3), dtype=np.uint8)
    kwargs = dict(max_side=2000, score_threshold=0.5, lines=LineConfig(min_score=0.0), word_split=None)
    two_scales = predictor.Detector(model, scales=(240, 360), **kwargs)
    zoomed = predictor.Detector(model, scales=(240,), zoom=Zoom(360), **kwargs)
    # With the whole zoomed image as the one region, the closer look is the second scale's pass.
    monkeypatch.setattr(predictor, "zoom_regions", lambda cells, covered, zoom, ratio, size: [(0, 0, *size)])
    expected, got = two_scales.detect(rgb), zoomed.detect(rgb)
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        assert np.allclose(a.quad, b.quad, atol=1e-3) and a.score == pytest.approx(b.score)
    # Regions cut from the zoomed image land back where they were read.
    monkeypatch.setattr(predictor, "zoom_regions", lambda cells, covered, zoom, ratio, size: [(0, 0, 32, 32)])
    for found in zoomed.detect(rgb):
        assert (found.quad >= 0).all() and (found.quad <= [400, 240]).all()


def test_grow_vertically_moves_top_and_bottom_along_the_sides():
    from scenetext.detection.lines import grow_vertically

    upright = np.float32([[10, 20], [110, 20], [110, 40], [10, 40]])
    np.testing.assert_allclose(grow_vertically(upright, 0.5), [[10, 10], [110, 10], [110, 50], [10, 50]])
    np.testing.assert_allclose(grow_vertically(upright, 0.0), upright)
    # A slanted parallelogram whose sides lean 3 px right over its 20-px height: grown along them.
    slanted = np.float32([[10, 20], [110, 30], [113, 50], [13, 40]])
    grown = grow_vertically(slanted, 0.25)
    np.testing.assert_allclose(grown, [[9.25, 15], [109.25, 25], [113.75, 55], [13.75, 45]])


def test_a_reading_detector_keeps_the_less_sure_lines_the_detector_alone_drops(monkeypatch, tmp_path):
    from scenetext.reader import Reader

    # Normalised over the image, the weak line scores 0.3: under the detector's 0.4, above 0.2.
    weak = make_proposals(range(20, 30), 100, 124, scores=np.full(10, 0.79))
    strong = make_proposals(range(5, 15), 200, 224, scores=np.full(10, 0.99))
    floor = make_proposals([50], 300, 324, scores=[0.7])  # the image's weakest proposal: normalised to 0
    proposals = concat(weak, strong, floor)
    monkeypatch.setattr(Detector, "_propose", lambda self, image: (proposals, np.zeros((1, 1), np.float32)))
    model = CTPN()
    trained, shipped = tmp_path / "last.pt", tmp_path / "ctpn.pt"
    checkpoint.save(trained, {"kind": "ctpn", "config": model.config.to_dict(), "state_dict": model.state_dict()})
    checkpoint.export_weights(trained, shipped, settings={"line_min_score": 0.4, "read_line_min_score": 0.2,
                                                          "scales": [400], "max_side": 800})
    alone = Detector.load(shipped, word_split=None, lines=replace(PLAIN, min_score=0.4))
    alone.read_line_min_score = 0.2
    rgb = np.zeros((400, 800, 3), np.uint8)
    tops = lambda detector: sorted(round(float(d.quad[0, 1])) for d in detector.detect(rgb))  # noqa: E731
    assert tops(alone) == [200]
    reading = alone.for_reading()
    assert reading is not alone and reading.model is alone.model and reading.lines.min_score == pytest.approx(0.2)
    assert alone.lines.min_score == pytest.approx(0.4)  # the detector itself is left as it was
    assert tops(reading) == [100, 200]
    # The stored settings: the detector on its own keeps its line score, the Reader's runs at the reading one.
    loaded = Detector.load(shipped, word_split=None)
    assert loaded.lines.min_score == pytest.approx(0.4) and loaded.read_line_min_score == pytest.approx(0.2)
    assert Reader(detector_weights=shipped, backend="torch").detector.lines.min_score == pytest.approx(0.2)
    unset = tmp_path / "unset.pt"
    checkpoint.export_weights(trained, unset, settings={"line_min_score": 0.4})
    plain = Detector.load(unset, word_split=None)
    assert plain.for_reading() is plain
    given = Detector.load(shipped, word_split=None)
    assert Reader(detector=given).detector is given  # a detector the caller gives is used as given
    with pytest.raises(ValueError, match="read_line_min_score"):
        Detector(model, read_line_min_score=1.5)


def test_the_lite_variant_shares_every_layer_but_the_early_convs_and_the_window_with_small():
    from scenetext.train.detector import load_matching

    small, lite = CTPN(CTPNConfig(variant="small")), CTPN(CTPNConfig(variant="lite"))
    before = {k: v.clone() for k, v in lite.state_dict().items()}
    taken, total = load_matching(lite, small.state_dict())
    assert 0 < taken < total == len(before)
    shared = {k.split(".")[0] + "." + k.split(".")[1] if k.startswith("backbone") else k.split(".")[0]
              for k, v in small.state_dict().items() if k in before and before[k].shape == v.shape}
    assert {"backbone.0", "backbone.4", "backbone.8", "rnn", "fc", "head"} <= shared
    assert not {"backbone.1", "backbone.2", "backbone.3", "window"} & shared
    for k, v in lite.state_dict().items():
        same_shape = k in small.state_dict() and small.state_dict()[k].shape == v.shape
        assert torch.equal(v, small.state_dict()[k] if same_shape else before[k]), k
    assert sum(p.numel() for p in lite.parameters()) < sum(p.numel() for p in small.parameters())


def test_distill_loss_is_zero_for_the_teachers_own_outputs_and_teaches_only_the_student():
    from scenetext.train.det_loss import distill_loss

    torch.manual_seed(0)
    teacher, student = CTPN().eval(), CTPN().train()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        taught = teacher(x)
    assert float(distill_loss(taught, taught)) == pytest.approx(0.0, abs=1e-6)
    loss = distill_loss(student(x), taught)
    assert float(loss.detach()) > 0
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    # Coordinates count only where the teacher sees text: with no text anywhere they do not.
    no_text = {**taught, "scores": torch.stack([torch.full_like(taught["scores"][..., 0], 20.0),
                                                 torch.full_like(taught["scores"][..., 1], -20.0)], -1)}
    moved = {**no_text, "vertical": no_text["vertical"] + 5.0, "side": no_text["side"] - 5.0}
    assert float(distill_loss(moved, no_text)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("variant", ["small", "lite"])
def test_the_hinted_forward_is_the_forward_and_its_maps_have_one_shape_in_both_variants(variant):
    from scenetext.detection.model import HINT_LAYERS
    from scenetext.train.det_loss import hint_loss

    torch.manual_seed(0)
    model = CTPN(CTPNConfig(variant=variant)).eval()
    x = torch.randn(1, 3, 70, 100)  # padded to 80 x 112 inside
    with torch.no_grad():
        plain = model(x)
        hinted, maps = model.forward_with_hints(x)
    for key in plain:
        torch.testing.assert_close(hinted[key], plain[key])
    assert HINT_LAYERS == 4 and [tuple(m.shape) for m in maps] == [(1, 64, 10, 14), (1, 128, 5, 7)]
    assert float(hint_loss(maps, maps)) == 0.0
    teacher = [torch.randn(2, 64, 10, 14), 3 * torch.randn(2, 128, 5, 7)]
    assert float(hint_loss([2 * t for t in teacher], teacher)) == pytest.approx(2.0, rel=1e-5)  # 1 per map, any scale
