"""One authenticated IMAP connection: TLS, login, capabilities, one command at a time.

Errors are ``StoreError`` with a sentence for the user that names the user
and ``host:port``, never the password.  They are sorted by what may help:

- the connection broke, was reset or refused, or the server stopped answering
  (``ConnectionClosed``, ``CommandTimeout``, a socket error while connecting):
  ``ConnectionLost``, which the engine retries on a new connection;
- a response that does not parse during a command: ``MailboxError`` (the
  connection is dropped; the mailbox fails, the account goes on);
- authentication refused, a certificate that does not verify, a server without
  STARTTLS: a plain ``StoreError``, never retried (it would fail the same way);
  so is ``tls`` set the wrong way round for the port (``TlsMismatch``, see tls.py).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal as TypingLiteral

import structlog
from aioimaplib import aioimaplib as aio

from mailtide.stores.base import ConnectionLost, MailboxError, StoreError
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
    ProtocolError,
)
from mailtide.stores.imap.tls import (
    greeting_wait,
    greets_in_plain,
    not_tls,
    speaks_tls,
    tls_context,
    wants_implicit,
    wants_plain,
)
from mailtide.stores.imap.wire import Part, Secret

log = structlog.get_logger(__name__)

TlsMode = TypingLiteral["implicit", "starttls", "none"]


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """How to reach and log in to one IMAP account."""

    host: str
    port: int
    user: str
    password: str
    tls: TlsMode = "implicit"
    ca_file: str | None = None
    timeout: float = 60.0

    def __repr__(self) -> str:  # the password must not reach a log through repr()
        return (
            f"ImapSettings(host={self.host!r}, port={self.port}, user={self.user!r}, "
            f"tls={self.tls!r}, ca_file={self.ca_file!r}, timeout={self.timeout})"
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class ImapClient:
    """A logged-in connection.  ``run`` sends one command and raises on NO/BAD."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.protocol: ImapProtocol | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.enabled: frozenset[str] = frozenset()

    # -- connect --------------------------------------------------------------------

    async def connect(self) -> None:
        s = self.settings
        try:
            await asyncio.wait_for(self._connect(), s.timeout)
        except MailboxError as e:  # an unreadable answer while logging in: no mailbox yet
            await self.close()
            raise StoreError(str(e)) from None
        except StoreError:
            await self.close()
            raise
        except ssl.SSLCertVerificationError as e:
            await self.close()
            raise StoreError(
                f"TLS certificate verify failed for {s.where}: {e.verify_message or e.reason}"
            ) from None
        except ssl.SSLError as e:
            await self.close()
            raise await self._handshake_failed(e) from None
        except TimeoutError:
            await self.close()
            raise self.lost(f"timed out after {s.timeout:g} s while connecting") from None
        except (CommandTimeout, ConnectionClosed) as e:
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
            raise self.lost(f"cannot connect: {e.strerror or e}") from None
        conn = self.protocol.number if self.protocol is not None else None
        log.debug("imap.connected", host=s.host, port=s.port, user=s.user, tls=s.tls, conn=conn)

    def lost(self, why: str) -> ConnectionLost:
        """The error for a connection that broke (``why`` must not hold the password)."""
        return ConnectionLost(f"connection to {self.settings.where} lost: {why}")

    async def _handshake_failed(self, e: ssl.SSLError) -> StoreError:
        """The error for a TLS handshake that failed: first, is the port a plain one?"""
        s = self.settings
        if (
            s.tls == "implicit"
            and not_tls(e)
            and await greets_in_plain(s.host, s.port, greeting_wait(s.timeout))
        ):
            return wants_plain(s.where)
        if isinstance(e, ssl.SSLEOFError):  # the network or the server hung up mid-handshake
            return self.lost("closed during the TLS handshake")
        return StoreError(f"TLS handshake with {s.where} failed: {e.reason or e}")

    async def _connect(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        protocol = ImapProtocol(loop, timeout=s.timeout)
        self.protocol = protocol
        implicit = s.tls == "implicit"
        transport, _ = await loop.create_connection(
            lambda: protocol,
            s.host,
            s.port,
            ssl=tls_context(s.ca_file) if implicit else None,
            server_hostname=s.host if implicit else None,
        )
        keep_alive(transport.get_extra_info("socket"))
        greeting = await self._greeting(protocol)
        await self._read_capabilities(greeting)
        if s.tls == "starttls":
            if "STARTTLS" not in self.capabilities:
                raise StoreError(f"{s.where} does not offer STARTTLS")
            await self.run("STARTTLS")
            if not protocol.reader.idle:
                raise StoreError(f"{s.where} sent data after STARTTLS (possible injection)")
            assert protocol.transport is not None
            protocol.transport = await loop.start_tls(
                protocol.transport, protocol, tls_context(s.ca_file), server_hostname=s.host
            )
            self.capabilities = frozenset()
            await self._read_capabilities(None)
        if protocol.state == aio.NONAUTH:
            await self._authenticate()
        protocol.state = aio.AUTH
        if "ENABLE" in self.capabilities:
            wanted = "QRESYNC" if "QRESYNC" in self.capabilities else "CONDSTORE"
            if wanted in self.capabilities:
                done = await self.run("ENABLE", wanted, check=False)
                enabled = {
                    w.upper()
                    for u in done.untagged
                    if u.kind == "ENABLED"
                    for w in u.tokens().rest_of_line().decode("ascii", "replace").split()
                }
                self.enabled = frozenset(enabled)

    async def _greeting(self, protocol: ImapProtocol) -> RawResponse:
        """The server's greeting.  Without implicit TLS, a port that stays silent for
        ``greeting_wait`` seconds is asked whether it waits for a TLS handshake instead."""
        s = self.settings
        if s.tls != "implicit":
            wait = greeting_wait(s.timeout)
            try:
                return await asyncio.wait_for(asyncio.shield(protocol.greeting), wait)
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

    async def _authenticate(self) -> None:
        s = self.settings
        caps = self.capabilities
        if "LOGINDISABLED" in caps:
            if "AUTH=PLAIN" not in caps:
                raise StoreError(f"{s.where} allows neither LOGIN nor AUTHENTICATE PLAIN here")
            done = await self.authenticate_plain()
        else:
            done = await self.run(
                "LOGIN", quote_astring(s.user), Secret(quote_astring(s.password)), check=False
            )
        if not done.ok:
            raise StoreError(
                f"authentication failed for user {s.user} at {s.where}: {done.text or done.status}"
            )
        if done.code == "CAPABILITY":
            self.capabilities = frozenset(done.code_args.decode("ascii", "replace").upper().split())
        else:
            self.capabilities = frozenset()
            await self._read_capabilities(None)

    async def authenticate_plain(self) -> Done:
        """AUTHENTICATE PLAIN (with SASL-IR when offered); the tagged answer, unchecked."""
        s = self.settings
        token = Secret(base64.b64encode(f"\0{s.user}\0{s.password}".encode()).decode("ascii"))
        if "SASL-IR" in self.capabilities:
            return await self.run("AUTHENTICATE", "PLAIN", token, check=False)
        assert self.protocol is not None
        return await self.protocol.run_with_continuation("AUTHENTICATE PLAIN", token)

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
        if self.protocol is None:
            raise self.lost("the connection was closed")
        with self._translated():
            done = await self.protocol.run(
                *parts, on_untagged=on_untagged, literal_plus=literal_plus
            )
        if check and not done.ok:
            what = parts[0] if isinstance(parts[0], str) else "command"
            if len(parts) > 1 and isinstance(parts[1], str):
                what = f"{what} {parts[1]}"
            raise StoreError(f"{self.settings.where}: {what} failed: {done.status} {done.text}")
        return done

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
        except (CommandTimeout, ConnectionClosed) as e:
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

    async def close(self) -> None:
        protocol = self.protocol
        if protocol is None:
            return
        self.protocol = None
        protocol.closing = True
        if protocol.transport is not None and not protocol.transport.is_closing():
            try:
                await asyncio.wait_for(protocol.run("LOGOUT"), 5)
            except Exception:  # the connection is going away anyway
                pass
            if protocol.transport is not None:
                protocol.transport.close()


def quote_astring(text: str) -> str:
    """An IMAP quoted string (the text must not hold CR, LF or NUL)."""
    if any(c in text for c in "\r\n\0"):
        raise StoreError("CR, LF or NUL in an IMAP string argument")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
