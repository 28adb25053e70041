"""Dataset formats: recognition label files, ICDAR detection ground truth, PaddleOCR labels.

Every reader tolerates a UTF-8 byte-order mark, CRLF line endings and blank lines, and reports
malformed input with one :class:`FormatError` whose message is ``"<file>:<line>: <problem>"``.

Recognition (word crops):

* ``tsv``    ``relative/path<TAB>text`` (our ``labels.tsv``; the text is kept exactly);
* ``space``  ``relative/path text`` (split on the first space);
* ``paddle`` PaddleOCR's ``path<TAB>text``, paths relative to a separately given data root.

Detection (photos with regions):

* ICDAR 2015 ``x1,y1,x2,y2,x3,y3,x4,y4,text`` (the text may itself contain commas), and
  ICDAR 2013 ``xmin ymin xmax ymax "text"`` / ``xmin,ymin,xmax,ymax,"text"``;
* a set folder: ``images/`` + ``gt/<stem>.txt`` (or ``gt/gt_<stem>.txt``), and optionally
  ``gt_lines/`` holding a second, line-level annotation;
* PaddleOCR ``path<TAB>[{"transcription": ..., "points": [[x, y], ...]}, ...]``.

``###`` marks a region to ignore ("don't care"); ``*`` a region without a transcription.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np

from scenetext.imageio import atomic_write_text, is_image_path

__all__ = [
    "IGNORE_TEXT",
    "UNTRANSCRIBED_TEXT",
    "DetSample",
    "FormatError",
    "RecSample",
    "Region",
    "read_det_set",
    "read_icdar_gt",
    "read_paddle_det",
    "read_rec_labels",
    "read_rec_set",
    "write_det_set",
    "write_icdar_gt",
    "write_paddle_det",
    "write_rec_labels",
    "write_rec_set",
    "REC_LABEL_FILES",
]

IGNORE_TEXT = "###"
UNTRANSCRIBED_TEXT = "*"

#: Label files looked for by :func:`read_rec_set`, in order of preference.
REC_LABEL_FILES = ("labels.tsv", "labels.txt", "gt.txt")

_REC_SEPARATORS = {"tsv": "\t", "paddle": "\t", "space": " "}
_SEPARATOR_NAMES = {"\t": "tab", " ": "space"}

PathLike = Union[str, os.PathLike]


class FormatError(ValueError):
    """Malformed dataset input; the message is ``"<path>:<lineno>: <problem>"``.

    ``lineno`` is ``None`` for problems that concern a whole file or folder.
    """

    def __init__(self, path: PathLike, lineno: int | None, problem: str) -> None:
        self.path = Path(path)
        self.lineno = lineno
        self.problem = problem
        location = f"{path}:{lineno}" if lineno is not None else str(path)
        super().__init__(f"{location}: {problem}")


# --------------------------------------------------------------------------- shared helpers


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` for the non-blank lines of a UTF-8 text file.

    A leading BOM is dropped and only the line terminator (``\\n`` or ``\\r\\n``) is removed.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FormatError(path, data.count(b"\n", 0, err.start) + 1, "not valid UTF-8") from None
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield lineno, line


def _absolute(path: PathLike) -> Path:
    """Absolute, lexically normalised path (symlinks are kept, unlike ``Path.resolve``)."""
    return Path(os.path.normpath(Path(path).absolute()))


def _relative_posix(image: PathLike, root: Path) -> str:
    """``image`` relative to ``root`` with forward slashes; relative inputs are kept as given."""
    image = Path(image)
    if image.is_absolute():
        image = Path(os.path.relpath(image, root))
    return image.as_posix()


def _check_field(value: str, forbidden: str, what: str) -> None:
    """Raise ``ValueError`` if ``value`` contains any character of ``forbidden``."""
    bad = sorted({repr(char) for char in forbidden if char in value})
    if bad:
        raise ValueError(f"{what} {value!r} contains {', '.join(bad)}, which the format cannot store")


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` (each terminated by ``\\n``) atomically as UTF-8."""
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))


