"""One authenticated IMAP connection: TLS, login, capabilities, one command at a time.

Errors are ``StoreError`` with a sentence for the user that names the user
and ``host:port``, never the password.  They are sorted by what may help:

- the connection broke, was reset or refused, or the server stopped answering
  (``ConnectionClosed``, ``CommandTimeout``, a socket error while connecting):
  ``ConnectionLost``, which the engine retries on a new connection;
- a response that does not parse during a command: ``MailboxError`` (the
  connection is dropped; the mailbox fails, the account goes on);
- the server refused the credentials: ``AuthenticationFailed``, never retried (it
  would fail the same way, and repeated failures may lock the account); but a server
  that says it cannot check them now (``NO [UNAVAILABLE]``) is ``ConnectionLost``;
- a certificate that does not verify, a server without STARTTLS, no way to log in
  with the credentials given: a plain ``StoreError``, never retried; so is ``tls``
  set the wrong way round for the port (``TlsMismatch``, see tls.py);
- a client certificate the server wants or refuses, in the TLS handshake, in a TLS 1.3
  alert after it (the connection then ends on the first read) or at login:
  ``ClientCertificateRefused``, an ``AuthenticationFailed`` (see tls_failure.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from typing import Literal as TypingLiteral

import structlog
from aioimaplib import aioimaplib as aio

from mailtide.core.fingerprint import Fingerprint
from mailtide.deadline import within
from mailtide.stores.base import AuthenticationFailed, ConnectionLost, MailboxError, StoreError
from mailtide.stores.imap import deflate, sasl, tls_failure
from mailtide.stores.imap.credentials import Credentials, CredentialSource
from mailtide.stores.imap.keepalive import keep_alive
from mailtide.stores.imap.parse import RawResponse, Untagged, status_text
from mailtide.stores.imap.protocol import (
    CommandTimeout,
    ConnectionClosed,
    Done,
    IdleEnd,
    IdleRefused,
    ImapProtocol,
    OnUntagged,
    Pipelined,
    ProtocolError,
    Sent,
    Window,
    has_literal,
)
from mailtide.stores.imap.seen import enable_wanted
from mailtide.stores.imap.special_use import LeftOut
from mailtide.stores.imap.tls import (
    greeting_wait,
    greets_in_plain,
    not_tls,
    speaks_tls,
    wants_implicit,
    wants_plain,
)
from mailtide.stores.imap.tls_trust import TlsTrust, TlsVersion, check_pin, tls_context
from mailtide.stores.imap.wire import Part, Secret, quote_astring

log = structlog.get_logger(__name__)

T = TypeVar("T")

LOGOUT_WAIT = 5.0  # seconds ``close`` waits for the answer to LOGOUT: a courtesy, not a need
# ... in a task being cancelled: someone waits for it to end, and a live server answers in ms
CANCELLED_LOGOUT_WAIT = 0.5

TlsMode = TypingLiteral["implicit", "starttls", "none"]


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """How to reach and log in to one IMAP account.  ``credentials`` is asked at every
    connect (see credentials.py), so a changed password or a renewed token is used by the
    next connection without a new store."""

    host: str
    port: int
    credentials: CredentialSource = field(repr=False)
    tls: TlsMode = "implicit"
    ca_file: str | None = None
    timeout: float = 60.0
    tls_min_version: TlsVersion = "1.2"
    client_cert: str | None = None
    client_key: str | None = None  # None: in client_cert's file
    cert_fingerprint: Fingerprint | None = None
    mechanism: str | None = None  # the one SASL mechanism to log in with; None: sasl.choose's
    left_out: LeftOut = field(default_factory=LeftOut)  # folders not listed, by special use
    compress: deflate.Compress = "auto"  # COMPRESS=DEFLATE, see deflate.wanted
    # Gmail's labels as keywords of All Mail's messages (stores/imap/gmail_keywords.py)
    gmail_keywords: bool = False

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def trust(self) -> TlsTrust:
        """Whom TLS trusts and how it presents itself (see tls_trust.py)."""
        return TlsTrust(
            self.ca_file,
            self.tls_min_version,
            self.client_cert,
            self.client_key,
            self.cert_fingerprint,
        )


class ClientWindow:
    """``ImapProtocol``'s ``Window`` on a client: its failures as store errors, and a NO or
    BAD answer raised as ``ImapClient.run_many`` raises it."""

    def __init__(self, client: ImapClient, window: Window) -> None:
        self._client = client
        self._window = window

    def send(self, command: Pipelined) -> Sent:
        with self._client._translated():
            return self._window.send(command)

    async def answer(self, sent: Sent) -> Done:
        with self._client._translated():
            done = await self._window.answer(sent)
        if sent.command.check and not done.ok:
            raise self._client.failed(sent.command.parts, done)
        return done


class ImapClient:
    """A logged-in connection.  ``run`` sends one command and raises on NO/BAD."""

    def __init__(self, settings: ImapSettings, known: frozenset[str] = frozenset()) -> None:
        """``known``: the server's capabilities after a login, as an earlier connection saw
        them (what this one may count on before its own login says)."""
        self.settings = settings
        self.known = known
        self.protocol: ImapProtocol | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.enabled: frozenset[str] = frozenset()
        self.user: str | None = None  # who logged in (None before, or after PREAUTH)
        self._enabling: str | None = None  # an ENABLE that goes with the next command
        # The COMPRESS asked with the LOGIN, and its answer (None: the server hung up)
        self._squeezed: tuple[Done | None] | None = None

    # -- connect --------------------------------------------------------------------

    async def connect(self, *, again: bool = False, enable_later: bool = False) -> None:
        """Connect, log in and enable what a sync uses.  ``settings.credentials`` is asked
        once, after the greeting (the server is there and wants a login), outside the connect
        timeout: a password command has its own limits.  Credentials the server refuses are
        asked for once more on a new connection when the source says it may help (an expired
        OAuth2 token renewed); ``again`` is that second try.  With ``enable_later`` the
        ENABLE is sent in one flight with the first command (``run``, ``run_many``), a round
        trip less: ``enabled`` is then empty until that command is answered."""
        self._squeezed = None
        await self._within_timeout(self._open())
        assert self.protocol is not None
        if self.protocol.state == aio.NONAUTH:
            credentials = await self._credentials()
            try:
                await self._within_timeout(self._authenticate(credentials))
            except tls_failure.ClientCertificateRefused:
                raise  # not the credentials' fault: new ones would not help
            except AuthenticationFailed:
                if again or not self.settings.credentials.refused(credentials):
                    raise
                await self.connect(again=True, enable_later=enable_later)
                return
        self.protocol.state = aio.AUTH
        await self._within_timeout(self._compress())
        if enable_later:
            self._enabling = enable_wanted(self.capabilities)
        else:
            await self._within_timeout(self._enable())
        s = self.settings
        conn = self.protocol.number if self.protocol is not None else None
        compressed = self.protocol is not None and self.protocol.compressed
        log.debug(
            "imap.connected",
            host=s.host,
            port=s.port,
            user=self.user,
            tls=s.tls,
            compressed=compressed,
            conn=conn,
        )

    async def _compress(self) -> None:
        """COMPRESS=DEFLATE when the setting wants it and the server offers it; a server
        that does not offer or refuses it is used uncompressed (said at debug level)."""
        s = self.settings
        if self._squeezed is not None:  # asked with the LOGIN
            done = self._squeezed[0]
        elif not deflate.wanted(s.compress, s.host):
            return
        elif deflate.CAPABILITY not in self.capabilities:
            log.debug("imap.compress_not_offered", host=s.host, port=s.port)
            return
        else:
            done = (await self._talk(lambda p: p.compress()))[1]
        if done is None or not done.ok:
            answer = done.text if done is not None else "none"
            log.debug("imap.compress_refused", host=s.host, port=s.port, answer=answer)

    async def _credentials(self) -> Credentials:
        try:
            return await self.settings.credentials.credentials()
        except BaseException:
            await self.close()
            raise

    async def _within_timeout(self, step: Coroutine[Any, Any, None]) -> None:
        """One step of connecting, with the connect timeout; every error closes the
        connection and becomes a ``StoreError`` (see the module docstring)."""
        s = self.settings
        try:
            await within(step, s.timeout)
        except MailboxError as e:  # an unreadable answer while logging in: no mailbox yet
            await self.close()
            raise StoreError(str(e)) from None
        except StoreError:
            await self.close()
            raise
        except ssl.SSLCertVerificationError as e:
            await self.close()
            raise await tls_failure.verify_failed(e, self._server) from None
        except ssl.SSLError as e:
            await self.close()
            raise await self._handshake_failed(e) from None
        except TimeoutError:
            await self.close()
            raise self.lost(f"timed out after {s.timeout:g} s while connecting") from None
        except ConnectionClosed as e:
            await self.close()
            raise self._ended(e, " while connecting") from None
        except CommandTimeout as e:
            await self.close()
            raise self.lost(f"{e} while connecting") from None
        except ProtocolError as e:
            await self.close()
            raise StoreError(f"{s.where}: {e}") from None
        except ConnectionRefusedError:
            await self.close()
            raise ConnectionLost(f"connection refused by {s.where}") from None
        except OSError as e:
            await self.close()
            too_old = await self._too_old(e)
            raise too_old or self.lost(f"cannot connect: {e.strerror or e}") from None

    def lost(self, why: str) -> ConnectionLost:
        """The error for a connection that broke (``why`` must not hold the password)."""
        return ConnectionLost(f"connection to {self.settings.where} lost: {why}")

    def _ended(self, e: ConnectionClosed, doing: str = "") -> StoreError:
        """The error for a connection the server ended: ``ClientCertificateRefused`` when its
        TLS alert says so (TLS 1.3 sends it after the handshake), else a lost connection."""
        s = self.settings
        if e.tls_error is not None:
            refused = tls_failure.client_certificate_refused(e.tls_error, s.where, s.trust)
            if refused is not None:
                return refused
        return self.lost(f"{e}{doing}")

    async def _first_over_tls(self, read: Awaitable[T], context: ssl.SSLContext) -> T:
        """``read``: the first read over a new TLS 1.3 connection (the greeting, or the
        capabilities after STARTTLS), where a server refuses a client certificate.  When the
        connection ends there without that alert (a reset can overtake it), the server is
        asked once more (``tls_failure.refused_after_handshake``)."""
        try:
            try:
                return await read
            except ConnectionClosed as e:
                raise self._ended(e, " while connecting") from None
        except ConnectionLost:
            if self.protocol is not None and isinstance(self.protocol._broken, CommandTimeout):
                raise  # a silent server, not one that ended the connection
            refused = await tls_failure.refused_after_handshake(
                self._server, context, self.settings.trust
            )
            if refused is None:
                raise
            raise refused from None

    async def _handshake_failed(self, e: ssl.SSLError) -> StoreError:
        """The error for a TLS handshake that failed: first, is the port a plain one?"""
        s = self.settings
        if (
            s.tls == "implicit"
            and not_tls(e)
            and await greets_in_plain(s.host, s.port, greeting_wait(s.timeout))
        ):
            return wants_plain(s.where)
        refused = tls_failure.client_certificate_refused(e, s.where, s.trust)
        if refused is not None:
            return refused
        if tls_failure.shares_no_version(e):
            too_old = await tls_failure.version_refused(self._server, s.trust)
            if too_old is not None:
                return too_old
            if not isinstance(e, ssl.SSLEOFError):
                return tls_failure.no_version(self._server, s.trust)
        if isinstance(e, ssl.SSLEOFError):  # the network or the server hung up mid-handshake
            return self.lost("closed during the TLS handshake")
        return StoreError(f"TLS handshake with {s.where} failed: {e.reason or e}")

    async def _too_old(self, e: OSError) -> StoreError | None:
        """For a connection closed while connecting with TLS (asyncio reports a peer that hangs
        up mid-handshake as a bare ConnectionResetError, as servers do that share no TLS
        version with us): the error if the server speaks only an older version."""
        if self.settings.tls == "none" or not isinstance(e, ConnectionError):
            return None
        return await tls_failure.version_refused(self._server, self.settings.trust)

    @property
    def _server(self) -> tls_failure.Server:
        s = self.settings
        return tls_failure.Server(s.host, s.port, s.tls == "starttls", greeting_wait(s.timeout))

    async def _open(self) -> None:
        """TCP, TLS, the greeting and the capabilities (after STARTTLS when asked for)."""
        s = self.settings
        loop = asyncio.get_running_loop()
        protocol = ImapProtocol(loop, timeout=s.timeout)
        self.protocol = protocol
        implicit = s.tls == "implicit"
        context = tls_context(s.trust) if s.tls != "none" else None
        transport, _ = await loop.create_connection(
            lambda: protocol,
            s.host,
            s.port,
            ssl=context if implicit else None,
            server_hostname=s.host if implicit else None,
        )
        keep_alive(transport.get_extra_info("socket"))
        if implicit:
            check_pin(s.trust, transport.get_extra_info("ssl_object"), s.where)
        greeting = await self._maybe_first_over_tls(self._greeting(protocol), transport, context)
        await self._read_capabilities(greeting)
        if s.tls == "starttls":
            if "STARTTLS" not in self.capabilities:
                raise StoreError(f"{s.where} does not offer STARTTLS")
            await self.run("STARTTLS")
            if not protocol.reader.idle:
                raise StoreError(f"{s.where} sent data after STARTTLS (possible injection)")
            assert protocol.transport is not None and context is not None
            upgraded = await loop.start_tls(
                protocol.transport, protocol, context, server_hostname=s.host
            )
            if upgraded is None:  # the peer closed during the handshake
                raise ConnectionClosed("the server closed the connection during STARTTLS")
            protocol.transport = upgraded
            check_pin(s.trust, upgraded.get_extra_info("ssl_object"), s.where)
            self.capabilities = frozenset()
            await self._maybe_first_over_tls(self._read_capabilities(None), upgraded, context)

    def _maybe_first_over_tls(
        self, read: Awaitable[T], transport: asyncio.BaseTransport, context: ssl.SSLContext | None
    ) -> Awaitable[T]:
        """``read`` as ``_first_over_tls`` when ``transport`` speaks TLS 1.3, else as it is."""
        tls = transport.get_extra_info("ssl_object")
        if context is None or tls is None or tls.version() != "TLSv1.3":
            return read
        return self._first_over_tls(read, context)

    async def _enable(self) -> None:
        """QRESYNC (else CONDSTORE) where the server has them."""
        self._enabling = None
        wanted = enable_wanted(self.capabilities)
        if wanted is not None:
            self._enabled_by(await self.run("ENABLE", wanted, check=False))

    def _enabled_by(self, done: Done) -> None:
        """``enabled``, as the answer to ENABLE says."""
        self.enabled = frozenset(
            w.upper()
            for u in done.untagged
            if u.kind == "ENABLED"
            for w in u.tokens().rest_of_line().decode("ascii", "replace").split()
        )

    async def _greeting(self, protocol: ImapProtocol) -> RawResponse:
        """The server's greeting.  Without implicit TLS, a port that stays silent for
        ``greeting_wait`` seconds is asked whether it waits for a TLS handshake instead."""
        s = self.settings
        if s.tls != "implicit":
            wait = greeting_wait(s.timeout)
            try:
                return await within(asyncio.shield(protocol.greeting), wait)
            except TimeoutError:
                if await speaks_tls(s.host, s.port, wait):
                    raise wants_implicit(s.where) from None
        greeting: RawResponse = await protocol._wait(protocol.greeting, "greeting")
        return greeting

    async def _read_capabilities(self, greeting: RawResponse | None) -> None:
        if greeting is not None:
            st = status_text(greeting.first[2:].partition(b" ")[2])
            if st.code == "CAPABILITY":
                self.capabilities = frozenset(st.args.decode("ascii", "replace").upper().split())
                return
        done = await self.run("CAPABILITY")
        caps: set[str] = set()
        for u in done.untagged:
            if u.kind == "CAPABILITY":
                caps.update(u.tokens().rest_of_line().decode("ascii", "replace").upper().split())
        self.capabilities = frozenset(caps)

    async def _authenticate(self, credentials: Credentials) -> None:
        """Log in the way ``sasl.choose`` picks.  A refusal is ``AuthenticationFailed``
        (``ConnectionLost`` when the server says it cannot check credentials now)."""
        only = self.settings.mechanism
        way = sasl.choose(credentials, self.capabilities, only)
        if way is None:
            raise StoreError(sasl.no_way(credentials, self.settings.where, only))
        refusal = None
        if isinstance(way, sasl.LoginCommand):
            login = (
                "LOGIN",
                quote_astring(credentials.user),
                Secret(quote_astring(credentials.secret)),
            )
            if deflate.wanted(self.settings.compress, self.settings.host) and (
                deflate.CAPABILITY in self.capabilities | self.known
            ):
                # COMPRESS in the same write, a round trip less, where the server is known to
                # offer it: its capabilities before the login seldom say so, an earlier
                # connection's after it do (``known``).
                logged_in, squeezed = await self._talk(lambda p: p.compress(login))
                assert logged_in is not None
                done, self._squeezed = logged_in, (squeezed,)
            else:
                done = await self.run(*login, check=False)
        else:
            exchange = sasl.Exchange(
                way,
                credentials,
                sasl.Server(self.settings.host, self.settings.port),
                sasl_ir="SASL-IR" in self.capabilities,
            )
            done = await self.exchange(exchange)
            refusal = exchange.refusal
        if not done.ok:
            raise self._refused(credentials, done, refusal)
        self.user = credentials.user
        if done.code == "CAPABILITY":
            self.capabilities = frozenset(done.code_args.decode("ascii", "replace").upper().split())
        else:
            self.capabilities = frozenset()
            await self._read_capabilities(None)

    def _refused(self, credentials: Credentials, done: Done, refusal: str | None) -> StoreError:
        """The error for a login the server refused: the user, the server, its words."""
        words = done.text or done.status
        if refusal:
            words = f"{words} ({refusal})"
        whom = f"user {credentials.user} at {self.settings.where}"
        if done.code == "UNAVAILABLE":  # RFC 5530: the server cannot check now; later it may
            return ConnectionLost(f"the server cannot log in {whom} for now: {words}")
        if self.settings.tls != "none" and "CERTIFICATE" in words.upper():
            # Dovecot's auth_ssl_require_client_cert: the TLS handshake passed, the login says
            return tls_failure.client_certificate_error(
                self.settings.where, self.settings.trust, words
            )
        what = " ".join(filter(None, (credentials.kind.value, credentials.origin)))
        return AuthenticationFailed(
            f"authentication failed for {whom}: the server refused the {what}: {words}"
        )

    async def exchange(self, exchange: sasl.Exchange) -> Done:
        """One AUTHENTICATE conversation; the tagged answer, unchecked."""
        return await self._talk(lambda p: p.run_exchange(exchange.command(), exchange.answer))

    # -- commands -------------------------------------------------------------------

    async def run(
        self,
        *parts: Part,
        on_untagged: OnUntagged | None = None,
        check: bool = True,
        literal_plus: bool = False,
    ) -> Done:
        """One command; with ``check`` a NO/BAD raises ``StoreError`` naming the command (and
        its first argument, unless that is a ``Secret``)."""
        if self._enabling is not None:
            if not has_literal(parts):
                command = Pipelined(parts, on_untagged, check=check)
                return (await self.run_many([command]))[0]
            await self._enable()  # a literal waits for the server: no flight
        done = await self._talk(
            lambda p: p.run(*parts, on_untagged=on_untagged, literal_plus=literal_plus)
        )
        if check and not done.ok:
            raise self.failed(parts, done)
        return done

    def failed(self, parts: Sequence[Part], done: Done) -> StoreError:
        """The error for command ``parts`` answered NO or BAD: the server, the command (and
        its first argument, unless that is a ``Secret``), the answer."""
        return StoreError(
            f"{self.settings.where}: {_what(parts)} failed: {done.status} {done.text}"
        )

    async def run_many(self, commands: Sequence[Pipelined], check: bool = True) -> list[Done]:
        """``commands`` pipelined (``ImapProtocol.run_many``); with ``check`` the first NO or
        BAD among their answers raises ``StoreError`` naming its command (unless that
        command says not to check it)."""
        if self.protocol is None:
            raise self.lost("the connection was closed")
        enabling, self._enabling = self._enabling, None
        if enabling is not None:
            enable = Pipelined(("ENABLE", enabling), check=False, kinds=frozenset({"ENABLED"}))
            commands = [enable, *commands]
        with self._translated():
            done = await self.protocol.run_many(commands)
        if enabling is not None:
            self._enabled_by(done[0])
            commands, done = commands[1:], done[1:]
        for command, answer in zip(commands, done, strict=True):
            if check and command.check and not answer.ok:
                raise self.failed(command.parts, answer)
        return done

    @contextlib.asynccontextmanager
    async def window(self) -> AsyncIterator[ClientWindow]:
        """The connection held for commands sent without waiting for the answers of those
        before (``ImapProtocol.window``), its errors as store errors."""
        if self._enabling is not None:
            await self._enable()  # what the server enables changes its answers: first
        if self.protocol is None:
            raise self.lost("the connection was closed")
        # Only the window's own failures are translated, not the caller's that pass through.
        async with contextlib.AsyncExitStack() as stack:
            with self._translated():
                window = await stack.enter_async_context(self.protocol.window())
            yield ClientWindow(self, window)
            with self._translated():
                await window.settle()

    async def _talk(self, command: Callable[[ImapProtocol], Awaitable[T]]) -> T:
        """``command`` on this connection, its failures as ``StoreError``s."""
        if self.protocol is None:
            raise self.lost("the connection was closed")
        with self._translated():
            return await command(self.protocol)

    async def idle(
        self,
        on_untagged: Callable[[Untagged], object],
        *,
        renew: float,
        keepalive: float,
        stop: asyncio.Event | None = None,
    ) -> IdleEnd:
        """One IDLE (``ImapProtocol.idle``: every untagged response to ``on_untagged``; DONE
        after ``renew`` seconds, on ``stop``, or after ``keepalive`` seconds of silence, then a
        NOOP).  A server without IDLE, or one that refuses it, raises ``StoreError``; a BYE, a
        closed or a silent connection ``ConnectionLost``."""
        if self.protocol is None:
            raise self.lost("the connection was closed")
        if "IDLE" not in self.capabilities:
            raise StoreError(f"{self.settings.where} does not offer IDLE")
        with self._translated():
            try:
                return await self.protocol.idle(
                    on_untagged, renew=renew, keepalive=keepalive, stop=stop
                )
            except IdleRefused as e:
                raise StoreError(f"{self.settings.where}: the server refused IDLE: {e}") from None

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The protocol's errors as store errors (see the module's docstring)."""
        try:
            yield
        except ConnectionClosed as e:
            raise self._ended(e) from None
        except CommandTimeout as e:
            raise self.lost(str(e)) from None
        except ProtocolError as e:
            # The stream cannot be followed any more, so the connection is gone too (the
            # protocol closed it), but a new one will most likely hit the same response.
            raise MailboxError(f"{self.settings.where}: {e}") from None
        except OSError as e:  # a write on a socket the kernel already knows is dead
            raise self.lost(e.strerror or str(e)) from None

    @property
    def usable(self) -> bool:
        """Connected, not broken, not closing: fit to serve another mailbox."""
        p = self.protocol
        return (
            p is not None
            and p._broken is None
            and p.transport is not None
            and not p.transport.is_closing()
        )

    async def close(self, hurry: bool = False) -> None:
        """LOGOUT, waiting at most ``LOGOUT_WAIT`` for the answer (``hurry``: not at all, the
        process ends next), then close.  The socket is closed however this ends,
        cancellation included.  In a task being cancelled the
        wait is ``CANCELLED_LOGOUT_WAIT``, and in one cancelled twice (a push source restarted
        after a suspend, then the daemon stopping) there is no LOGOUT: whoever cancelled is
        waiting for the task to end."""
        protocol = self.protocol
        if protocol is None:
            return
        self.protocol = None
        protocol.closing = True
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        hurried = cancelling > 1
        wait = CANCELLED_LOGOUT_WAIT if cancelling else LOGOUT_WAIT
        try:
            if hurry:
                protocol.leave()
            elif (
                not hurried
                and protocol.transport is not None
                and not protocol.transport.is_closing()
            ):
                with contextlib.suppress(Exception):  # the connection is going away anyway
                    await within(protocol.run("LOGOUT"), wait)
        finally:
            if protocol.transport is not None:
                protocol.transport.close()

    def drop(self) -> None:
        """Close at once, without LOGOUT: for a connection presumed dead (after a suspend),
        whose answer would never come.  The server ends its side by its own timeout."""
        protocol = self.protocol
        if protocol is None:
            return
        self.protocol = None
        protocol.closing = True  # going away on purpose: no warning
        if protocol.transport is not None:
            protocol.transport.abort()


def _what(parts: Sequence[Part]) -> str:
    """A command as its failure names it: its name and first argument, unless that is a
    ``Secret``."""
    what = parts[0] if isinstance(parts[0], str) else "command"
    if len(parts) > 1 and isinstance(parts[1], str):
        what = f"{what} {parts[1]}"
    return what
