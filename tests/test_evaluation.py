"""Hand-computed cases for the evaluation protocols (recognition, IoU, DetEval, end-to-end)."""

import pytest

from scenetext.evaluation import (
    edit_distance,
    evaluate_deteval,
    evaluate_e2e,
    evaluate_image_deteval,
    evaluate_image_e2e,
    evaluate_image_iou,
    evaluate_iou,
    normalize_standard,
    polygon,
    score_recognition,
    transcription_match,
)


def box(x0, y0, x1, y1):
    """Axis-aligned rectangle as four clockwise (x, y) points."""
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


# --- recognition -------------------------------------------------------------------------------


def test_normalize_standard_lowercases_and_strips_non_alphanumerics():
    assert normalize_standard("Hello, World! 42") == "helloworld42"
    assert normalize_standard("Café-Ü") == "caf"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("kitten", "sitting", 3), ("", "abc", 3), ("abc", "", 3), ("abc", "abc", 0), ("ab", "ba", 2)],
)
def test_edit_distance(a, b, expected):
    assert edit_distance(a, b) == expected


def test_score_recognition_hand_computed():
    preds = ["Hello!", "world", "it's", "abc", ""]
    gts = ["hello", "World", "its", "abd", ""]
    score = score_recognition(preds, gts)
    # standard: hello, world, its and the empty pair match; abc != abd
    assert score.n == 5
    assert score.accuracy == pytest.approx(4 / 5)
    # case kept: only "its" (apostrophe stripped) and the empty pair match
    assert score.accuracy_case_sensitive == pytest.approx(2 / 5)
    # raw NED: 2/6 (H->h, drop !), 1/5, 1/4, 1/3, 0 (both empty)
    ned = (2 / 6 + 1 / 5 + 1 / 4 + 1 / 3 + 0) / 5
    assert score.one_minus_ned == pytest.approx(1 - ned)
    assert set(score.to_dict()) == {"n", "accuracy", "accuracy_case_sensitive", "one_minus_ned"}


def test_score_recognition_empty_and_mismatched():
    assert score_recognition([], []).to_dict() == {
        "n": 0,
        "accuracy": 0.0,
        "accuracy_case_sensitive": 0.0,
        "one_minus_ned": 0.0,
    }
    with pytest.raises(ValueError):
        score_recognition(["a"], [])


# --- ICDAR 2015 IoU protocol -------------------------------------------------------------------


def test_polygon_degenerate_and_self_intersecting():
    assert polygon([(0, 0), (1, 1), (2, 2), (3, 3)]).area == 0  # collinear
    assert polygon([(0, 0), (1, 1)]).area == 0  # too few points
    assert polygon([(0, 0), (10, 10), (10, 0), (0, 10)]).area == pytest.approx(50)  # bow-tie
    assert polygon([0, 0, 4, 0, 4, 2, 0, 2]).area == pytest.approx(8)  # flat form


def test_iou_perfect_match():
    score = evaluate_iou([[box(0, 0, 10, 10)]], [[False]], [[box(0, 0, 10, 10)]])
    assert (score.precision, score.recall, score.hmean) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("gts", "ignores", "dets"),
    [
        ([], [], []),  # no images
        ([[]], [[]], [[]]),  # one empty image
        ([[]], [[]], [[box(0, 0, 5, 5)]]),  # detections, no ground truth
        ([[box(0, 0, 5, 5)]], [[False]], [[]]),  # ground truth, no detections
    ],
)
def test_iou_empty_inputs_score_zero(gts, ignores, dets):
    result = evaluate_iou(gts, ignores, dets).to_dict()
    assert (result["precision"], result["recall"], result["hmean"]) == (0.0, 0.0, 0.0)


def test_iou_detection_on_ignore_region_not_counted():
    gts = [box(0, 0, 10, 10), box(20, 0, 30, 10)]
    ignore = [False, True]
    inside = box(21, 0, 29, 10)  # fully inside the ### region: don't-care
    half = box(25, 0, 35, 10)  # exactly 50 % inside: not > 50 %, stays a (false) detection
    image = evaluate_image_iou(gts, ignore, [box(0, 0, 10, 10), inside])
    assert (image.n_gt_care, image.n_det_care, image.matches) == (1, 1, [(0, 0)])
    image = evaluate_image_iou(gts, ignore, [box(0, 0, 10, 10), inside, half])
    assert (image.n_det_care, image.score.precision) == (2, 0.5)


def test_iou_exactly_half_is_not_a_match():
    gt = [box(0, 0, 10, 10)]
    assert evaluate_image_iou(gt, [False], [box(0, 0, 10, 5)]).matches == []  # IoU 50/100
    assert evaluate_image_iou(gt, [False], [box(0, 0, 10, 20)]).matches == []  # IoU 100/200
    assert evaluate_image_iou(gt, [False], [box(0, 0, 10, 6)]).matches == [(0, 0)]  # IoU 0.6


def test_iou_one_to_one_and_original_indices():
    image = evaluate_image_iou([box(0, 0, 10, 10)], [False], [box(0, 0, 10, 10), box(0, 0, 10, 9)])
    assert image.matches == [(0, 0)]
    assert (image.score.precision, image.score.recall) == (0.5, 1.0)
    # indices refer to the full lists, ignore regions included
    gts = [box(50, 50, 60, 60), box(0, 0, 10, 10)]
    image = evaluate_image_iou(gts, [True, False], [box(0, 0, 10, 10)])
    assert image.matches == [(1, 0)]


