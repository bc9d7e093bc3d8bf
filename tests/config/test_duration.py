"""The duration type of the config: numbers are seconds, strings carry units."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtide.config.duration import FORMS, BadDuration, parse_duration, show_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (0, 0.0),
        (0.5, 0.5),
        ("30s", 30.0),
        ("15m", 900.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1h 30m 5s 250ms", 5405.25),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("15M", 900.0),
        ("2MS", 0.002),
        ("  10 s ", 10.0),
        ("0s", 0.0),
    ],
)
def test_good(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("15 minutes", 'not a duration: "15 minutes"'),
        ("30", 'not a duration: "30"'),
        ("", 'not a duration: ""'),
        ("1d", 'not a duration: "1d"'),
        ("30m1h", 'not a duration: "30m1h"'),
        ("1m1m", 'not a duration: "1m1m"'),
        ("1,5h", 'not a duration: "1,5h"'),
        ("1e3s", 'not a duration: "1e3s"'),
        ("9" * 400 + "h", 'not a duration: "999'),
        (math.inf, "not a duration: inf"),
        (math.nan, "not a duration: nan"),
        (-5, "must not be negative: -5"),
        (-0.5, "must not be negative: -0.5"),
        ("-5s", 'must not be negative: "-5s"'),
        (True, "must be a duration, not a boolean"),
        ([5], "must be a duration, not a list"),
    ],
)
def test_bad(value: object, message: str) -> None:
    with pytest.raises(BadDuration) as info:
        parse_duration(value)
    assert str(info.value).startswith(message)
    assert str(info.value).endswith(f"({FORMS})")


def test_forms_text() -> None:
    assert FORMS == (
        "write a number of seconds such as 90 or 0.5, or a string with units h, m, s, ms"
        ' such as "30s", "15m", "1h30m", "500ms"'
    )


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (0.3, "300ms"), (60, "1m"), (1740, "29m"), (5400, "1h30m"), (1e-4, "0.0001s")],
)
def test_show(seconds: float, shown: str) -> None:
    assert show_duration(seconds) == shown


@given(st.integers(min_value=0, max_value=10**13))
def test_shown_whole_milliseconds_read_back(millis: int) -> None:
    seconds = millis / 1000
    assert parse_duration(show_duration(seconds)) == seconds


@given(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=4, max_size=4),
    st.lists(st.booleans(), min_size=4, max_size=4).filter(any),
    st.lists(st.sampled_from(["", " "]), min_size=4, max_size=4),
    st.booleans(),
)
def test_parts_add_up(counts: list[int], used: list[bool], gaps: list[str], upper: bool) -> None:
    units = ["h", "m", "s", "ms"]
    text = "".join(
        f"{count}{unit.upper() if upper else unit}{gap}"
        for count, unit, gap, on in zip(counts, units, gaps, used, strict=True)
        if on
    )
    factors = [3_600_000, 60_000, 1000, 1]
    millis = sum(c * f for c, f, on in zip(counts, factors, used, strict=True) if on)
    assert parse_duration(text) == millis / 1000


@given(st.one_of(st.integers(min_value=0, max_value=2**63 - 1), st.floats(min_value=0)))
def test_numbers_are_seconds(value: float) -> None:
    if math.isfinite(value):
        assert parse_duration(value) == float(value)
    else:
        with pytest.raises(BadDuration):
            parse_duration(value)


@pytest.mark.parametrize("value", ["-0s", -0.0, "-0ms"])
def test_negative_zero_is_zero(value: object) -> None:
    seconds = parse_duration(value)
    assert seconds == 0.0 and math.copysign(1.0, seconds) == 1.0
