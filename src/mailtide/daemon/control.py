"""The daemon's control socket: ``mailtide status`` and ``mailtide sync`` talk to it.

Each daemon listens on a Unix stream socket of its own, ``<runtime dir>/daemon-<pid>.sock``,
where the runtime dir is ``$XDG_RUNTIME_DIR/mailtide`` (else ``<tmp>/mailtide-<uid>``), mode
0700 and owned by the user; the socket is 0600.  A client asks every socket there (one daemon
per account under ``mailtide@ACCOUNT.service``, or one for all accounts) and skips the stale
ones of daemons that are gone.  The daemon's side is control_server.py: a client (a one-shot
``mailtide sync`` asking whether a daemon holds its accounts) loads no event loop.

The protocol is one JSON object per line each way:

    {"op": "status"}
      -> {"ok": true, "pid": 123, "accounts": [<AccountStatus.as_json()>, ...]}
    {"op": "sync", "accounts": ["work"] | null, "folders": [...] | null, "full": false,
     "allow_mass_delete": false, "restore_deleted": false, "wait": true}
      -> {"ok": true, "pid": 123, "reports": [<report>, ...]}   (after the syncs, with wait)
    errors: {"ok": false, "error": "..."}

A report: {"account", "result" ("ok" | "stranded" | "failed" | "stopped"), "usage" (bool),
"failures": [line, ...], "stranded": [line, ...], "counts": {...}}.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MAX_REQUEST = 64 << 10


class ControlError(Exception):
    """A control socket cannot be used (the message is for the user)."""


# Where tempfile.gettempdir() looks, in its order (tempfile._candidate_tempdir_list on POSIX):
# it takes the first it can write a file in.
_TMP_VARIABLES = ("TMPDIR", "TEMP", "TMP")
_TMP_DIRS = ("/tmp", "/var/tmp", "/usr/tmp")


def runtime_dir() -> Path:
    """The directory of the control sockets (created 0700 on demand by ``listen``)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base) / "mailtide"
    import tempfile  # without XDG_RUNTIME_DIR only: it costs a sync's start-up 5-10 ms

    return Path(tempfile.gettempdir()) / f"mailtide-{os.getuid()}"


def _no_socket_in_any_tmp() -> bool:
    """Without XDG_RUNTIME_DIR: whether no directory ``runtime_dir`` could name holds a daemon's
    socket, so there is no daemon to find whichever tempfile would pick (finding out costs
    a sync's start-up tempfile, which loads shutil and writes a probe file)."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return False
    candidates = [os.environ.get(name) for name in _TMP_VARIABLES] + [*_TMP_DIRS, os.curdir]
    name = f"mailtide-{os.getuid()}"
    for candidate in filter(None, candidates):
        try:
            entries = os.listdir(os.path.join(candidate, name))
        except OSError:  # none there (or none this user may list)
            continue
        if any(e.startswith("daemon-") and e.endswith(".sock") for e in entries):
            return False
    return True


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter (refused if someone else owns it)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ControlError(f"{path} is not a directory of this user: refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


@dataclass(frozen=True, slots=True)
class Peer:
    """A running daemon's socket."""

    path: Path
    pid: int


def peers() -> Iterator[Peer]:
    """The sockets of the daemons of this user that are still running (stale ones removed)."""
    if _no_socket_in_any_tmp():
        return
    directory = runtime_dir()
    try:
        st = directory.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return
    for path in sorted(directory.glob("daemon-*.sock")):
        try:
            pid = int(path.stem.removeprefix("daemon-"))
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        except PermissionError:
            continue
        yield Peer(path, pid)


def ask(peer: Peer, request: dict[str, Any], timeout: float | None = 10.0) -> dict[str, Any]:
    """Send one request to a daemon and return its answer (blocking: for the command line)."""
    import socket  # only with a daemon to ask: a sync's start-up without one is spared it

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(peer.path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise ControlError(f"the daemon (pid {peer.pid}) did not answer in time") from None
        except OSError as exc:
            raise ControlError(f"cannot reach the daemon (pid {peer.pid}): {exc}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise ControlError(f"the daemon (pid {peer.pid}) gave no answer") from None
    if not isinstance(answer, dict):
        raise ControlError(f"the daemon (pid {peer.pid}) gave a malformed answer")
    return answer
