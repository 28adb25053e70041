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


# --------------------------------------------------------------------------- detector boxes

WORDS = [("HOTEL", (60, 60), 64), ("garden", (330, 70), 56), ("OPEN", (80, 220), 72), ("7224", (380, 230), 60)]


def _rendered_set(root, extra=()):
    """A photo with the words (and ``extra`` ones) drawn at known places, as a detection set whose
    ground truth is the words' ink boxes, a don't-care region and an untranscribed one."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (640, 400), (235, 232, 225))
    draw = ImageDraw.Draw(img)
    regions = []
    for text, (x, y), size in [*WORDS, *extra]:
        font = ImageFont.load_default(size=size)
        draw.text((x, y), text, font=font, fill=(20, 20, 30))
        x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font)
        regions.append(Region(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), text))
    draw.rectangle((560, 340, 620, 380), fill=(90, 90, 90))
    regions.append(Region(np.array([[560, 340], [620, 340], [620, 380], [560, 380]], np.float32), "###"))
    regions.append(Region(np.array([[20, 340], [100, 340], [100, 380], [20, 380]], np.float32), "*"))
    photo = root / "images" / "rendered.png"
    photo.parent.mkdir(parents=True)
    img.save(photo)
    write_det_set(root, [DetSample(photo, regions)])
    return np.asarray(img), regions


def _box(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def test_detector_boxes_matching_a_word_are_cut_as_the_pipeline_cuts_them(tmp_path):
    from scenetext.crop import crop_line
    from scenetext.data.formats import read_det_set

    rgb, regions = _rendered_set(tmp_path / "det", extra=[("24h", (278, 250), 30)])
    hotel, garden, opened, digits, small = (r.points for r in regions[:5])
    found = [
        _box(*(garden.min(0) + [-6, 3]), *(garden.max(0) + [8, -2])),  # loose on the sides, tight above and below
        _box(hotel[0][0] + 4, hotel[0][1] - 5, hotel[2][0] - 10, hotel[2][1] + 6),
        _box(opened[0][0], opened[0][1], digits[2][0], digits[2][1]),  # two words as one box: no match
        _box(565, 342, 618, 378),  # on the ### region: don't-care, neither a crop nor a stray box
        _box(250, 330, 330, 370),  # background
        _box(21, 341, 99, 379),  # on the untranscribed '*' region: nothing to label it with, don't-care too
        _box(opened[0][0], opened[0][1], small[2][0] + 2, opened[2][1]),  # matches OPEN, but shows 24h too
    ]
    report = write_word_crops(read_det_set(tmp_path / "det"), tmp_path / "crops", boxes=lambda image: found)
    samples = read_rec_set(tmp_path / "crops")
    assert [s.text for s in samples] == ["HOTEL", "garden"]  # in ground-truth order
    assert [s.image.name for s in samples] == ["det_rendered_d000.png", "det_rendered_d001.png"]
    assert report.skipped_regions == 3  # OPEN (its only match is crowded), 7224, 24h
    assert report.unmatched_boxes == 2 and report.crowded_boxes == 1  # the two-word box and the background
    for sample, box in zip(samples, (found[1], found[0])):
        crop = cv2.imread(str(sample.image))[..., ::-1]
        assert np.array_equal(crop, crop_line(rgb, box).image)  # the detector's box, cut by the pipeline's code


def _ncc(a, b):
    """Normalised correlation of two crops at a's size, blurred so that a pixel or two of offset
    does not count."""
    b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    a, b = (cv2.GaussianBlur(x.astype(np.float64).mean(axis=2), (0, 0), 2.0) for x in (a, b))
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_data_crops_with_the_shipped_detector_lands_on_the_words(tmp_path):
    from click.testing import CliRunner

    from scenetext.cli import main
    from scenetext.crop import crop_line

    rgb, regions = _rendered_set(tmp_path / "det")
    res = CliRunner().invoke(main, ["data", "crops", str(tmp_path / "det"), "-o", str(tmp_path / "crops"),
                                    "--boxes", "detector"])
    assert res.exit_code == 0, res.output
    assert "4 word crops at detector boxes from 1 photos" in res.output
    samples = read_rec_set(tmp_path / "crops")
    assert [s.text for s in samples] == [w for w, _, _ in WORDS]
    truth = {r.text: crop_line(rgb, r.points).image for r in regions[:4]}
    for s in samples:
        crop = cv2.imread(str(s.image))[..., ::-1]
        scores = {text: _ncc(crop, ref) for text, ref in truth.items()}
        own = scores.pop(s.text)
        assert own > 0.45 and own > max(scores.values()) + 0.25, (s.text, own, scores)  # its word, no other