# --------------------------------------------------------------------------- recognition


@dataclass(frozen=True)
class RecSample:
    """One word crop: the image path and its ground-truth text."""

    image: Path
    text: str


def read_rec_labels(
    path: PathLike,
    root: PathLike | None = None,
    fmt: str = "auto",
    check_images: bool = True,
) -> list[RecSample]:
    """Read a recognition label file.

    Args:
        path: the label file.
        root: folder the image paths are relative to; defaults to the label file's folder.
        fmt: ``"tsv"``, ``"space"``, ``"paddle"`` or ``"auto"`` (``tsv`` if any line contains
            a tab, else ``space``; deciding per file makes a line missing its tab an error
            instead of a silent re-interpretation).
        check_images: require every image to exist.

    Returns:
        Samples with absolute image paths, in file order.
    """
    path = Path(path)
    if fmt not in (*_REC_SEPARATORS, "auto"):
        raise ValueError(f"unknown recognition label format {fmt!r}")
    lines = list(_iter_lines(path))
    if fmt == "auto":
        fmt = "tsv" if any("\t" in line for _, line in lines) else "space"
    separator = _REC_SEPARATORS[fmt]
    base = _absolute(root if root is not None else path.parent)
    return [_parse_rec_line(path, lineno, line, separator, base, check_images) for lineno, line in lines]


def _parse_rec_line(
    path: Path, lineno: int, line: str, separator: str, base: Path, check_images: bool
) -> RecSample:
    """Split one label line into a :class:`RecSample`."""
    relative, found, text = line.partition(separator)
    relative = relative.strip()
    if not found:
        raise FormatError(path, lineno, f"no {_SEPARATOR_NAMES[separator]} between image path and text")
    if not relative:
        raise FormatError(path, lineno, "empty image path")
    image = _absolute(base / relative)
    if check_images and not image.is_file():
        raise FormatError(path, lineno, f"image not found: {image}")
    return RecSample(image, text)


def read_rec_set(folder: PathLike, check_images: bool = True) -> list[RecSample]:
    """Read a recognition set folder: ``labels.tsv`` (else ``labels.txt`` or ``gt.txt``, auto-detected)."""
    folder = Path(folder)
    for name in REC_LABEL_FILES:
        if (folder / name).is_file():
            return read_rec_labels(folder / name, root=folder, check_images=check_images)
    raise FormatError(folder, None, f"no label file (looked for {', '.join(REC_LABEL_FILES)})")


def write_rec_labels(
    path: PathLike,
    samples: Iterable[RecSample | tuple[PathLike, str]],
    root: PathLike | None = None,
    fmt: str = "tsv",
) -> None:
    """Write a recognition label file in ``fmt`` (``"tsv"``, ``"space"`` or ``"paddle"``).

    Absolute image paths are written relative to ``root`` (default: the label file's folder);
    relative ones are written as given. Raises ``ValueError`` for a text containing a tab or a
    line break, or a path containing the separator.
    """
    path = Path(path)
    if fmt not in _REC_SEPARATORS:
        raise ValueError(f"unknown recognition label format {fmt!r}")
    separator = _REC_SEPARATORS[fmt]
    base = _absolute(root if root is not None else path.parent)
    _write_lines(path, [_format_rec_line(_as_rec_sample(item), separator, base) for item in samples])


def _as_rec_sample(item: RecSample | tuple[PathLike, str]) -> RecSample:
    """Accept a :class:`RecSample` or an ``(image, text)`` pair."""
    if isinstance(item, RecSample):
        return item
    image, text = item
    return RecSample(Path(image), text)


def _format_rec_line(sample: RecSample, separator: str, base: Path) -> str:
    """One label line for ``sample``, after checking the format can represent it."""
    relative = _relative_posix(sample.image, base)
    _check_field(relative, "\t\n\r" + separator, "image path")
    _check_field(sample.text, "\t\n\r", "text")
    return f"{relative}{separator}{sample.text}"


