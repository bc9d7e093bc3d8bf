"""Readers of one TOML value: each returns the checked value or raises BadValue.

A reader is called with the value and the config file's directory (for what is relative to
it).  The message of BadValue is for the user; the caller puts ``FILE:LINE: KEY: `` before
it, so it starts with what is wrong ("must be ...") and shows the value as written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailtide.config.duration import BadDuration, parse_duration, show_duration
from mailtide.config.expand import BadPath, expand_program
from mailtide.config.show import kind_of, show_value
from mailtide.core.names import BadFolderName, canonical, check_name

Reader = Callable[[object, Path], Any]


class BadValue(ValueError):
    """The value cannot be used; the message says what is wrong."""


def expect(value: object, kinds: tuple[type, ...], what: str) -> Any:
    """``value`` if it is one of ``kinds``; ``what`` names them in the message."""
    # bool is an int to Python, but `port = true` is a mistake, not port 1.
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise BadValue(f"must be {what}, not {kind_of(value)}")
    return value


def string_list(value: object) -> list[str]:
    items: list[object] = expect(value, (list,), "a list of strings")
    wrong = [item for item in items if not isinstance(item, str)]
    if wrong:
        raise BadValue(f"must be a list of strings, but holds {kind_of(wrong[0])}")
    return [str(item) for item in items]


def boolean(value: object, base_dir: Path) -> bool:
    return bool(expect(value, (bool,), "true or false"))


def _between(low: str, high: str | None, above: bool) -> str:
    if high is None:
        return f"more than {low}" if above else f"at least {low}"
    return f"more than {low} and at most {high}" if above else f"from {low} to {high}"


def integer(low: int, high: int | None = None) -> Reader:
    """An integer from ``low`` to ``high`` (None: no upper bound)."""

    def read(value: object, base_dir: Path) -> int:
        number: int = expect(value, (int,), "an integer")
        if number < low or (high is not None and number > high):
            shown_high = None if high is None else str(high)
            raise BadValue(f"must be {_between(str(low), shown_high, False)}, not {number}")
        return number

    return read


def duration(
    low: float = 0, high: float | None = None, *, above: bool = False, why: str = ""
) -> Reader:
    """Seconds (see ``config.duration``) from ``low`` (or more than it, ``above``) to ``high``.

    ``why`` is added to the message when the value is out of bounds.
    """

    def read(value: object, base_dir: Path) -> float:
        try:
            seconds = parse_duration(value)
        except BadDuration as e:
            raise BadValue(str(e)) from None
        if seconds < low or (above and seconds == low) or (high is not None and seconds > high):
            shown_high = None if high is None else show_duration(high)
            written = show_value(value) + ("" if isinstance(value, str) else " seconds")
            bounds = _between(show_duration(low), shown_high, above)
            raise BadValue(f"must be {bounds}, not {written}{why}")
        return seconds

    return read


def folder_names(value: object, base_dir: Path) -> tuple[str, ...]:
    """Canonical folder names ("/"-separated, "INBOX" for the inbox), each once."""
    names: list[str] = []
    for name in string_list(value):
        try:
            name = canonical(check_name(name))
        except BadFolderName as e:
            raise BadValue(str(e)) from None
        if name in names:
            raise BadValue(f"names {show_value(name)} twice")
        names.append(name)
    return tuple(names)


def command(example: str) -> Reader:
    """An argv list run without a shell; ``example`` shows one in the message for a string.

    The program (the first element) is expanded like a path (``~``, ``$VAR``, relative to
    the config file's directory), except that a name without a "/" is left for $PATH to find
    when it runs.  The arguments are passed as written.
    """

    def read(value: object, base_dir: Path) -> tuple[str, ...]:
        if isinstance(value, str):
            raise BadValue(
                "must be a list of strings, the command and its arguments (run without a"
                f" shell), e.g. {example}, not a string"
            )
        argv = string_list(value)
        if not argv or not argv[0]:
            raise BadValue("must name a command: the list is empty or starts with an empty string")
        try:
            program = expand_program(argv[0], base_dir)
        except BadPath as e:
            raise BadValue(str(e)) from None
        return (program, *argv[1:])

    return read


def auto_or_bool(value: object, _: Path) -> bool | str:
    """ "auto", true or false (``compress``)."""
    if isinstance(value, bool) or value == "auto":
        return value
    raise BadValue(f'must be "auto", true or false, not {show_value(value)}')
