"""Checks of the options that :class:`~scenetext.reader.Reader` and ``scenetext run`` share, so
both refuse the same values with the same message (the CLI names the option, the API the
argument: ``min_confidence must be a number from 0 to 1, got nan``)."""

from __future__ import annotations

import numbers

__all__ = ["MIN_SIDE", "check_confidence", "check_side"]

#: Smallest side length (pixels) accepted for ``max_side`` and ``zoom``.
MIN_SIDE = 64


def check_confidence(value: object) -> float:
    """``value`` as a float when it is a number from 0 to 1 (NaN is not); else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"must be a number from 0 to 1, got {value!r}")
    return float(value)


def check_side(value: object) -> int | None:
    """``value`` when it is ``None`` or a whole number of at least :data:`MIN_SIDE`; else ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < MIN_SIDE:
        raise ValueError(f"must be a whole number of at least {MIN_SIDE}, got {value!r}")
    return int(value)

