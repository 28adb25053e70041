"""Typed OCR results and their JSON form.

A :class:`PageResult` holds what was read from one image: its size, the text lines (each with
its words), timings and the models used. ``to_dict()`` gives the JSON form described by the
JSON Schema file ``scenetext/resources/result.schema.json``; ``from_dict()`` reads it back and
:func:`validate_result` checks a dictionary against that schema.

Polygons are lists of ``[x, y]`` points in the original image's pixels (after EXIF
orientation), clockwise from the text's top-left corner, rounded to 0.1 px.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Sequence

__all__ = ["Failure", "Line", "PageResult", "SchemaError", "Word", "load_schema", "validate_result"]

TIMING_KEYS = ("decode", "detect", "recognize", "total")
MODEL_KEYS = ("detector", "recognizer")

Polygon = list[list[float]]


def as_polygon(points: Iterable[Sequence[float]]) -> Polygon:
    """``[[x, y], ...]`` as Python floats rounded to 0.1 px (accepts numpy arrays)."""
    return [[round(float(x), 1), round(float(y), 1)] for x, y in points]


def _confidence(value: float) -> float:
    """A confidence as a float rounded to 4 decimals."""
    return round(float(value), 4)


@dataclass
class Word:
    """One word: its polygon, text and confidence (0-1)."""

    polygon: Polygon
    text: str
    confidence: float

    def __post_init__(self) -> None:
        self.polygon = as_polygon(self.polygon)
        self.confidence = _confidence(self.confidence)

    def to_dict(self) -> dict[str, Any]:
        return {"polygon": self.polygon, "text": self.text, "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Word":
        return cls(d["polygon"], d["text"], d["confidence"])


@dataclass
class Line:
    """One text line: its polygon, text, confidence (0-1) and the words it splits into."""

    polygon: Polygon
    text: str
    confidence: float
    words: list[Word] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.polygon = as_polygon(self.polygon)
        self.confidence = _confidence(self.confidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "polygon": self.polygon,
            "text": self.text,
            "confidence": self.confidence,
            "words": [word.to_dict() for word in self.words],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Line":
        return cls(d["polygon"], d["text"], d["confidence"], [Word.from_dict(w) for w in d["words"]])


@dataclass
class PageResult:
    """Everything read from one image.

    Attributes:
        path: the input path as given, or ``None`` for arrays, bytes and PIL images.
        width, height: image size in pixels after EXIF orientation.
        lines: text lines, in the order the detector returned them (best score first).
        timings_ms: ``decode``, ``detect``, ``recognize`` (cropping, reading, word placement)
            and ``total`` milliseconds.
        models: identifiers of the ``detector`` and ``recognizer`` used.
        version: the scenetext version that produced the result.
    """

    path: str | None
    width: int
    height: int
    lines: list[Line]
    timings_ms: dict[str, float]
    models: dict[str, str]
    version: str

    @property
    def text(self) -> str:
        """The lines' texts joined by newlines."""
        return "\n".join(line.text for line in self.lines)

    @property
    def words(self) -> list[Word]:
        """All words of all lines."""
        return [word for line in self.lines for word in line.words]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "lines": [line.to_dict() for line in self.lines],
            "timings_ms": {key: round(float(self.timings_ms[key]), 1) for key in TIMING_KEYS},
            "models": {key: self.models[key] for key in MODEL_KEYS},
            "version": self.version,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The JSON form as a string (UTF-8 text kept as is)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PageResult":
        return cls(
            path=d["path"],
            width=d["width"],
            height=d["height"],
            lines=[Line.from_dict(line) for line in d["lines"]],
            timings_ms=dict(d["timings_ms"]),
            models=dict(d["models"]),
            version=d["version"],
        )


@dataclass
class Failure:
    """An input that could not be read, and why.

    Attributes:
        path: the input path as given, or ``"<bytes>"``, ``"<array>"``, ... for in-memory images.
        reason: one line saying what is wrong (the path is not repeated in it).
        error: the exception behind it, when there was one (not part of the JSON form).
    """

    path: str
    reason: str
    error: BaseException | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason}


# --------------------------------------------------------------------------- schema


class SchemaError(ValueError):
    """A document does not match the result schema; the message names the JSON location."""


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The result JSON Schema shipped in ``scenetext/resources/result.schema.json``."""
    text = resources.files("scenetext").joinpath("resources/result.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_result(document: Any) -> None:
    """Check ``document`` against the result schema; raise :class:`SchemaError` if it fails.

    A small interpreter for the keywords the schema uses (``type``, ``properties``,
    ``required``, ``additionalProperties``, ``items``, ``minItems``, ``maxItems``,
    ``minimum``, ``maximum``, ``$ref`` to ``#/$defs/...``), so no extra dependency is needed.
    """
    schema = load_schema()
    _validate(document, schema, schema, "$")


_JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "null": lambda v: v is None,
}


def _validate(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str) -> None:
    """Validate ``value`` against the sub-schema ``schema``; ``where`` is its JSON path."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        schema = root["$defs"][name]
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_JSON_TYPES[t](value) for t in types):
            raise SchemaError(f"{where}: expected {' or '.join(types)}, got {type(value).__name__}")
    if isinstance(value, dict):
        _validate_object(value, schema, root, where)
    elif isinstance(value, list):
        _validate_array(value, schema, root, where)
    elif _JSON_TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{where}: {value} is above the maximum {schema['maximum']}")


def _validate_object(value: dict, schema: dict[str, Any], root: dict[str, Any], where: str) -> None:
    properties = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in value:
            raise SchemaError(f"{where}: missing key {key!r}")
    for key, item in value.items():
        if key in properties:
            _validate(item, properties[key], root, f"{where}.{key}")
        elif schema.get("additionalProperties", True) is False:
            raise SchemaError(f"{where}: unexpected key {key!r}")


def _validate_array(value: list, schema: dict[str, Any], root: dict[str, Any], where: str) -> None:
    if len(value) < schema.get("minItems", 0):
        raise SchemaError(f"{where}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SchemaError(f"{where}: more than {schema['maxItems']} items")
    if "items" in schema:
        for index, item in enumerate(value):
            _validate(item, schema["items"], root, f"{where}[{index}]")
