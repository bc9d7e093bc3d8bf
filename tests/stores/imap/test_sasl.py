"""The SASL table without a server: the exact initial responses, which way is chosen, and the
exchange's answers to the server's challenges."""

from __future__ import annotations

import base64

import pytest

from mailtide.stores.imap import sasl
from mailtide.stores.imap.credentials import Credentials, SecretKind
from mailtide.stores.imap.wire import Secret

TOKEN = SecretKind.OAUTH2_TOKEN
HOME = sasl.Server("imap.example.org", 993)


def decoded(part: object) -> bytes:
    assert isinstance(part, Secret)
    return base64.b64decode(part.text)


# ---- initial responses --------------------------------------------------------------------


def test_plain_initial_response() -> None:
    """RFC 4616: empty authzid, authcid, password; UTF-8."""
    creds = Credentials("jörg@example.org", "pä ss")
    assert sasl.plain_response(creds, HOME) == "\0jörg@example.org\0pä ss".encode()


def test_xoauth2_initial_response_is_googles_example() -> None:
    token = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    creds = Credentials("someuser@example.com", token, TOKEN)
    exchange = sasl.Exchange(sasl.XOAUTH2, creds, HOME, sasl_ir=True)
    assert exchange.command()[:2] == ["AUTHENTICATE", "XOAUTH2"]
    sent = exchange.command()[2]
    assert isinstance(sent, Secret)
    assert sent.text == (  # developers.google.com/gmail/imap/xoauth2-protocol
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr"
        "QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


def test_oauthbearer_initial_response_is_rfc_7628s_example() -> None:
    creds = Credentials("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", TOKEN)
    exchange = sasl.Exchange(
        sasl.OAUTHBEARER, creds, sasl.Server("server.example.com", 143), sasl_ir=True
    )
    token = exchange.command()[2]
    assert isinstance(token, Secret)
    assert token.text == (  # RFC 7628, 4.1
        "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
        "IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
    )


def test_oauthbearer_escapes_comma_and_equals_in_the_user() -> None:
    """RFC 5801's saslname: "," is =2C and "=" is =3D, or the GS2 header would not parse."""
    creds = Credentials("a,b=c", "t", TOKEN)
    response = sasl.oauthbearer_response(creds, HOME)
    assert response.startswith(b"n,a=a=2Cb=3Dc,\x01host=imap.example.org\x01port=993\x01")


# ---- which way ----------------------------------------------------------------------------

DOVECOT = frozenset({"IMAP4REV1", "SASL-IR", "AUTH=PLAIN", "AUTH=LOGIN"})
OAUTH = frozenset({"AUTH=XOAUTH2", "AUTH=OAUTHBEARER"})


@pytest.mark.parametrize(
    ("user", "secret", "kind", "capabilities", "way"),
    [
        ("me", "pw", SecretKind.PASSWORD, DOVECOT, "LOGIN"),
        ("me", "pw", SecretKind.PASSWORD, DOVECOT | {"LOGINDISABLED"}, "PLAIN"),
        ("me", "pässwörd", SecretKind.PASSWORD, DOVECOT, "PLAIN"),  # quoted strings are 7-bit
        ("jörg", "pw", SecretKind.PASSWORD, DOVECOT, "PLAIN"),
        ("me", "pässwörd", SecretKind.PASSWORD, frozenset({"IMAP4REV1"}), "LOGIN"),  # fallback
        ("me", "pw", SecretKind.PASSWORD, DOVECOT | OAUTH, "LOGIN"),  # a password is no token
        ("me", "line\nbreak", SecretKind.PASSWORD, DOVECOT, "PLAIN"),
        ("me", "line\nbreak", SecretKind.PASSWORD, frozenset({"IMAP4REV1"}), None),
        ("me", "pw", SecretKind.PASSWORD, frozenset({"LOGINDISABLED"}), None),
        ("me", "t", TOKEN, DOVECOT | OAUTH, "OAUTHBEARER"),  # the standard first
        ("me", "t", TOKEN, DOVECOT | {"AUTH=XOAUTH2"}, "XOAUTH2"),
        ("me", "t", TOKEN, DOVECOT | {"AUTH=OAUTHBEARER"}, "OAUTHBEARER"),
        ("me", "t", TOKEN, DOVECOT, None),  # never sent as a password
        ("me", "t\x01", TOKEN, DOVECOT | OAUTH, None),
    ],
)
def test_choose(
    user: str, secret: str, kind: SecretKind, capabilities: frozenset[str], way: str | None
) -> None:
    chosen = sasl.choose(Credentials(user, secret, kind), capabilities)
    assert (chosen.name if chosen else None) == way


def test_no_way_says_what_is_missing() -> None:
    token = sasl.no_way(Credentials("me", "t", TOKEN), "h:993")
    assert token.startswith("h:993 offers neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2")
    password = sasl.no_way(Credentials("me", "p"), "h:993")
    assert "LOGIN is disabled" in password and "AUTHENTICATE PLAIN is not offered" in password


# ---- the exchange -------------------------------------------------------------------------

ERROR_REPORT = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"mail"}')


