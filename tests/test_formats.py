"""Tests for scenetext.data.formats: every format round-trips and malformed input is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenetext.data.formats import (
    DetSample,
    FormatError,
    RecSample,
    Region,
    read_det_set,
    read_icdar_gt,
    read_paddle_det,
    read_rec_labels,
    read_rec_set,
    write_det_set,
    write_icdar_gt,
    write_paddle_det,
    write_rec_labels,
    write_rec_set,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

TEXTS = ["Theatre", "New York", "a,b,c", "café ÜBER 東京", " padded ", "50% off!"]


def make_image(path: Path, size: tuple[int, int] = (8, 4)) -> Path:
    """Write a small solid image at ``path`` (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path)
    return path


def make_crops(folder: Path, count: int) -> list[Path]:
    return [make_image(folder / f"{index:03d}.png") for index in range(count)]


def quad(x: float, y: float, w: float = 10, h: float = 5) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)


def assert_format_error(excinfo: pytest.ExceptionInfo, path: Path, lineno: int | None) -> None:
    """The message names the file (and the line, when given)."""
    message = str(excinfo.value)
    assert path.name in message
    if lineno is not None:
        assert f"{path.name}:{lineno}:" in message


# --------------------------------------------------------------------------- recognition


def test_rec_set_round_trip_keeps_texts_exactly(tmp_path: Path) -> None:
    images = make_crops(tmp_path / "images", len(TEXTS))
    samples = [RecSample(image, text) for image, text in zip(images, TEXTS)]
    labels = write_rec_set(tmp_path, samples)
    assert labels == tmp_path / "labels.tsv"
    assert labels.read_text(encoding="utf-8").splitlines()[0] == "images/000.png\tTheatre"
    assert read_rec_set(tmp_path) == samples


def test_rec_set_accepts_relative_pairs(tmp_path: Path) -> None:
    make_crops(tmp_path / "images", 2)
    write_rec_set(tmp_path, [("images/000.png", "one"), (Path("images/001.png"), "two words")])
    samples = read_rec_set(tmp_path)
    assert [s.text for s in samples] == ["one", "two words"]
    assert samples[1].image == tmp_path / "images" / "001.png"
    assert all(s.image.is_absolute() and s.image.is_file() for s in samples)


@pytest.mark.parametrize("fmt", ["space", "auto"])
def test_rec_space_format_round_trip(tmp_path: Path, fmt: str) -> None:
    images = make_crops(tmp_path / "crops", len(TEXTS))
    samples = [RecSample(image, text) for image, text in zip(images, TEXTS)]
    labels = tmp_path / "gt.txt"
    write_rec_labels(labels, samples, fmt="space")
    assert labels.read_text(encoding="utf-8").splitlines()[1] == "crops/001.png New York"
    assert read_rec_labels(labels, fmt=fmt) == samples


def test_rec_paddle_format_with_separate_root(tmp_path: Path) -> None:
    data_root = tmp_path / "train_data"
    images = make_crops(data_root / "rec" / "train", 3)
    samples = [RecSample(image, text) for image, text in zip(images, TEXTS)]
    labels = tmp_path / "labels" / "rec_gt_train.txt"
    write_rec_labels(labels, samples, root=data_root, fmt="paddle")
    assert labels.read_text(encoding="utf-8").startswith("rec/train/000.png\tTheatre\n")
    assert read_rec_labels(labels, root=data_root, fmt="paddle") == samples


def test_rec_set_falls_back_to_gt_txt(tmp_path: Path) -> None:
    make_crops(tmp_path / "images", 1)
    (tmp_path / "gt.txt").write_text("images/000.png Hello World\n", encoding="utf-8")
    assert read_rec_set(tmp_path) == [RecSample(tmp_path / "images" / "000.png", "Hello World")]


def test_rec_set_without_labels_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="labels.tsv"):
        read_rec_set(tmp_path)


def test_rec_labels_tolerate_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    make_crops(tmp_path / "images", 2)
    content = "\ufeffimages/000.png\tcafé au lait\r\n\r\n   \r\nimages/001.png\tB, C\r\n"
    (tmp_path / "labels.tsv").write_bytes(content.encode("utf-8"))
    samples = read_rec_set(tmp_path)
    assert [s.text for s in samples] == ["café au lait", "B, C"]
    assert samples[0].image == tmp_path / "images" / "000.png"


