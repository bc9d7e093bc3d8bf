"""mailtide: a two-way IMAP <-> Maildir mail synchroniser."""

from mailtide import loading

loading.pause()  # while the package loads (loading.py); resumed at the end of this file

from pathlib import Path  # noqa: E402

from mailtide import compiled_methods, structlog_load  # noqa: E402

__version__ = "0.1.0"

# Before any value class is built (issue 12: a third of a sync's start-up CPU).
compiled_methods.install(Path(__file__).parent)

structlog_load.defer()  # loaded at its first use, without what mailtide never uses

loading.resume()
