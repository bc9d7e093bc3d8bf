"""How a TOML value appears in a message for the user."""

from __future__ import annotations

import json


def show_value(value: object) -> str:
    """A value as the user wrote it: a string quoted (JSON escapes), a number as is."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def kind_of(value: object) -> str:
    """What a TOML value is, with its article: "a string", "an integer", "a table"."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"