@pytest.mark.parametrize(
    ("content", "lineno", "problem"),
    [
        (b"images/000.png\tok\nimages/000.png no-tab\n", 2, "no tab"),
        (b"images/000.png\tok\n\n\tempty path\n", 3, "empty image path"),
        (b"images/000.png\tok\nimages/missing.png\tx\n", 2, "missing.png"),
        (b"images/000.png\tok\nimages/000.png\t\xff\n", 2, "UTF-8"),
    ],
)
def test_rec_labels_malformed_lines_name_file_and_line(
    tmp_path: Path, content: bytes, lineno: int, problem: str
) -> None:
    make_crops(tmp_path / "images", 1)
    labels = tmp_path / "labels.tsv"
    labels.write_bytes(content)
    with pytest.raises(FormatError, match=problem) as excinfo:
        read_rec_labels(labels)
    assert_format_error(excinfo, labels, lineno)
    assert excinfo.value.lineno == lineno


def test_rec_labels_space_line_without_separator(tmp_path: Path) -> None:
    labels = tmp_path / "gt.txt"
    labels.write_text("a.png hello\nlonely\n", encoding="utf-8")
    with pytest.raises(FormatError, match="no space") as excinfo:
        read_rec_labels(labels, check_images=False)
    assert_format_error(excinfo, labels, 2)


def test_rec_labels_missing_images_allowed_when_not_checked(tmp_path: Path) -> None:
    labels = tmp_path / "labels.tsv"
    labels.write_text("images/none.png\tghost\n", encoding="utf-8")
    assert read_rec_labels(labels, check_images=False) == [RecSample(tmp_path / "images" / "none.png", "ghost")]


@pytest.mark.parametrize("text", ["tab\there", "new\nline", "carriage\rreturn"])
def test_write_rec_set_rejects_unstorable_text(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match="text"):
        write_rec_set(tmp_path, [("images/000.png", text)])
    assert not (tmp_path / "labels.tsv").exists()


def test_write_rec_space_rejects_path_with_space(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image path"):
        write_rec_labels(tmp_path / "gt.txt", [("my images/0.png", "x")], fmt="space")


def test_unknown_rec_format(tmp_path: Path) -> None:
    (tmp_path / "labels.tsv").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="csv"):
        read_rec_labels(tmp_path / "labels.tsv", fmt="csv")


# --------------------------------------------------------------------------- ICDAR ground truth


def test_icdar2015_text_with_commas_floats_bom_and_crlf(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    lines = [
        "377,117,463,117,465,130,378,130,Genaxis Theatre",
        "10.5,20,30,20,30,40.25,10,40,a,b,,c",
        "1,2,3,2,3,4,1,4,###",
        "5,6,7,6,7,8,5,8,*",
        "0,0,9,0,9,9,0,9,東京",
    ]
    gt.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    regions = read_icdar_gt(gt)
    assert [r.text for r in regions] == ["Genaxis Theatre", "a,b,,c", "###", "*", "東京"]
    assert regions[1].points.dtype == np.float32
    np.testing.assert_array_equal(regions[1].points, [[10.5, 20], [30, 20], [30, 40.25], [10, 40]])
    assert [r.ignore for r in regions] == [False, False, True, False, False]
    assert [r.transcribed for r in regions] == [True, True, False, False, True]


def test_icdar2013_boxes_become_quads(tmp_path: Path) -> None:
    gt = tmp_path / "gt_img_1.txt"
    gt.write_text('158 128 411 181 "Footpath"\n38, 43, 920, 215, "Tired, ness"\n1,2,3,4,plain\n', encoding="utf-8")
    regions = read_icdar_gt(gt)
    assert [r.text for r in regions] == ["Footpath", "Tired, ness", "plain"]
    np.testing.assert_array_equal(regions[0].points, [[158, 128], [411, 128], [411, 181], [158, 181]])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("1,2,3,4,5,6,7,8", "missing transcription"),
        ("1,2,3,4,5,6,x,8,text", "expected"),
        ("hello world", "expected"),
        ("1,2,nan,4,5,6,7,8,text", "expected"),
        ('10 10 5 20 "reversed"', "xmax < xmin"),
    ],
)
def test_icdar_malformed_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    gt = tmp_path / "img_7.txt"
    gt.write_text(f"0,0,1,0,1,1,0,1,ok\n\n{line}\n", encoding="utf-8")
    with pytest.raises(FormatError, match=problem) as excinfo:
        read_icdar_gt(gt)
    assert_format_error(excinfo, gt, 3)


