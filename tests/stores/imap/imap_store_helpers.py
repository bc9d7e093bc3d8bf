"""Settings for an ImapStore or ImapClient in tests: an account of the test Dovecot (or a fake
server's port) with credentials that never change."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace

from aioimaplib import aioimaplib as aio

import imap_helpers as srv
from dovecot import ImapAccount
from fault_proxy import FaultProxy
from mailtide.stores.base import FolderInfo
from mailtide.stores.imap import ImapSettings, ImapStore
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


def fill(acct: ImapAccount, folders: Iterable[str], count: int) -> ImapAccount:
    """The account with ``folders`` made on its server, ``count`` messages in each."""
    for folder in folders:
        srv.create_folder(acct, folder)
        srv.append_many(acct, folder, [srv.make_message(i, folder) for i in range(count)])
    return acct


@contextlib.asynccontextmanager
async def listed_through_proxy(
    acct: ImapAccount,
) -> AsyncIterator[tuple[ImapStore, FaultProxy, list[FolderInfo]]]:
    """A store of the account reached through a recording proxy, connected, and the folders
    it listed; closed at the end."""
    with FaultProxy(acct.port, record=True) as proxy:
        store = ImapStore(settings(replace(acct, port=proxy.port)))
        try:
            await store.connect()
            yield store, proxy, await store.list_folders()
        finally:
            await store.close()
