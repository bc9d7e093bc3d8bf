"""The command line's parser: argparse's, with help as wide as the terminal, measured without
``shutil``.

argparse builds a help formatter for every option it adds (to check the option's metavar), and
a formatter asks ``shutil.get_terminal_size`` for its width: importing ``shutil`` loads the
``zlib``, ``bz2`` and ``lzma`` extension modules, on every start of every command (issue 12).
The width is found here the same way (``$COLUMNS``, else the terminal on stdout, else 80).

And argparse's own phrases ("usage: ", "options", its errors) in English, as the rest of
mailtide's words: argparse asks ``gettext`` for each one as it builds a parser, and each ask
looks for a translation catalogue on disk (Python ships none for argparse) and loads
``locale`` first: 3 ms of every start (issue 12; a no-change sync is 80 ms).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

FALLBACK_COLUMNS = 80


def _as_written(message: str) -> str:
    return message


def _as_written_n(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


argparse._ = _as_written  # type: ignore[attr-defined]  # its phrases as written (above)
argparse.ngettext = _as_written_n  # type: ignore[attr-defined]


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without loading ``shutil``."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
        columns = 0
    return columns or FALLBACK_COLUMNS


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, as wide as ``terminal_columns`` says (less 2, as argparse does)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class Parser(argparse.ArgumentParser):
    """argparse's parser with ``HelpFormatter`` as its default; its subcommands' parsers are
    of this class too (argparse makes them of the class of the parser they belong to)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