def test_icdar_round_trip_rounds_coordinates(tmp_path: Path) -> None:
    regions = [
        Region(quad(10.4, 20.6), "Hello, world"),
        Region(quad(0, 0), "secret", ignore=True),
        Region(quad(5, 5), "*"),
    ]
    gt = tmp_path / "out" / "gt.txt"
    write_icdar_gt(gt, regions)
    assert gt.read_text(encoding="utf-8").splitlines() == [
        "10,21,20,21,20,26,10,26,Hello, world",
        "0,0,10,0,10,5,0,5,###",
        "5,5,15,5,15,10,5,10,*",
    ]
    back = read_icdar_gt(gt)
    assert back[0] == Region(np.rint(quad(10.4, 20.6)), "Hello, world")
    assert back[1].ignore and not back[2].transcribed


def test_write_icdar_rejects_polygons_and_line_breaks(tmp_path: Path) -> None:
    polygon = Region(np.array([[0, 0], [5, 0], [10, 0], [10, 5], [0, 5]]), "poly")
    with pytest.raises(ValueError, match="quadrilaterals"):
        write_icdar_gt(tmp_path / "a.txt", [polygon])
    with pytest.raises(ValueError, match="text"):
        write_icdar_gt(tmp_path / "b.txt", [Region(quad(0, 0), "two\nlines")])


def test_region_validates_points() -> None:
    with pytest.raises(ValueError, match="shape"):
        Region(np.zeros((3, 2)), "triangle")
    with pytest.raises(ValueError, match="finite"):
        Region(np.full((4, 2), np.inf), "inf")
    assert Region(quad(0, 0), "###").ignore


# --------------------------------------------------------------------------- detection set folders


def det_samples(root: Path, with_lines: bool) -> list[DetSample]:
    samples = []
    for index, name in enumerate(["b.jpg", "a.png"]):
        image = make_image(root / "images" / name, (64, 48))
        regions = [Region(quad(index, 2), "Word, one"), Region(quad(30, 30), "###")]
        lines = [Region(quad(0, 2, 40, 6), "Word, one ###")] if with_lines else None
        samples.append(DetSample(image, regions, lines))
    return samples


@pytest.mark.parametrize("with_lines", [False, True])
def test_det_set_round_trip(tmp_path: Path, with_lines: bool) -> None:
    samples = det_samples(tmp_path, with_lines)
    write_det_set(tmp_path, samples)
    assert (tmp_path / "gt_lines").is_dir() == with_lines
    back = read_det_set(tmp_path)
    assert back == sorted(samples, key=lambda s: s.image.stem)
    assert all(s.image.is_absolute() and s.image.is_file() for s in back)


def test_det_set_accepts_icdar_gt_prefix_and_upper_case_extensions(tmp_path: Path) -> None:
    make_image(tmp_path / "images" / "img_1.JPG")
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt_img_1.txt").write_text("1,1,5,1,5,3,1,3,ok\n", encoding="utf-8")
    (sample,) = read_det_set(tmp_path)
    assert sample.image.name == "img_1.JPG"
    assert [r.text for r in sample.regions] == ["ok"]
    assert sample.lines is None


def test_det_set_image_without_gt(tmp_path: Path) -> None:
    write_det_set(tmp_path, det_samples(tmp_path, with_lines=False))
    orphan = make_image(tmp_path / "images" / "c.webp")
    with pytest.raises(FormatError, match="no ground truth") as excinfo:
        read_det_set(tmp_path)
    assert_format_error(excinfo, orphan, None)


def test_det_set_gt_without_image(tmp_path: Path) -> None:
    write_det_set(tmp_path, det_samples(tmp_path, with_lines=False))
    orphan = tmp_path / "gt" / "zzz.txt"
    orphan.write_text("1,1,5,1,5,3,1,3,lost\n", encoding="utf-8")
    with pytest.raises(FormatError, match="without an image") as excinfo:
        read_det_set(tmp_path)
    assert_format_error(excinfo, orphan, None)
    unchecked = read_det_set(tmp_path, check_images=False)
    assert [s.image.name for s in unchecked] == ["a.png", "b.jpg", "zzz.jpg"]


