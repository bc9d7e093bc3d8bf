"""The ``mailtide`` command: what can begin before the command line's modules load begins,
then the command line runs (``cli.main``), and the process ends without the interpreter's
teardown (``process_exit``).

What begins first: the quiet check's server session, for a plain ``mailtide sync``
(quiet/early.py), which then waits for the server while structlog and the command line load.
The command's modules load without the cyclic garbage collector (``loading``), which is on
again once the command begins its work.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from mailtide import loading


def run() -> NoReturn:
    """The console script's entry (and ``python -m mailtide``'s)."""
    loading.pause()
    from mailtide.process_exit import exit_now

    exit_now(command(sys.argv[1:]))


def command(argv: Sequence[str]) -> int:
    """The command line ``argv``: its exit code."""
    from mailtide.daemon import memory
    from mailtide.quiet import early

    early.start(argv, before_threads=memory.one_heap)
    from mailtide.cli import main

    return main(argv)