def write_rec_set(folder: PathLike, samples_or_pairs: Iterable[RecSample | tuple[PathLike, str]]) -> Path:
    """Write ``folder/labels.tsv`` with image paths relative to ``folder``; returns its path."""
    labels = Path(folder) / "labels.tsv"
    write_rec_labels(labels, samples_or_pairs, root=folder, fmt="tsv")
    return labels


# --------------------------------------------------------------------------- detection


@dataclass(eq=False)
class Region:
    """A text region: a polygon of ``N >= 4`` points (``float32``, shape ``(N, 2)``).

    Points run clockwise from the top-left corner. ``ignore`` marks a "don't care" region and
    is forced on for the text ``###``.
    """

    points: np.ndarray
    text: str = ""
    ignore: bool = False

    def __post_init__(self) -> None:
        points = np.asarray(self.points, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 4:
            raise ValueError(f"region points must have shape (N>=4, 2), got {points.shape}")
        if not np.isfinite(points).all():
            raise ValueError("region points must be finite")
        self.points = points
        self.ignore = bool(self.ignore) or self.text == IGNORE_TEXT

    @property
    def transcribed(self) -> bool:
        """True when the region carries a usable transcription (not ``*``, not ignored)."""
        return not self.ignore and self.text != UNTRANSCRIBED_TEXT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Region):
            return NotImplemented
        return (
            self.text == other.text
            and self.ignore == other.ignore
            and np.array_equal(self.points, other.points)
        )


@dataclass
class DetSample:
    """A photo with its word-level ``regions`` and, optionally, a second (line) level."""

    image: Path
    regions: list[Region]
    lines: list[Region] | None = None


def read_icdar_gt(path: PathLike) -> list[Region]:
    """Read an ICDAR 2015 (or ICDAR 2013 axis-aligned) ground-truth file."""
    path = Path(path)
    regions = []
    for lineno, line in _iter_lines(path):
        try:
            points, text = _parse_icdar_line(line)
            regions.append(Region(points, text))
        except ValueError as err:
            raise FormatError(path, lineno, str(err)) from None
    return regions


def _number(token: str) -> float | None:
    """The finite number in ``token`` (surrounding spaces allowed), else ``None``."""
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _leading_numbers(tokens: Sequence[str]) -> list[float]:
    """The numbers at the start of ``tokens``, up to the first token that is not one."""
    numbers = []
    for token in tokens:
        value = _number(token)
        if value is None:
            break
        numbers.append(value)
    return numbers


def _parse_icdar_line(line: str) -> tuple[np.ndarray, str]:
    """Parse one ground-truth line into ``(points (4, 2), text)``; ``ValueError`` if malformed."""
    fields = line.split(",", 8)
    numbers = _leading_numbers(fields[:8])
    if len(numbers) == 8 and len(fields) == 9:
        return np.array(numbers).reshape(4, 2), fields[8]
    if len(numbers) == 4 and len(fields) > 4:
        return _box_to_quad(numbers), _unquote(",".join(fields[4:]).strip())
    if not numbers:
        words = line.split(None, 4)
        box = _leading_numbers(words[:4])
        if len(box) == 4 and len(words) == 5:
            return _box_to_quad(box), _unquote(words[4].strip())
    if len(numbers) in (4, 8):
        raise ValueError(f"missing transcription after {len(numbers)} coordinates")
    raise ValueError(
        "expected 'x1,y1,x2,y2,x3,y3,x4,y4,text' (ICDAR 2015) "
        "or 'xmin ymin xmax ymax \"text\"' (ICDAR 2013)"
    )


def _box_to_quad(box: Sequence[float]) -> np.ndarray:
    """Axis-aligned ``(xmin, ymin, xmax, ymax)`` to a clockwise quadrilateral."""
    xmin, ymin, xmax, ymax = box
    if xmax < xmin or ymax < ymin:
        raise ValueError(f"box has xmax < xmin or ymax < ymin: {list(box)}")
    return np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]])


