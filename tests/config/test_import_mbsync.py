"""``mailtide import-config mbsync``: realistic mbsync configs (Patterns, SubFolders, PassCmd,
several Channels and a Group) become mailtide configs that load and do the same job; and the
real mbsync's Maildir is taken over by the imported config without a download."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import imap_helpers as srv
import maildir_helpers as loc
from dovecot import ImapAccount
from engine_helpers import make_setup
from mailtide.config import ImapRepository, MaildirRepository

from .import_helpers import imported, not_translated, take_over

# Gmail the ArchWiki way: one IMAP store, a channel per special folder, a Group over them.
GMAIL = """
IMAPAccount gmail
Host imap.gmail.com
User user@gmail.com
PassCmd "pass show mail/gmail | head -n1"
TLSType IMAPS
CertificateFile {ca}

IMAPStore gmail-remote
Account gmail
Trash "[Gmail]/Trash"
TrashNewOnly yes

MaildirStore gmail-local
SubFolders Verbatim
Path ~/.mail/gmail/
Inbox ~/.mail/gmail/INBOX

Channel gmail-default
Far :gmail-remote:
Near :gmail-local:
Patterns * !"[Gmail]/All Mail" !"[Gmail]/Sent Mail" !Trash
Create Both
Expunge Both
SyncState *

Channel gmail-sent
Far :gmail-remote:"[Gmail]/Sent Mail"
Near :gmail-local:sent
Create Near
SyncState *

Group gmail
Channel gmail-default
Channel gmail-sent
"""

# A Dovecot-style Maildir++ tree, STARTTLS (the default), TLS 1.3 only, Pass in the file.
WORK = """
Expunge Both
FSync no

IMAPStore work-remote
Host mail.example.net
User me
Pass "correct horse"
SSLVersions TLSv1.3
Timeout 30

MaildirStore work-local
Inbox ~/Maildir/work
SubFolders Maildir++
MaxSize 10m

