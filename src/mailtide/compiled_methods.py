"""The methods ``dataclasses`` writes for each value class, compiled once and kept like bytecode.

Building a frozen, slotted dataclass compiles five or six functions (``__init__``, ``__eq__``,
``__hash__``, ``__repr__``, ``__setattr__``, ``__delattr__``) from source text it writes.
mailtide defines about a hundred such classes on the way to a sync, and compiling their methods
was a third of a no-change sync's start-up CPU (issue 12: 559 functions, 50-120 ms).  The text
depends only on a class's fields and options, and compiling a text is pure, so the code
compiled from each text is kept in one file, keyed by the text itself, and read back at the
next start (about 4 ms for all of them).

The file is kept the way Python keeps a module's bytecode: in the package's ``__pycache__``,
named for the interpreter (``dataclass-methods.cpython-311.marshal``), headed by the bytecode's
magic number (a file from another Python is ignored), written atomically at exit only when
something new was compiled and only where Python writes bytecode (not under ``-B`` or
``PYTHONDONTWRITEBYTECODE``), and read only when it is the user's own (or root's) and nobody
else may write it.  Whatever goes wrong with it (unreadable, damaged, a read-only install),
each text is compiled as ``dataclasses`` would have: the cache can make a start slower, never
different.

The hook is the name ``exec`` in the ``dataclasses`` module, which its builder calls with the
text, the class's globals and a namespace; ``_exec`` hands ``exec`` the cached code instead of
the text.  Compiled with ``dont_inherit``, as ``dataclasses`` compiles (it has no
``__future__`` imports): the methods' annotations are the same objects either way.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import importlib.util
import marshal
import os
import stat
import sys
from pathlib import Path
from types import CodeType
from typing import Any

_MAGIC = importlib.util.MAGIC_NUMBER
_LIMIT = 4 << 20  # bytes: a file grown past it (many versions' classes) starts over

_codes: dict[str, CodeType] = {}
_used: set[str] = set()  # the texts this process built classes from
_compiled = 0  # texts compiled in this process (not found in the file)
_path: Path | None = None


def cache_file(package: Path) -> Path:
    """Where the compiled methods of the package at ``package`` are kept."""
    tag = sys.implementation.cache_tag or "python"
    return package / "__pycache__" / f"dataclass-methods.{tag}.marshal"


def compiled() -> int:
    """How many method texts this process compiled because the file did not hold them."""
    return _compiled


def install(package: Path) -> None:
    """Serve ``dataclasses``' method texts from the file kept for ``package`` (once per
    process; a no-op where ``dataclasses`` already has an ``exec`` of someone else's)."""
    global _path
    if _path is not None or "exec" in vars(dataclasses):
        return
    _path = cache_file(package)
    _codes.update(_read(_path))
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    atexit.register(_save)


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    global _compiled
    if isinstance(source, str):
        _used.add(source)
        code = _codes.get(source)
        if code is None:
            code = _codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            _compiled += 1
        source = code
    builtins.exec(source, globals, locals)


def _read(path: Path) -> dict[str, CodeType]:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid not in (os.geteuid(), 0) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return {}
            if f.read(len(_MAGIC)) != _MAGIC:
                return {}
            codes = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(codes, dict):
        return {}
    return {k: v for k, v in codes.items() if isinstance(k, str) and isinstance(v, CodeType)}


def _save() -> None:
    """At exit: the file again, with what this process compiled (written like a .pyc)."""
    if not _compiled or _path is None or sys.dont_write_bytecode:
        return
    data = _MAGIC + marshal.dumps(_codes)
    if len(data) > _LIMIT:  # the classes of many versions: keep this one's
        data = _MAGIC + marshal.dumps({text: _codes[text] for text in _used})
    tmp = _path.with_name(f"{_path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        _path.parent.mkdir(exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, _path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