def _unquote(text: str) -> str:
    """Remove one pair of surrounding double quotes."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def write_icdar_gt(path: PathLike, regions: Iterable[Region]) -> None:
    """Write regions as ICDAR 2015 lines: rounded integer coordinates, ``###`` for ignored ones.

    Raises ``ValueError`` for a region that is not a quadrilateral or a text with a line break.
    """
    _write_lines(Path(path), [_format_icdar_line(region) for region in regions])


def _format_icdar_line(region: Region) -> str:
    """One ICDAR 2015 line for ``region``."""
    if len(region.points) != 4:
        raise ValueError(f"ICDAR ground truth stores quadrilaterals, got {len(region.points)} points")
    text = IGNORE_TEXT if region.ignore else region.text
    _check_field(text, "\n\r", "text")
    coords = ",".join(str(value) for value in _rounded(region.points).ravel().tolist())
    return f"{coords},{text}"


def _rounded(points: np.ndarray) -> np.ndarray:
    """Points rounded to the nearest integer."""
    return np.rint(points).astype(np.int64)


# --------------------------------------------------------------------------- detection set folders


def read_det_set(folder: PathLike, check_images: bool = True) -> list[DetSample]:
    """Read a detection set folder: ``images/`` + ``gt/`` (+ optional ``gt_lines/``).

    Ground truth for ``images/<stem>.<ext>`` is ``gt/<stem>.txt`` or ``gt/gt_<stem>.txt``.
    An image without ground truth is a :class:`FormatError`; so is a ground-truth file without
    an image when ``check_images`` is true (otherwise its image path is guessed as
    ``images/<stem>.jpg``). Samples are sorted by stem.
    """
    root = _absolute(folder)
    images = _index_images(root / "images", required=check_images)
    annotations = _pair_annotations(root / "gt", images, check_images)
    line_dir = root / "gt_lines"
    line_annotations = _pair_annotations(line_dir, images, check_images) if line_dir.is_dir() else None
    if line_annotations is not None and line_annotations.keys() != annotations.keys():
        stem = sorted(line_annotations.keys() ^ annotations.keys())[0]
        raise FormatError(line_dir, None, f"gt/ and gt_lines/ disagree about {stem!r}")
    samples = []
    for stem in sorted(annotations):
        image = images.get(stem, root / "images" / f"{stem}.jpg")
        lines = read_icdar_gt(line_annotations[stem]) if line_annotations is not None else None
        samples.append(DetSample(image, read_icdar_gt(annotations[stem]), lines))
    return samples


def _index_images(folder: Path, required: bool) -> dict[str, Path]:
    """Map stem to image file for the images in ``folder`` (extensions case-insensitive)."""
    if not folder.is_dir():
        if required:
            raise FormatError(folder, None, "image folder not found")
        return {}
    images: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and is_image_path(path)):
            continue
        if path.stem in images:
            other = images[path.stem].name
            raise FormatError(path, None, f"two images share the stem {path.stem!r}: {other}")
        images[path.stem] = path
    return images


def _pair_annotations(gt_dir: Path, images: dict[str, Path], require_images: bool) -> dict[str, Path]:
    """Map each image stem to its ground-truth file in ``gt_dir``.

    Files without an image raise :class:`FormatError` when ``require_images``; otherwise they
    are keyed by their own stem (minus a ``gt_`` prefix).
    """
    if not gt_dir.is_dir():
        raise FormatError(gt_dir, None, "ground-truth folder not found")
    files = {path.stem: path for path in gt_dir.iterdir() if path.is_file() and path.suffix.lower() == ".txt"}
    pairs = {}
    for stem, image in images.items():
        annotation = files.pop(stem, None) or files.pop(f"gt_{stem}", None)
        if annotation is None:
            expected = f"{gt_dir.name}/{stem}.txt or {gt_dir.name}/gt_{stem}.txt"
            raise FormatError(image, None, f"no ground truth ({expected})")
        pairs[stem] = annotation
    for stem, annotation in sorted(files.items()):
        if require_images:
            raise FormatError(annotation, None, "ground truth without an image in images/")
        pairs[stem.removeprefix("gt_")] = annotation
    return pairs


def write_det_set(folder: PathLike, samples: Iterable[DetSample]) -> None:
    """Write ``gt/<stem>.txt`` (and ``gt_lines/<stem>.txt``) for each sample.

    Images are not written: the caller stores them under ``images/``. Either every sample has
    ``lines`` or none has, so that :func:`read_det_set` can read the folder back.
    """
    root = Path(folder)
    samples = list(samples)
    with_lines = {sample.lines is not None for sample in samples}
    if len(with_lines) > 1:
        raise ValueError("either every sample or none must have a line level")
    stems = [sample.image.stem for sample in samples]
    if len(set(stems)) != len(stems):
        raise ValueError("two samples share an image stem")
    for sample in samples:
        write_icdar_gt(root / "gt" / f"{sample.image.stem}.txt", sample.regions)
        if sample.lines is not None:
            write_icdar_gt(root / "gt_lines" / f"{sample.image.stem}.txt", sample.lines)


# --------------------------------------------------------------------------- PaddleOCR detection


def read_paddle_det(
    path: PathLike, root: PathLike | None = None, check_images: bool = True
) -> list[DetSample]:
    """Read a PaddleOCR detection label file (``path<TAB>JSON list of regions`` per line).

    Image paths are relative to ``root`` (default: the label file's folder). A region with the
    transcription ``###`` or ``"difficult": true`` is ignored. The format has one level only.
    """
    path = Path(path)
    base = _absolute(root if root is not None else path.parent)
    samples = []
    for lineno, line in _iter_lines(path):
        relative, found, annotation = line.partition("\t")
        relative = relative.strip()
        if not found:
            raise FormatError(path, lineno, "no tab between image path and annotation")
        if not relative:
            raise FormatError(path, lineno, "empty image path")
        image = _absolute(base / relative)
        if check_images and not image.is_file():
            raise FormatError(path, lineno, f"image not found: {image}")
        try:
            regions = _paddle_regions(json.loads(annotation))
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            raise FormatError(path, lineno, f"bad annotation: {err}") from None
        except RecursionError:
            raise FormatError(path, lineno, "bad annotation: nested too deeply") from None
        samples.append(DetSample(image, regions))
    return samples


def _paddle_regions(annotation: object) -> list[Region]:
    """Regions from a decoded PaddleOCR annotation; ``ValueError`` if malformed."""
    if not isinstance(annotation, list):
        raise ValueError("expected a JSON list of regions")
    regions = []
    for index, item in enumerate(annotation):
        if not (isinstance(item, dict) and isinstance(item.get("transcription"), str) and "points" in item):
            raise ValueError(f"region {index}: expected an object with 'transcription' (string) and 'points'")
        try:
            regions.append(Region(item["points"], item["transcription"], bool(item.get("difficult", False))))
        except (ValueError, TypeError) as err:
            raise ValueError(f"region {index}: {err}") from None
    return regions


def write_paddle_det(path: PathLike, samples: Iterable[DetSample], root: PathLike) -> None:
    """Write a PaddleOCR detection label file with image paths relative to ``root``.

    Coordinates are rounded to integers, ignored regions get the transcription ``###``, and
    ``DetSample.lines`` is not written (the format has a single level).
    """
    base = _absolute(root)
    _write_lines(Path(path), [_format_paddle_line(sample, base) for sample in samples])


def _format_paddle_line(sample: DetSample, base: Path) -> str:
    """One PaddleOCR detection label line for ``sample``."""
    relative = _relative_posix(sample.image, base)
    _check_field(relative, "\t\n\r", "image path")
    regions = [
        {
            "transcription": IGNORE_TEXT if region.ignore else region.text,
            "points": _rounded(region.points).tolist(),
        }
        for region in sample.regions
    ]
    return f"{relative}\t{json.dumps(regions, ensure_ascii=False)}"
