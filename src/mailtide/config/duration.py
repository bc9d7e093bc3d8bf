"""Durations in the config: how long to wait, how often to do something.

A TOML number is seconds (``90``, ``0.5``).  A string is one or more numbers each with a
unit, largest unit first, each unit once: ``"30s"``, ``"15m"``, ``"1h30m"``, ``"500ms"``,
``"1.5h"``.  Units are ``h``, ``m``, ``s`` and ``ms``, in any case; spaces between the parts
are allowed (``"1h 30m"``).  A bare number in a string (``"30"``), a negative value, NaN or
infinity is refused: each is more likely a mistake than a wish.

The string's parts are added exactly (as whole numbers of a common decimal unit) and rounded
once, by Python's correctly rounded integer division, so ``"1h30m"`` is exactly 5400.0 and
``show_duration`` of a whole number of milliseconds reads back to the same float.
"""

from __future__ import annotations

import math
import re

from mailtide.config.show import kind_of, show_value

# Largest first: the order a string must use, and the order show_duration writes; in ms.
_UNITS: tuple[tuple[str, int], ...] = (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
_FACTORS = dict(_UNITS)
_ORDER = {unit: rank for rank, (unit, _) in enumerate(_UNITS)}
# "ms" before "m", so "500ms" is not read as 500 minutes and a stray "s".
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|h|m|s)", re.IGNORECASE)

FORMS = (
    "write a number of seconds such as 90 or 0.5, or a string with units h, m, s, ms"
    ' such as "30s", "15m", "1h30m", "500ms"'
)


class BadDuration(ValueError):
    """The value is not a duration; the message says why and what to write instead."""


def parse_duration(value: object) -> float:
    """Seconds from a TOML value: a non-negative number, or a string as described above.

    Raises BadDuration, whose message shows the value and the accepted forms.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadDuration(f"must be a duration, not {kind_of(value)} ({FORMS})")
    seconds = _seconds(value) if isinstance(value, str) else value
    if seconds is None or not math.isfinite(seconds):
        raise BadDuration(f"not a duration: {show_value(value)} ({FORMS})")
    if seconds < 0:
        raise BadDuration(f"must not be negative: {show_value(value)} ({FORMS})")
    return abs(float(seconds))  # -0.0 (TOML "-0.0", "-0s") is 0


def _seconds(text: str) -> float | None:
    """The seconds a duration string means (negative for a leading "-"), or None."""
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body.removeprefix("-")
    parts: list[tuple[str, int, int]] = []  # digits, how many after the point, ms per unit
    last, position = -1, 0
    while position < len(body):
        m = _PART.match(body, position)
        if m is None:
            return None
        unit = m.group(2).lower()
        if _ORDER[unit] <= last:
            return None  # "30m1h" or "1m1m": a slip, not a duration
        last = _ORDER[unit]
        whole, _, fraction = m.group(1).partition(".")
        parts.append((whole + fraction, len(fraction), _FACTORS[unit]))
        position = m.end()
    if last < 0:
        return None  # "" or only spaces
    scale = max(places for _, places, _ in parts)
    try:
        total: int = sum(int(d or "0") * 10 ** (scale - places) * ms for d, places, ms in parts)
        whole_units: int = 10**scale * 1000
        return sign * (total / whole_units)
    except (OverflowError, ValueError):  # beyond a float, or more digits than int() reads
        return None


def show_duration(seconds: float) -> str:
    """``seconds`` written the way the config accepts it, e.g. 5400.0 -> "1h30m", 0.3 -> "300ms".

    Whole milliseconds are written exactly; anything finer as a number of seconds.
    """
    millis = round(seconds * 1000)
    if millis / 1000 != seconds or millis < 0:
        return f"{seconds:g}s"
    parts = []
    for unit, factor in _UNITS:
        count, millis = divmod(millis, factor)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
