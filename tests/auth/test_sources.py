"""Each password source on its own: what it reads, what it refuses, and that its errors name
the source and never the secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.auth.netrc_file import NetrcEntry, find_entry, parse_netrc
from mailtide.auth.password import PasswordError, resolve_password
from mailtide.auth.system_keyring import store_password
from mailtide.config import ImapRepository

SECRET = "Zq8-Lw3rTn5vXk"


def repo(**source: object) -> ImapRepository:
    return ImapRepository(name="r", host="imap.example.org", user="me", **source)  # type: ignore[arg-type]


def secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


async def failure(repository: ImapRepository) -> str:
    with pytest.raises(PasswordError) as info:
        await resolve_password(repository)
    message = str(info.value)
    assert SECRET not in message and "\n" not in message
    return message


# ---- password_file ----------------------------------------------------------------------


async def test_password_file_gives_its_first_line(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "pw", f"{SECRET}\r\nsecond line\n")
    assert await resolve_password(repo(password_file=path)) == SECRET


async def test_password_file_is_read_at_every_ask(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "pw", "first-Password\n")
    source = repo(password_file=path)
    assert await resolve_password(source) == "first-Password"
    path.write_text("rotated-Password\n")
    assert await resolve_password(source) == "rotated-Password"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
async def test_password_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path / "pw", SECRET + "\n", mode)
    assert await failure(repo(password_file=path)) == (
        f"password_file {path} can be read by other users (mode {mode:04o}): run chmod 600 {path}"
    )


async def test_missing_password_file(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    assert await failure(repo(password_file=path)) == f"password_file {path}: no such file"


async def test_empty_password_file(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "pw", "\n" + SECRET)
    assert (
        await failure(repo(password_file=path)) == f"password_file {path}: the first line is empty"
    )


# ---- password_credential ----------------------------------------------------------------


async def test_credential_is_read_from_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # systemd's own mode for a credential file is its business: 0440 is read as well.
    secret_file(tmp_path / "mail-work", SECRET + "\n", 0o440)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert await resolve_password(repo(password_credential="mail-work")) == SECRET


async def test_credential_without_systemd_says_what_the_unit_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert await failure(repo(password_credential="mail-work")) == (
        "password_credential mail-work: $CREDENTIALS_DIRECTORY is not set; the systemd service"
        " needs LoadCredential=mail-work:PATH (or SetCredentialEncrypted=mail-work:...) in its unit"
    )


async def test_missing_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert await failure(repo(password_credential="mail-work")) == (
        f"password_credential mail-work ({tmp_path / 'mail-work'}): no such file"
    )


# ---- netrc ------------------------------------------------------------------------------

SHARED_HOST = """\
# two accounts on one server, and a user's other server
machine imap.example.org login alice password Alice-pw-1
machine imap.example.org
  login bob
  password "Bob pw with spaces \\" and a quote"
machine other.example.org login alice password Other-pw

macdef init
machine imap.example.org login mallory password in-a-macro

default login carol password Carol-default
"""


@pytest.mark.parametrize(
    ("host", "user", "password"),
    [
        ("imap.example.org", "alice", "Alice-pw-1"),
        ("IMAP.example.org", "bob", 'Bob pw with spaces " and a quote'),
        ("other.example.org", "alice", "Other-pw"),
        ("elsewhere.example.org", "carol", "Carol-default"),
        ("imap.example.org", "carol", "Carol-default"),  # no machine entry fits carol
        ("imap.example.org", "mallory", None),  # a macro's text is no entry
        ("elsewhere.example.org", "alice", None),
    ],
)
def test_netrc_finds_each_user_on_each_host(host: str, user: str, password: str | None) -> None:
    entry = find_entry(parse_netrc(SHARED_HOST), host, user)
    assert (entry.password if entry else None) == password


def test_netrc_machine_without_login_fits_any_user_before_default() -> None:
    entries = parse_netrc("default password D\nmachine h password H\nmachine h login u password U")
    assert entries[0] == NetrcEntry(None, None, "D")
    assert find_entry(entries, "h", "u") == NetrcEntry("h", "u", "U")
    assert find_entry(entries, "h", "v") == NetrcEntry("h", None, "H")
    assert find_entry(entries, "x", "v") == NetrcEntry(None, None, "D")


async def test_netrc_source(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "netrc", SHARED_HOST.replace("Alice-pw-1", SECRET))
    alice = ImapRepository(name="r", host="imap.example.org", user="alice", netrc=path)
    assert await resolve_password(alice) == SECRET
    bob = ImapRepository(name="r", host="imap.example.org", user="bob", netrc=path)
    assert await resolve_password(bob) == 'Bob pw with spaces " and a quote'


async def test_netrc_without_an_entry_says_what_to_add(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "netrc", "machine imap.example.org login alice password x\n")
    assert await failure(repo(netrc=path)) == (
        f"netrc file {path} has no entry for machine imap.example.org login me"
        ' (add "machine imap.example.org login me password ...")'
    )


async def test_netrc_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = secret_file(
        tmp_path / "netrc", f"machine imap.example.org login me password {SECRET}", 0o644
    )
    assert await failure(repo(netrc=path)) == (
        f"netrc file {path} can be read by other users (mode 0644): run chmod 600 {path}"
    )


# ---- keyring ----------------------------------------------------------------------------


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real keyring backend in a file of this test's own (keyrings.alt)."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    import keyring
    import keyring.core

    keyring.core._keyring_backend = None  # type: ignore[attr-defined]  # chosen anew from the env
    keyring.core.init_backend()
    return tmp_path / "data"


async def test_keyring_source(file_keyring: Path) -> None:
    store_password("me", "imap.example.org", SECRET)
    assert await resolve_password(repo(keyring=True)) == SECRET
    stored = [p for p in file_keyring.rglob("*") if p.is_file()]
    assert stored and any(b"mailtide" in p.read_bytes() for p in stored)


async def test_keyring_without_an_item_says_how_to_store_one(file_keyring: Path) -> None:
    assert await failure(repo(keyring=True)) == (
        'the system keyring holds no password for service "mailtide", username'
        " me@imap.example.org: store one with mailtide password set ACCOUNT"
    )


async def test_keyring_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "keyring", None)
    assert await failure(repo(keyring=True)) == (
        "keyring = true needs the keyring package, which is not installed:"
        " pip install 'mailtide[keyring]'"
    )


def test_no_source_repr_shows_a_secret(tmp_path: Path) -> None:
    from mailtide.auth.password import password_source

    for source in (
        password_source(repo(password=SECRET)),
        password_source(repo(password_command=("pass", f"--passphrase={SECRET}"))),
    ):
        assert SECRET not in repr(source)
