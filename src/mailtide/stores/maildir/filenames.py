"""Maildir file names: ``<unique>[:2,<letters>]``.

The unique part is the message's id in this store: flag changes rename the
file but keep it, and so does another client moving it from new/ to cur/.
We write ``<secs>.M<usec>P<pid>Q<n>.<host>,U=<uid>,S=<size>`` (the Maildir
spec's recommended form plus mbsync's ``,U=`` and Dovecot's ``,S=``, which
carries the LF size so a snapshot needs no stat).
"""

from __future__ import annotations

import itertools
import os
import re
import time

from mailtide.private import make_dirs

INFO = ":2,"
_SIZE = re.compile(r",S=(\d+)(?=,|$)")
_counter = itertools.count(1)


def split_name(filename: str) -> tuple[str, str | None]:
    """(unique id, info letters or None when the name has no ``:2,`` info)."""
    unique, sep, letters = filename.rpartition(INFO)
    if not sep:
        return filename, None
    return unique, letters


def size_of(unique: str) -> int | None:
    m = _SIZE.search(unique)
    return int(m.group(1)) if m else None


def full_name(unique: str, letters: str | None) -> str:
    return unique if letters is None else f"{unique}{INFO}{letters}"


def _escaped_host() -> str:
    # the Maildir spec escapes "/" and ":"; "," too, so our ",U=" / ",S=" fields stay unambiguous
    # the kernel's node name, which gethostname() returns, without loading the socket module
    host = os.uname().nodename or "localhost"
    return host.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


_HOST = _escaped_host()


# new_unique's form, on this host: the pid tells whose run wrote a file left in tmp/
_OURS = re.compile(rf"\d+\.M\d+P(\d+)Q\d+\.{re.escape(_HOST)}(?=,|$)")


def writer_pid(filename: str) -> int | None:
    """The pid of the mailtide process on this host that made ``filename`` (a name from
    ``new_unique``), or None when it is not such a name."""
    m = _OURS.match(filename)
    return int(m.group(1)) if m else None


def new_unique(hint: str | None) -> str:
    """A fresh unique name (without ``,S=``, which is added once the size is known)."""
    now = time.time_ns()
    secs, usec = divmod(now // 1000, 1_000_000)
    name = f"{secs}.M{usec}P{os.getpid()}Q{next(_counter)}.{_HOST}"
    if hint is not None and hint.isdigit() and hint.isascii():
        name += f",U={hint}"
    return name


def temp_path(folder: str) -> str:
    """A path for a new file of ours in ``folder``'s tmp/ (made 0700 when missing), under a
    fresh unique name: left behind by a crash, it is known as ours and cleared (leftovers.py).
    Files renamed into place elsewhere (dovecot-keywords, .mailtide-id) are written here too."""
    make_dirs(os.path.join(folder, "tmp"))
    return os.path.join(folder, "tmp", new_unique(None))


def with_size(unique: str, size: int) -> str:
    return f"{unique},S={size}"
