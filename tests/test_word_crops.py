"""Word crops cut from detection sets land on their words."""

from __future__ import annotations

import cv2
import numpy as np

from scenetext.data.formats import DetSample, Region, read_rec_set, write_det_set
from scenetext.data.word_crops import region_quad, write_word_crops


def _photo_with_words():
    """A gray photo with two black bars standing for words, one level and one rotated 30 degrees."""
    rgb = np.full((200, 300, 3), 200, np.uint8)
    level = np.array([[40, 40], [140, 40], [140, 70], [40, 70]], np.float32)
    cv2.fillPoly(rgb, [level.astype(np.int32)], (0, 0, 0))
    centre, angle = (200, 140), 30.0
    rot = cv2.boxPoints((centre, (100, 30), angle)).astype(np.float32)
    cv2.fillPoly(rgb, [rot.astype(np.int32)], (0, 0, 0))
    return rgb, level, rot


def test_crops_hold_the_word_and_skip_dont_care_regions(tmp_path):
    rgb, level, rot = _photo_with_words()
    photo = tmp_path / "det" / "images" / "p1.png"
    photo.parent.mkdir(parents=True)
    cv2.imwrite(str(photo), rgb[..., ::-1])
    regions = [Region(level, "LEVEL"), Region(region_quad(Region(rot)), "TURNED"),
               Region(np.array([[0, 0], [20, 0], [20, 20], [0, 20]], np.float32), "###"),
               Region(np.array([[250, 10], [290, 10], [290, 30], [250, 30]], np.float32), "*")]
    write_det_set(tmp_path / "det", [DetSample(photo, regions)])
    report = write_word_crops([DetSample(photo, regions)], tmp_path / "crops")
    samples = read_rec_set(tmp_path / "crops")
    assert [s.text for s in samples] == ["LEVEL", "TURNED"] and report.skipped_regions == 0
    for s in samples:
        crop = cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE)
        h, w = crop.shape
        assert w > 2.5 * h  # cut upright along the word, the rotated one included
        middle = crop[int(h * 0.3): int(h * 0.7), int(w * 0.25): int(w * 0.75)]
        border = np.concatenate([crop[:, : max(1, w // 40)].ravel(), crop[:, -max(1, w // 40):].ravel()])
        assert middle.mean() < 40 and border.mean() > 150  # the word inside, background at the padded ends


def test_polygons_become_their_minimum_area_rectangle_clockwise():
    pts = np.array([[10, 10], [50, 8], [90, 10], [90, 30], [50, 32], [10, 30]], np.float32)
    quad = region_quad(Region(pts))
    assert quad.shape == (4, 2)
    assert np.allclose(quad.min(axis=0), [10, 8], atol=1.5) and np.allclose(quad.max(axis=0), [90, 32], atol=1.5)
    edge = quad[1] - quad[0]
    assert abs(edge[0]) > abs(edge[1]) and edge[0] > 0  # starts at the top-left, runs right first
