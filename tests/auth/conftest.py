"""The OAuth2 test servers: a provider on 127.0.0.1 and a private Dovecot that validates
tokens at its introspection endpoint, one pair per session; each test gets a new user and
the provider's default behaviour back."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dovecot import Dovecot, ImapAccount, private_dovecot
from oauth2_provider import Provider, running_provider

_users = itertools.count(1)


@dataclass(frozen=True)
class OAuth2Servers:
    provider: Provider
    dovecot: Dovecot


@pytest.fixture(scope="session")
def oauth2_servers() -> Iterator[OAuth2Servers]:
    with running_provider() as provider:
        for dovecot in private_dovecot(oauth2_introspection_url=provider.introspection_url):
            yield OAuth2Servers(provider, dovecot)


@pytest.fixture
def oauth2(oauth2_servers: OAuth2Servers) -> OAuth2Servers:
    provider = oauth2_servers.provider
    provider.lifetime, provider.rotate = 3600.0, False
    provider.token_requests.clear()
    provider.refused_tokens.clear()
    return oauth2_servers


@pytest.fixture
def oauth2_account(oauth2: OAuth2Servers) -> ImapAccount:
    """A new user of the OAuth2 Dovecot (its password "secret" still logs in)."""
    user = f"o{os.getpid()}-{next(_users)}"
    oauth2.provider.consent_user = user
    return oauth2.dovecot.account(user)