def test_iou_degenerate_detection_does_not_crash():
    flat = [(0, 0), (5, 0), (10, 0), (15, 0)]
    image = evaluate_image_iou([box(0, 0, 10, 10), flat], [False, True], [flat, box(0, 0, 10, 10)])
    assert (image.n_gt_care, image.n_det_care, image.matches) == (1, 2, [(0, 1)])


def test_iou_sums_over_images_instead_of_averaging():
    gts = [[box(0, 0, 10, 10)], [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)]]
    dets = [[box(0, 0, 10, 10)], []]
    score = evaluate_iou(gts, [[False], [False] * 3], dets)
    # per-image averages would give R = (1 + 0) / 2 and P = (1 + 0) / 2
    assert (score.n_matched, score.n_gt_care, score.n_det_care) == (1, 4, 1)
    assert (score.recall, score.precision) == (0.25, 1.0)
    assert score.hmean == pytest.approx(2 * 0.25 / 1.25)


def test_iou_rejects_misaligned_inputs():
    with pytest.raises(ValueError):
        evaluate_image_iou([box(0, 0, 1, 1)], [], [])
    with pytest.raises(ValueError):
        evaluate_iou([[]], [[]], [])


# --- ICDAR 2013 DetEval ------------------------------------------------------------------------


def test_deteval_perfect():
    score = evaluate_image_deteval([box(0, 0, 100, 20)], [False], [box(0, 0, 100, 20)])
    assert (score.recall, score.precision, score.hmean) == (1.0, 1.0, 1.0)


def test_deteval_line_over_two_words_is_many_to_one():
    words = [box(0, 0, 45, 20), box(55, 0, 100, 20)]  # recall 1 each, precision 0.45 each
    score = evaluate_image_deteval(words, [False, False], [box(0, 0, 100, 20)])
    assert (score.recall_credit, score.precision_credit) == (2.0, 1.0)
    assert (score.recall, score.precision) == (1.0, 1.0)


def test_deteval_ground_truth_split_over_two_detections():
    halves = [box(0, 0, 50, 20), box(50, 0, 100, 20)]  # recall 0.5 each, precision 1 each
    score = evaluate_image_deteval([box(0, 0, 100, 20)], [False], halves)
    assert score.recall_credit == pytest.approx(0.8)
    assert score.precision_credit == pytest.approx(1.6)
    assert (score.recall, score.precision) == (pytest.approx(0.8), pytest.approx(1.6 / 2))


def test_deteval_box_on_ignore_region():
    gts = [box(0, 0, 100, 20), box(200, 0, 300, 20)]
    dets = [box(0, 0, 100, 20), box(210, 0, 290, 20)]
    score = evaluate_image_deteval(gts, [False, True], dets)
    assert (score.n_gt_care, score.n_det_care) == (1, 1)
    assert (score.recall, score.precision) == (1.0, 1.0)


def test_deteval_sums_over_images():
    gts = [[box(0, 0, 100, 20)], [box(0, 0, 100, 20)]]
    dets = [[box(0, 0, 100, 20)], [box(0, 0, 50, 20), box(50, 0, 100, 20)]]
    score = evaluate_deteval(gts, [[False], [False]], dets)
    assert score.recall == pytest.approx(1.8 / 2)
    assert score.precision == pytest.approx(2.6 / 3)
    assert evaluate_deteval([[]], [[]], [[]]).to_dict()["hmean"] == 0.0


# --- ICDAR 2015 end-to-end ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gt", "pred", "expected"),
    [
        ("Hello", "HELLO", True),  # case-insensitive
        ("world!", "world", True),  # trailing special character may go
        ("(hello)", "hello", True),  # leading and trailing
        ('"hi', "Hi", True),  # leading only
        ("..hi", "hi", False),  # only one character per side
        ("hello", "hell", False),  # 'o' is not special
        ("a.b", "ab", False),  # inner characters stay
        ("hi", "hi!", False),  # the prediction does not lose anything
        ("", "", True),
    ],
)
def test_transcription_match(gt, pred, expected):
    assert transcription_match(gt, pred) is expected


def test_e2e_image_hand_computed():
    gts = [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10), box(60, 0, 70, 10)]
    gt_texts = ["Hello", "world!", "###", "cat"]
    dets = [box(0, 0, 10, 10), box(20, 0, 30, 10), box(41, 0, 49, 10), box(60, 0, 70, 10)]
    det_texts = ["HELLO", "WORLD", "x", "dog"]  # right, right, don't-care, wrong
    result = evaluate_image_e2e(gts, gt_texts, dets, det_texts).to_dict()
    assert (result["n_gt_care"], result["n_det_care"], result["n_matched"]) == (3, 3, 3)
    assert (result["precision"], result["recall"], result["hmean"]) == (1.0, 1.0, 1.0)
    assert result["e2e_precision"] == pytest.approx(2 / 3)
    assert result["e2e_recall"] == pytest.approx(2 / 3)
    assert result["e2e_hmean"] == pytest.approx(2 / 3)


def test_e2e_sums_over_images():
    gts = [[box(0, 0, 10, 10)], [box(0, 0, 10, 10), box(20, 0, 30, 10)]]
    gt_texts = [["stop"], ["go", "left"]]
    dets = [[box(0, 0, 10, 10)], [box(0, 0, 10, 10)]]
    det_texts = [["Stop"], ["no"]]
    score = evaluate_e2e(gts, gt_texts, dets, det_texts)
    assert (score.n_correct, score.n_matched, score.n_gt_care, score.n_det_care) == (1, 2, 3, 2)
    assert (score.e2e_recall, score.e2e_precision) == (pytest.approx(1 / 3), 0.5)
    assert (score.recall, score.precision) == (pytest.approx(2 / 3), 1.0)
