"""structlog, loaded without the parts mailtide never uses (issue 12: every run's start-up).

Importing any part of structlog runs its ``__init__``, which loads every submodule:

- ``rich``, when it is installed (as import-linter's dependencies are in a development venv),
  for tracebacks mailtide does not show: about 90 ms.  It is hidden while structlog loads (its
  modules fall back to plain tracebacks) and importable again afterwards.
- ``structlog.threadlocal``, deprecated, for context in thread-local dicts (mailtide binds
  context with ``structlog.contextvars``): it loads ``uuid``, which loads ``platform`` and asks
  the system for its name, 10M instructions of a no-change sync's 563M.  It is bound lazily
  (``importlib.util.LazyLoader``): the module object is there at once, and its code runs the
  first time one of its names is used.
- ``asyncio``, which ``structlog.stdlib`` and ``structlog._native`` import for their async
  loggers, used only inside their functions: about 60 ms of a start on a slow machine, which
  a run that needs no event loop (the quiet check, quiet/check.py) would pay for nothing.
  While structlog loads, ``asyncio`` is a stand-in module that imports the real one the
  first time one of its names is used; afterwards ``import asyncio`` loads the real one.

And not before its first use (``defer``, from ``mailtide/__init__.py``): ``import structlog``
gives a stand-in module whose first name asked (a logger, a submodule) loads the real one as
above.  So what runs before any module logs, such as the quiet check's server session begun
while the command's modules load (quiet/early.py), does not wait for structlog's 10 ms.
"""

from __future__ import annotations

import _thread
import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

HIDDEN = ("rich",)
LAZY = ("structlog.threadlocal",)
DEFERRED = ("asyncio",)


def defer() -> None:
    """Make structlog load at its first use (``load`` then), unless it or rich is loaded
    already."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["structlog"] = _OnFirstUse("structlog")


def load() -> None:
    """Import structlog, unless it (or rich) is loaded already: then it is left as it is."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    for name in HIDDEN:
        sys.modules[name] = None  # type: ignore[assignment]
    deferred = [name for name in DEFERRED if name not in sys.modules]
    for name in deferred:
        sys.modules[name] = _Deferred(name)
    sys.meta_path.insert(0, _Lazily)
    try:
        import structlog  # noqa: F401
    finally:
        sys.meta_path.remove(_Lazily)
        for name in HIDDEN:
            del sys.modules[name]
        for name in deferred:
            if isinstance(sys.modules.get(name), _Deferred):
                del sys.modules[name]


class _Deferred(ModuleType):
    """A stand-in for a module that its importers use only inside their functions: the first
    name asked of it imports the real module (no longer shadowed in ``sys.modules``).  Unlike
    a lazy module (below), it has a plain ``__spec__`` (None), so a second ``import`` of it
    while structlog loads does not load it."""

    def __getattr__(self, name: str) -> object:
        return getattr(importlib.import_module(self.__name__), name)


_first_use = _thread.allocate_lock()


class _OnFirstUse(_Deferred):
    """structlog's stand-in until its first use: the first name asked of it (by ``from
    structlog import``, a submodule's import, an attribute) takes it out of ``sys.modules``
    and loads the real structlog (``load``); every name is then the real module's, looked up
    there each time, as a ``_Deferred`` does (a name set or patched on the real module is the
    one seen)."""

    def __getattr__(self, name: str) -> object:
        with _first_use:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
                load()
        return super().__getattr__(name)


class _Lazily:
    """A finder for the ``LAZY`` modules: found where the import system finds them, with a
    loader that runs their code at first use.  (A lazy module put in ``sys.modules`` in advance
    would not do: the import system looks at its ``__spec__``, and that is a use.)"""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in LAZY:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec
