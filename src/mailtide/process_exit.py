"""Ending the ``mailtide`` process without the interpreter's teardown.

Once a command has run, Python's own shutdown (every module torn down, every object freed,
a last garbage collection) took 60-200 ms of a no-change sync of 0.4 s (issue 12), for nothing
a finished command needs: its files and its state are closed by then.  So the command line
flushes what may still hold output (logging's handlers, stdout, stderr), runs the functions
registered with ``atexit`` (``compiled_methods`` saves its file there), and ends with
``os._exit``.  Only when the main thread is the last one: a thread still running (a library's
worker) gets the ordinary exit, which waits for it.  So does a run under a profiler or a tracer
(``python -m cProfile``, coverage), which writes its results once the program returns.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Exit with ``code`` (0-255) after flushing the output and running the exit functions."""
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if watched or threading.active_count() > 1 or run_exit_functions is None:
        sys.exit(code)
    run_exit_functions()
    logging.shutdown()  # flushes and closes every handler (a log file's last lines)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said
            if stream is not None:
                stream.flush()
    os._exit(code)
