"""The server session a sync begins before the command's other modules load (issue 12).

A ``mailtide sync`` spends its first moments in two places that do not wait for each other:
loading its modules (structlog, the command line, the check's own, then the engine's: 40 to
150 ms) and the server's answers to the session that reads its folders (connect, greeting,
login, NAMESPACE, LIST-STATUS: 20-25 ms of Dovecot's time when nothing changed, 100 ms and
more when many folders did, since a STATUS reads each changed folder again).  So the
command's entry (``entry.py``) calls ``start`` first: it reads the configuration and, for each
IMAP side of each account the run covers, begins that session (probe.py) on a thread of its
own, and only then do the other modules load.  Who takes the answers:

- the quiet check (check.py, ``take``), for an account with a proof: it compares them with
  the proof instead of opening a session itself;
- the sync's store (``hand_over``, then ``wiring``), for an account the engine runs: its first
  folder listing is these answers instead of a LIST of its own, and its connections begin
  together as soon as they are read, instead of one for the LIST and the others after it.

Only what either would do itself, so nothing it decides changes:

- only for a plain ``mailtide sync`` (the options that skip the check, or any the scan here
  does not know, start nothing), an account the check covers (reach.py: no hooks, no Gmail
  mode), and an IMAP side whose password is read at once (a command or the keyring is left
  to the check and the sync: it is asked once; OAuth2 is the engine's);
- the same session: the server, the trust and the password of the same repository;
- taken by the check of that account and side only for an equal repository while the proof
  it reads is the one read here; by the sync's store only for an equal repository while the
  account's state is as it was before the session began (``StateDB.at_lock``): a sync that
  ran in between may have written the server since.

The answers are read a moment before the check's own session, or the store's connection,
would have read them: the server as it was then.  A change after that moment is the next
sync's, as a change just after their own LIST is.  A session nobody takes ends on its own.
Nothing here writes, locks or logs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailtide.config import Config, ImapRepository, load_config
from mailtide.core.model import SIDES
from mailtide.quiet import reach
from mailtide.state import quiet as proof
from mailtide.state.checked import settled_signature
from mailtide.state.lock import state_file
from mailtide.stores.imap import tcp
from mailtide.stores.imap.seen import Begun

if TYPE_CHECKING:
    import _socket

    from mailtide.stores.imap.credentials import Credentials
    from mailtide.stores.imap.seen import Listing

# Seconds a session's answers are taken by a sync's store after it ended: an account synced
# after others that took long lists its folders anew.
FRESH = 10.0

# Options of ``mailtide sync`` that leave the quiet check as it is; any other word but the
# command's name and these options' values starts nothing.
_FLAGS = frozenset({"-q", "--quiet", "--verbose", "--now"})
_VALUED = frozenset({"-c", "--config", "-a", "--account", "--log-format"})


@dataclass(eq=False, slots=True)
class _Session:
    """One side's session.  Its thread connects at once, then waits for ``go``: by then the
    modules of the rest of the session (the probe's, the password's) have loaded, and
    ``read`` is what reads the answers over the connection (None: nothing to read)."""

    account: str
    side: int
    repo: ImapRepository
    recorded: proof.Proof | None  # None: the account has no proof (the engine runs)
    state: str | None  # the account's state's signature before the session began
    go: threading.Event = field(default_factory=threading.Event)
    read: Callable[[_socket.socket], Listing] | None = None
    credentials: Credentials | None = None
    done: threading.Event = field(default_factory=threading.Event)
    listing: Listing | None = None
    failure: str | None = None  # the probe's Unavailable, or the connection's failure
    crashed: bool = False  # anything else: the check reads again itself
    checked: bool = False  # the check took it
    ended_at: float = 0.0  # time.monotonic() when it ended

    def fresh(self) -> Listing | None:
        """The answers once the session has ended, while they are fresh (``FRESH``); None
        when it read none."""
        self.done.wait()
        if self.crashed or time.monotonic() - self.ended_at > FRESH:
            return None
        return self.listing

    def run(self) -> None:
        try:
            try:
                connected = tcp.connect(self.repo.host, self.repo.port, self.repo.timeout)
            except OSError as e:
                self.failure = tcp.unreachable(self.repo.host, self.repo.port, e)
                return
            self.go.wait()
            if self.read is None:
                connected.close()
                self.crashed = True
                return
            from mailtide.stores.imap.probe import Unavailable  # loaded by now (``go``)

            try:
                self.listing = self.read(connected)
            except Unavailable as e:
                self.failure = str(e)
        except BaseException:
            self.crashed = True
        finally:
            self.ended_at = time.monotonic()
            self.done.set()


_sessions: dict[tuple[str, int], _Session] = {}
_read: tuple[str | None, Config] | None = None  # the ``-c`` value given and the config read


def start(argv: Sequence[str], before_threads: Callable[[], object] = lambda: None) -> None:
    """Begin the quiet check's session of each account a plain ``mailtide sync`` given
    ``argv`` checks; nothing for any other command line, or when anything is amiss (the
    command then says what).  ``before_threads`` is called before the first session's thread
    starts (the process's one heap: ``daemon.memory.one_heap``)."""
    try:
        _start(argv, before_threads)
    except Exception:  # the command does it all again, and says what is wrong its own way
        return


def _start(argv: Sequence[str], before_threads: Callable[[], object]) -> None:
    global _read
    wanted = plain_sync(argv)
    if wanted is None:
        return
    path, names = wanted
    config = load_config(path)  # a ConfigError begins nothing (``start``)
    _read = (path, config)
    sessions = [
        session
        for name in dict.fromkeys(names or config.general.accounts)
        if name in config.account_names
        for session in _sessions_of(config, name)
    ]
    if not sessions:
        return
    before_threads()
    for session in sessions:  # each connects while the modules of the rest load
        _sessions[(session.account, session.side)] = session
        threading.Thread(target=session.run, name="mailtide-quiet", daemon=True).start()
    for session in sessions:
        _prepare(session)


def config(path: str | None) -> Config | None:
    """The configuration ``start`` read, when it read the one at ``path`` (the ``-c`` value,
    None for the default place); None otherwise."""
    if _read is not None and _read[0] == path:
        return _read[1]
    return None


def take(
    account: str, side: int, repo: ImapRepository, recorded: proof.Proof
) -> tuple[list[str], Credentials] | None:
    """The answers of the session ``start`` began for that side of ``account``, with the
    credentials it logged in with, once it has ended: only where it was begun for a
    repository equal to ``repo`` with ``recorded`` as the proof; None otherwise (the check
    then reads them itself).  ``Unavailable`` when that session could not read them."""
    from mailtide.stores.imap.probe import Unavailable

    session = _sessions.get((account, side))
    if (
        session is None
        or session.checked
        or session.recorded is None
        or session.repo != repo
        or session.recorded != recorded
    ):
        return None
    session.checked = True
    session.done.wait()
    if session.crashed or session.credentials is None:
        return None
    if session.listing is None:
        raise Unavailable(session.failure or "no answers")
    return session.listing.answers(), session.credentials


def hand_over() -> dict[tuple[str, int], Begun]:
    """Every session begun, by account and side, for the sync's stores (``wiring``), which no
    longer wait here: a store whose account has one waits for it to end (it logs out by
    itself) before its first connection (``max_connections``), and takes its answers where
    they apply."""
    handed = {
        key: Begun(session.repo, session.state, session.fresh) for key, session in _sessions.items()
    }
    _sessions.clear()
    return handed


def plain_sync(argv: Sequence[str]) -> tuple[str | None, list[str] | None] | None:
    """For ``mailtide sync`` with only options that leave the quiet check as it is: the
    ``-c`` value and the ``-a`` accounts given (None for either not given); else None."""
    path: str | None = None
    names: list[str] | None = None
    command = False
    words = iter(argv)
    for word in words:
        option, equals, inline = word.partition("=")
        if word.startswith("--") and equals and option in _VALUED:
            value: str | None = inline
        elif word in _VALUED:
            value = next(words, None)
            option = word
        elif word in _FLAGS or (len(word) > 1 and word == "-" + "v" * (len(word) - 1)):
            continue
        elif word == "sync" and not command:
            command = True
            continue
        else:
            return None
        if value is None:
            return None
        if option in ("-c", "--config"):
            path = value
        elif option in ("-a", "--account"):
            if "\\" in value:  # an escaped comma: left to the command line's own reading
                return None
            names = (names or []) + [n.strip() for n in value.split(",") if n.strip()]
    return (path, names) if command else None


def _sessions_of(config: Config, name: str) -> list[_Session]:
    """A session for each IMAP side of account ``name`` that the check will read."""
    account = config.account(name)
    if not reach.covered(account):
        return []
    db = state_file(config.general.state_dir, name)
    state = settled_signature(db)  # before the session: what the sync's store compares
    recorded = proof.read(db)
    if recorded is None and not proof.reached(db, config.path):
        return []  # the last run did not log in (a refused password is not tried twice)
    return [
        _Session(name, side, repo, recorded, state)
        for side, repo in zip(SIDES, (account.remote, account.local), strict=True)
        if isinstance(repo, ImapRepository) and reach.at_once(repo)
    ]


def _prepare(session: _Session) -> None:
    """Load what the rest of ``session`` needs, then let its thread go on (with nothing to
    read when the check could not read this side itself either)."""
    import functools

    from mailtide.stores.imap.probe import listing_now

    try:
        session.credentials = reach.credentials(session.repo, blocking=False)
        server = reach.server(session.repo)  # loads TLS's modules where it is used
        if server.tls != "none":
            import socket  # noqa: F401  (the TLS of the session wraps one)
        session.read = functools.partial(listing_now, server, session.credentials)
    except Exception:  # Unavailable or else: nothing to read, the check reads it its own way
        pass
    finally:
        session.go.set()  # the thread imports nothing more while the command's modules load