Channel work
Far :work-remote:
Near :work-local:
Patterns INBOX Lists/* %
Remove None
Sync Pull
"""

# OAuth2 through PassCmd with AuthMechs XOAUTH2 (a token printer), plain IMAP on loopback.
OAUTH = """
IMAPAccount o365
Host 127.0.0.1
Port 1143
User me@example.com
AuthMechs XOAUTH2
PassCmd +"oama access me@example.com"
TLSType None

IMAPStore o365-remote
Account o365

MaildirStore o365-local
Path ~/Mail/o365/
Inbox ~/Mail/o365/INBOX
SubFolders Legacy

Channel o365
Far :o365-remote:
Near :o365-local:
Patterns *
"""


def test_gmail_channels_and_group(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    text, config = imported("mbsync", GMAIL.format(ca=ca), tmp_path)
    account = config.account("gmail")  # named after the Group that holds both Channels
    remote, local = account.remote, account.local
    assert isinstance(remote, ImapRepository) and isinstance(local, MaildirRepository)
    assert (remote.host, remote.tls, remote.port, remote.ca_file) == (
        "imap.gmail.com",
        "implicit",
        993,
        ca,
    )
    assert remote.password_command == ("sh", "-c", "pass show mail/gmail | head -n1")
    assert (local.path, local.layout) == (Path.home() / ".mail/gmail", "fs")
    assert (account.trash, account.trash_new_only) == ("[Gmail]/Trash", True)
    rules = account.folders
    assert rules.to_local("[Gmail]/All Mail") is None and rules.to_local("Trash") is None
    assert rules.to_local("Lists/python") == "Lists/python"
    # the Channel of its own: the other Channel's exclusion does not leave it out
    assert rules.to_local("[Gmail]/Sent Mail") == "sent"
    assert rules.to_server("sent") == "[Gmail]/Sent Mail"
    listed = not_translated(text)
    assert "SyncState = *" in listed and "Create = Near" in listed
    assert "Group gmail = gmail-default gmail-sent" in listed


def test_maildirplusplus_store_with_patterns(tmp_path: Path) -> None:
    text, config = imported("mbsync", WORK, tmp_path)
    account = config.account("work")
    remote, local = account.remote, account.local
    assert isinstance(remote, ImapRepository) and isinstance(local, MaildirRepository)
    assert (local.path, local.layout) == (Path.home() / "Maildir/work", "maildir++")
    assert (remote.tls, remote.port, remote.tls_min_version) == ("starttls", 143, "1.3")
    assert remote.password == "correct horse" and remote.timeout == 30
    assert account.folder_delete == "never"
    rules = account.folders
    assert rules.to_local("Lists/python-dev") == "Lists/python-dev"
    assert rules.to_local("Archive") == "Archive"  # % matches a top-level folder
    assert rules.to_local("Archive/2024") is None  # but stops at the separator
    listed = not_translated(text)
    assert listed == ["FSync = no", "Sync = Pull", "MaxSize = 10m"]
    assert "correct horse" in text and "replace it with password_command" in text


def test_oauth2_token_command_and_what_does_not_fit(tmp_path: Path) -> None:
    text, config = imported("mbsync", OAUTH, tmp_path)
    remote = config.account("o365").remote
    assert isinstance(remote, ImapRepository)
    assert remote.tls == "none" and remote.port == 1143
    assert remote.oauth2 is not None
    assert remote.oauth2.token_command == ("sh", "-c", "oama access me@example.com")
    assert remote.oauth2.mechanism == "XOAUTH2"
    assert "SubFolders = Legacy" in not_translated(text)


# ---- the real mbsync first, then mailtide with the imported config ----------------------------


def test_mbsync_maildir_is_taken_over_without_a_download(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    if shutil.which("mbsync") is None:
        pytest.skip("mbsync is not installed (scripts/deps.sh installs it)")
    s = make_setup(imap_account, tmp_path, "fs")
    for i, folder in enumerate(["INBOX", "INBOX", "Archive/2024", "Lists/python-dev"]):
        srv.append(s.imap, folder, srv.make_message(i, folder), [])
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"IMAPAccount test\nHost {s.imap.host}\nPort {s.imap.port}\nUser {s.imap.user}\n"
        f'PassCmd "echo {s.imap.password}"\nSSLType None\nAuthMechs LOGIN\n\n'
        "IMAPStore remote\nAccount test\n\n"
        f"MaildirStore local\nPath {s.root}/\nInbox {s.root}/INBOX\nSubFolders Verbatim\n\n"
        "Channel test\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nSyncState *\n"
    )
    done = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len([p for p in s.root.rglob("*") if p.is_file() and ",U=" in p.name]) == 4
    take_over("mbsync", rc, s.root, tmp_path)
    assert sorted(loc.folders(s.root, "fs")) == ["Archive/2024", "INBOX", "Lists/python-dev"]
    for folder in ["INBOX", "Archive/2024", "Lists/python-dev"]:  # each message once, each side
        on_server = [m.message_id for m in srv.fetch_all(s.imap, folder)]
        here = [m.message_id for m in loc.messages(s.root, "fs", folder)]
        assert sorted(on_server) == sorted(here) and len(set(here)) == len(here), folder


MINIMAL = """
IMAPStore r
Host imap.example.org
User me
PassCmd "pass show mail/r"
{line}

MaildirStore l
Path ~/Mail/r/
Inbox ~/Mail/r/INBOX

Channel r
Far :r:
Near :l:
Patterns *
"""


@pytest.mark.parametrize(
    ("line", "tls", "version"),
    [
        ("", "starttls", "1.2"),  # mbsync's default is STARTTLS
        ("SSLType IMAPS", "implicit", "1.2"),
        ("TLSType STARTTLS", "starttls", "1.2"),
        ("SSLVersions TLSv1.2 TLSv1.3", "starttls", "1.2"),
        ("SSLVersions TLSv1.3", "starttls", "1.3"),
        ("TLSVersions +1.3", "starttls", "1.2"),  # added to the default set
        ("TLSVersions -1.0 -1.1 -1.2", "starttls", "1.3"),
        ("SSLType None", "starttls", "1.2"),  # plain IMAP only on loopback
    ],
)
def test_tls(line: str, tls: str, version: str, tmp_path: Path) -> None:
    text, config = imported("mbsync", MINIMAL.format(line=line), tmp_path)
    remote = config.account("r").remote
    assert isinstance(remote, ImapRepository)
    assert (remote.tls, remote.tls_min_version) == (tls, version)
    assert ("plain IMAP only to 127.0.0.1" in text) == ("None" in line)


def test_a_store_without_path_keeps_to_the_inbox(tmp_path: Path) -> None:
    text, config = imported(
        "mbsync", MINIMAL.format(line="").replace("Path ~/Mail/r/\n", ""), tmp_path
    )
    assert "no Path: only the inbox is synced" in text
    account = config.account("r")
    local = account.local
    assert isinstance(local, MaildirRepository)
    assert (local.path, local.layout) == (Path.home() / "Mail/r/INBOX", "maildir++")
    assert account.folders.to_local("INBOX") == "INBOX"
    assert account.folders.to_local("Archive") is None


def test_a_relative_path_is_from_where_mbsync_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = MINIMAL.format(line="").replace("~/Mail/r", "Mail/r")
    _, config = imported("mbsync", source, tmp_path / "elsewhere")
    local = config.account("r").local
    assert isinstance(local, MaildirRepository) and local.path == tmp_path / "Mail/r"


def test_client_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
    line = f"ClientCertificate {cert}\nClientKey {key}"
    _, config = imported("mbsync", MINIMAL.format(line=line), tmp_path / "import")
    remote = config.account("r").remote
    assert isinstance(remote, ImapRepository)
    assert (remote.client_cert, remote.client_key) == (cert, key)
