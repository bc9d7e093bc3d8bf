"""Loading the program without the cyclic garbage collector.

While modules load, nearly every object made lives as long as the process (functions,
classes, constants), yet the collector walks the young ones again every 700 allocations:
a no-change sync ran it 80 times, 4 % of its instructions (about 9 ms of CPU, issue 12).  So the
collector is paused while mailtide loads and turned back on, with what has loaded moved out of
its reach (``gc.freeze``), before the work that makes garbage begins: the end of the package's
own loading (``mailtide/__init__.py``), and, for the command line (``entry.run``), the start of
its command's event loop.  Whoever pauses resumes; a library user of mailtide finds the
collector as it left it.  A cycle that was already garbage when the objects were frozen stays
in memory until exit (``gc.unfreeze`` gives them back), the price of never walking the
program's own objects again.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Stop cyclic collection until ``resume``, if it is on (else nothing changes)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Collection on again if ``pause`` stopped it; every object alive now is frozen (never
    walked again).  Without a pause, nothing changes."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