@pytest.mark.parametrize(
    ("mechanism", "after_refusal"),
    [(sasl.XOAUTH2, ""), (sasl.OAUTHBEARER, "AQ=="), (sasl.PLAIN, "*")],
)
@pytest.mark.parametrize("sasl_ir", [True, False])
def test_exchange_answers_a_refusal(
    mechanism: sasl.Mechanism, after_refusal: str, sasl_ir: bool
) -> None:
    """An OAuth error report is answered (XOAUTH2: an empty line; OAUTHBEARER: %x01, RFC 7628
    3.2.3) so the server can send its NO; PLAIN cancels with "*"."""
    kind = SecretKind.PASSWORD if mechanism is sasl.PLAIN else TOKEN
    exchange = sasl.Exchange(mechanism, Credentials("me", "t0k", kind), HOME, sasl_ir)
    command = exchange.command()
    assert command[:2] == ["AUTHENTICATE", mechanism.name]
    if sasl_ir:
        assert len(command) == 3
    else:
        assert len(command) == 2
        first = exchange.answer(b"")  # the server's "+ " asks for the initial response
        assert decoded(first) == mechanism.initial(Credentials("me", "t0k", kind), HOME)
    assert exchange.refusal is None
    assert exchange.answer(ERROR_REPORT) == after_refusal
    assert exchange.refusal == '{"status":"401","schemes":"bearer","scope":"mail"}'


def test_a_challenge_that_is_not_base64_is_shown_as_text() -> None:
    exchange = sasl.Exchange(sasl.PLAIN, Credentials("me", "pw"), HOME, sasl_ir=True)
    exchange.answer(b"go away\x07")
    assert exchange.refusal == "go away"


def test_no_secret_in_repr() -> None:
    creds = Credentials("me", "Hunter2-pw", TOKEN, 'printed by password_command "x"')
    exchange = sasl.Exchange(sasl.XOAUTH2, creds, HOME, sasl_ir=True)
    for shown in (repr(creds), repr(exchange.command()), repr(vars(exchange))):
        assert "Hunter2-pw" not in shown
        assert base64.b64encode(sasl.xoauth2_response(creds, HOME)).decode() not in shown


def test_a_chosen_mechanism_is_the_only_one_tried() -> None:
    token = Credentials("me", "t", TOKEN)
    chosen = sasl.choose(token, DOVECOT | OAUTH, only="XOAUTH2")
    assert chosen is sasl.XOAUTH2
    assert sasl.choose(token, DOVECOT | {"AUTH=OAUTHBEARER"}, only="XOAUTH2") is None
    assert sasl.no_way(token, "h:993", "XOAUTH2") == (
        'h:993 does not offer AUTH=XOAUTH2, which auth = "xoauth2" asks for'
    )