def test_det_set_lines_must_match_words(tmp_path: Path) -> None:
    samples = det_samples(tmp_path, with_lines=True)
    write_det_set(tmp_path, samples)
    (tmp_path / "gt_lines" / "a.txt").unlink()
    with pytest.raises(FormatError, match="a.png"):
        read_det_set(tmp_path)


def test_det_set_bad_gt_line_names_file_and_line(tmp_path: Path) -> None:
    write_det_set(tmp_path, det_samples(tmp_path, with_lines=False))
    gt = tmp_path / "gt" / "b.txt"
    gt.write_text("1,1,5,1,5,3,1,3,ok\n1,1,5\n", encoding="utf-8")
    with pytest.raises(FormatError) as excinfo:
        read_det_set(tmp_path)
    assert_format_error(excinfo, gt, 2)


def test_write_det_set_refuses_mixed_levels(tmp_path: Path) -> None:
    samples = det_samples(tmp_path, with_lines=True)
    samples[0].lines = None
    with pytest.raises(ValueError, match="line level"):
        write_det_set(tmp_path, samples)


# --------------------------------------------------------------------------- PaddleOCR detection


def test_paddle_det_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "train_data"
    samples = det_samples(root / "icdar", with_lines=False)
    samples[0].regions.append(Region(np.array([[0, 0], [4, 0], [8, 0], [8, 4], [0, 4]]), "5-gon 東京"))
    labels = tmp_path / "det_gt.txt"
    write_paddle_det(labels, samples, root=root)
    first = labels.read_text(encoding="utf-8").splitlines()[0]
    path, annotation = first.split("\t")
    assert path == "icdar/images/b.jpg"
    assert json.loads(annotation)[1] == {"transcription": "###", "points": [[30, 30], [40, 30], [40, 35], [30, 35]]}
    assert read_paddle_det(labels, root=root) == [DetSample(s.image, s.regions) for s in samples]


def test_paddle_det_difficult_flag_bom_and_crlf(tmp_path: Path) -> None:
    make_image(tmp_path / "imgs" / "x.png")
    regions = [
        {"transcription": "Hi", "points": [[0, 0], [4, 0], [4, 2], [0, 2]], "difficult": True},
        {"transcription": "Yo", "points": [[1.5, 0], [4, 0], [4, 2], [1, 2]]},
    ]
    labels = tmp_path / "label.txt"
    labels.write_bytes(f"\ufeffimgs/x.png\t{json.dumps(regions)}\r\n".encode("utf-8"))
    (sample,) = read_paddle_det(labels)
    assert [(r.text, r.ignore) for r in sample.regions] == [("Hi", True), ("Yo", False)]
    assert sample.regions[1].points[0, 0] == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("annotation", "problem"),
    [
        ("[{broken", "bad annotation"),
        ('{"transcription": "a"}', "JSON list"),
        ('[{"points": [[0, 0], [1, 0], [1, 1], [0, 1]]}]', "transcription"),
        ('[{"transcription": "a", "points": [[0, 0], [1, 1]]}]', "shape"),
    ],
)
def test_paddle_det_malformed_names_file_and_line(tmp_path: Path, annotation: str, problem: str) -> None:
    make_image(tmp_path / "x.png")
    labels = tmp_path / "label.txt"
    labels.write_text(f"x.png\t[]\n\nx.png\t{annotation}\n", encoding="utf-8")
    with pytest.raises(FormatError, match=problem) as excinfo:
        read_paddle_det(labels)
    assert_format_error(excinfo, labels, 3)


def test_paddle_det_missing_image(tmp_path: Path) -> None:
    labels = tmp_path / "label.txt"
    labels.write_text("nothere.jpg\t[]\n", encoding="utf-8")
    with pytest.raises(FormatError, match="nothere.jpg") as excinfo:
        read_paddle_det(labels)
    assert_format_error(excinfo, labels, 1)
    assert read_paddle_det(labels, check_images=False)[0].image == tmp_path / "nothere.jpg"


# --------------------------------------------------------------------------- real data


def test_real_sets_match_readme() -> None:
    rec_set = SHARED / "data" / "rec" / "svt_train"
    det_set = SHARED / "data" / "det" / "ic03_train"
    if not (rec_set.is_dir() and det_set.is_dir()):
        pytest.skip("shared real data not available")
    crops = read_rec_set(rec_set)
    assert len(crops) == 257
    assert all(sample.text for sample in crops)
    photos = read_det_set(det_set)
    assert len(photos) == 250
    assert sum(len(photo.regions) for photo in photos) == 1156
