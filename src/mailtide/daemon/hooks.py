"""The user's hooks: programs run before and after a sync, and for new mail.

Contract of ``run_hook``:
- ``argv`` is run as given (no shell), with the environment of mailtide plus ``env``, in a
  session of its own, with ``stdin`` on its standard input (closed after it).
- It never raises and never takes longer than ``timeout`` seconds: a hook that runs longer is
  killed (its whole process group) and reported; a hook that fails (exit status not 0, or a
  program that cannot be started) is reported with its status and the first line of its
  standard error.  Its standard output is logged at debug level.  The sync goes on either way.

What the hooks are given (``sync_env``, ``changes_input``, ``new_mail_input``) is documented in
README ("Hooks"); the lines on standard input are a stable interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Protocol

import structlog

from mailtide.deadline import within

log = structlog.get_logger(__name__)

HEADER_BYTES = 64 << 10  # of a new message read for From, Subject and Date


class LocalChange(Protocol):
    """A file the sync added, renamed (a flag change) or removed in the Maildir."""

    @property
    def kind(self) -> str: ...  # "added", "renamed", "moved", "removed"

    @property
    def folder(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def old_path(self) -> str | None: ...  # for "renamed" and "moved"


async def run_hook(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    stdin: bytes = b"",
    timeout: float = 60.0,
) -> bool:
    """Run one hook (see the module's contract); True when it exited 0 in time."""
    hook_log = log.bind(hook=name, program=argv[0])
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **env},
            start_new_session=True,
        )
    except OSError as exc:
        hook_log.warning("hook.failed", error=f"cannot run {argv[0]}: {exc.strerror or exc}")
        return False
    try:
        out, err = await within(proc.communicate(stdin), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await proc.wait()
        hook_log.warning("hook.timeout", timeout=timeout)
        return False
    except (BrokenPipeError, ConnectionResetError):  # it did not read its input: fine
        out, err = b"", b""
        await proc.wait()
    if out.strip():
        hook_log.debug("hook.output", first_line=_first_line(out))
    if proc.returncode != 0:
        hook_log.warning("hook.failed", status=proc.returncode, stderr=_first_line(err) or None)
        return False
    hook_log.debug("hook.done")
    return True


def _first_line(data: bytes) -> str:
    return data.decode(errors="replace").strip().partition("\n")[0][:300]


def sync_env(
    account: str, mode: str, mailboxes: Sequence[str] | None, counts: Mapping[str, int], result: str
) -> dict[str, str]:
    """The environment of a presync (no counts, no result yet) or postsync hook."""
    env = {
        "MAILTIDE_ACCOUNT": account,
        "MAILTIDE_MODE": mode,
        "MAILTIDE_MAILBOXES": "\n".join(mailboxes) if mailboxes is not None else "",
        "MAILTIDE_ALL_MAILBOXES": "1" if mailboxes is None else "0",
    }
    if result:
        env["MAILTIDE_RESULT"] = result
    for key, n in counts.items():
        env[f"MAILTIDE_{key.upper()}"] = str(n)
    return env


def changes_input(changes: Sequence[LocalChange]) -> bytes:
    """One line per local file the sync touched, tab-separated: ``added<TAB>path``,
    ``renamed<TAB>old<TAB>new`` (a flag change), ``removed<TAB>path``.  A message moved to
    another folder is its old path removed and its new path added: an indexer that keys on
    the folder (notmuch) must see it leave one and reach the other."""
    lines = []
    for c in changes:
        if c.kind == "renamed" and c.old_path is not None:
            lines.append(f"renamed\t{c.old_path}\t{c.path}")
        elif c.kind == "moved" and c.old_path is not None:
            lines += [f"removed\t{c.old_path}", f"added\t{c.path}"]
        else:
            lines.append(f"{c.kind}\t{c.path}")
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def new_mail_input(account: str, added: Sequence[LocalChange]) -> bytes:
    """One JSON object per line per new message: account, folder, path, from, subject, date,
    message_id (headers decoded; null where the message has none or cannot be read)."""
    lines = []
    for c in added:
        headers = _headers(c.path)
        lines.append(
            json.dumps(
                {
                    "account": account,
                    "folder": c.folder,
                    "path": c.path,
                    "from": headers.get("from"),
                    "subject": headers.get("subject"),
                    "date": headers.get("date"),
                    "message_id": headers.get("message-id"),
                },
                ensure_ascii=False,
            )
        )
    return "".join(line + "\n" for line in lines).encode()


def _headers(path: str) -> dict[str, str]:
    # Imported here: the email package costs every one-shot sync's start-up, and only a
    # newmail hook reads headers.
    import email.parser
    import email.policy

    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError:
        return {}
    head = head.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    out = {}
    for key in ("from", "subject", "date", "message-id"):
        value = message.get(key)
        if value is not None:
            out[key] = _decoded(value)
    return out


def _decoded(value: object) -> str:
    import email.header

    try:
        parts = email.header.decode_header(str(value))
        text = "".join(
            p.decode(charset or "ascii", "replace") if isinstance(p, bytes) else p
            for p, charset in parts
        )
    except (LookupError, ValueError):
        text = str(value)
    return " ".join(text.split())
