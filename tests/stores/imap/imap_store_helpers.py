"""Settings for an ImapStore or ImapClient in tests: an account of the test Dovecot (or a fake
server's port) with credentials that never change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from aioimaplib import aioimaplib as aio

from dovecot import ImapAccount
from mailtide.stores.imap import ImapSettings
from mailtide.stores.imap.client import ImapClient
from mailtide.stores.imap.credentials import Credentials, SecretKind


@dataclass(frozen=True, slots=True)
class FixedCredentials:
    """A credential source that always gives the same credentials."""

    value: Credentials

    async def credentials(self) -> Credentials:
        return self.value

    def refused(self, credentials: Credentials) -> bool:
        return False


def login(
    user: str, secret: str, kind: SecretKind = SecretKind.PASSWORD, origin: str = ""
) -> FixedCredentials:
    return FixedCredentials(Credentials(user, secret, kind, origin))


def settings(acct: ImapAccount, **changes: object) -> ImapSettings:
    """The account's plain port (no TLS), a 10 s timeout; ``changes`` replace fields."""
    base = ImapSettings(acct.host, acct.port, login(acct.user, acct.password), "none", None, 10.0)
    return replace(base, **changes)  # type: ignore[arg-type]


def fake_settings(port: int) -> ImapSettings:
    """For a fake server on 127.0.0.1 (tests/fake_imap.py), which takes any login."""
    return ImapSettings("127.0.0.1", port, login("u", "p"), "none", None, 5.0)


def pretend(client: ImapClient, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
    """Make ``client`` see other capabilities before it logs in, as if the server offered
    them (LOGINDISABLED, no SASL-IR, one OAuth mechanism only)."""
    read_capabilities = client._read_capabilities

    async def pretended(greeting: object) -> None:
        await read_capabilities(greeting)  # type: ignore[arg-type]
        if client.protocol is not None and client.protocol.state == aio.NONAUTH:
            client.capabilities = frozenset((client.capabilities | set(add)) - set(remove))

    client._read_capabilities = pretended  # type: ignore[method-assign]
