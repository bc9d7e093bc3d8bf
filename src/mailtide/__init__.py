"""mailtide: a two-way IMAP <-> Maildir mail synchroniser."""

import sys

from mailtide import loading

loading.pause()  # while the package loads (loading.py); resumed at the end of this file

from pathlib import Path  # noqa: E402

from mailtide import compiled_methods  # noqa: E402

__version__ = "0.1.0"

# Before any value class is built (issue 12: a third of a sync's start-up CPU).
compiled_methods.install(Path(__file__).parent)

# structlog loads rich, when it is installed, for its tracebacks: about 90 ms of every start
# (issue 12), for a traceback format mailtide does not use.  It is hidden while structlog
# loads (its modules fall back to plain tracebacks) and importable again afterwards.
if "structlog" not in sys.modules and "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]

loading.resume()
