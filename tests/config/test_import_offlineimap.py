"""``mailtide import-config offlineimap``: realistic OfflineIMAP configs (the ArchWiki's,
with Gmail and nametrans lambdas) become mailtide configs that load and do the same job."""

from __future__ import annotations

import os
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

# The ArchWiki's minimal example, with a STARTTLS server and hooks.
PLAIN = """
[general]
accounts = main
metadata = ~/.offlineimap

[Account main]
localrepository = main-local
remoterepository = main-remote
autorefresh = 5
quick = 10
postsynchook = notmuch new
presynchook = ~/bin/mail-online
maxage = 30

[Repository main-local]
type = Maildir
localfolders = ~/Mail/main
sep = /

[Repository main-remote]
type = IMAP
remotehost = imap.example.org
remoteport = 143
ssl = no
starttls = yes
remoteuser = me@example.org
remotepassfile = ~/.config/mail/main.pass
sslcacertfile = {ca}
folderfilter = lambda foldername: foldername not in ['Trash', 'Spam']
nametrans = lambda folder: re.sub('^INBOX\\.', '', folder)
idlefolders = ['INBOX', 'Lists', 'Work', 'Family']
holdconnectionopen = yes
keepalive = 60
newmail_hook = lambda: os.system('notify-send "New mail"' + ' > /dev/null 2>&1')
"""

# The ArchWiki's Gmail example: a nametrans mapping and its reverse by hand, a folderfilter
# with a non-ASCII name, the password in the file.
GMAIL = """
[general]
accounts = gmail

[Account gmail]
localrepository = gmail-local
remoterepository = gmail-remote
synclabels = yes

[Repository gmail-local]
type = GmailMaildir
localfolders = ~/Mail/gmail
nametrans = lambda folder: {'drafts':  '[Gmail]/Drafts',
                            'sent':    '[Gmail]/Sent Mail',
                            'archive': '[Gmail]/All Mail',
                            }.get(folder, folder)

[Repository gmail-remote]
type = Gmail
remoteuser = user@gmail.com
remotepass = s3cret-Pa55word
nametrans = lambda folder: {'[Gmail]/Drafts':    'drafts',
                            '[Gmail]/Sent Mail': 'sent',
                            '[Gmail]/All Mail':  'archive',
                            }.get(folder, folder)
folderfilter = lambda folder: folder not in ['[Gmail]/Trash',
                                             'Nur Anhänge',
                                             ]
"""

# The README's hand translations: include lists, re.search, nested re.sub; and what cannot
# be translated (Python beyond the simple forms, remotepasseval).
RULES = """
[Account work]
localrepository = work-local
remoterepository = work-remote

[Repository work-local]
type = Maildir
localfolders = ~/Mail/work
folderfilter = lambda f: f in ['INBOX', 'Sent', 'Deleted Items', 'Junk E-mail']

[Repository work-remote]
type = IMAP
remotehost = outlook.example.com
remoteuser = me
remotepasseval = get_password_emacs("outlook.example.com", "me", "993")
folderfilter = lambda folder: not re.search('(^Trash$|Del)', folder)
nametrans = lambda f: re.sub('^Spam$', 'Junk E-mail', re.sub('^Trash$', 'Deleted Items', f))
auth_mechanisms = PLAIN
"""

# What is beyond the simple forms stays in a comment, never half-translated.
ODD = """
[Account odd]
localrepository = odd-local
remoterepository = odd-remote

[Repository odd-local]
type = Maildir
localfolders = ~/Mail/odd
nametrans = lambda folder: folder.upper()

[Repository odd-remote]
type = IMAP
remotehost = imap.example.net
remoteuser = me
remotepass = pw
folderfilter = lambda folder: folder.startswith('Lists') or len(folder) < 4
nametrans = lambda folder: re.sub('^\\[Gmail\\]/', '', folder).lower()
cert_fingerprint = 43a4a1c2f5e08e0c4a1ae8dc07b6b2c7f0b0a5f5
"""


@pytest.fixture()
def ca(tmp_path: Path) -> Path:
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return pem


def test_plain_account(tmp_path: Path, ca: Path) -> None:
    text, config = imported("offlineimap", PLAIN.format(ca=ca), tmp_path)
    account = config.account("main")
    local, remote = account.local, account.remote
    assert isinstance(local, MaildirRepository) and isinstance(remote, ImapRepository)
    assert (local.path, local.layout) == (Path.home() / "Mail/main", "fs")
    assert (remote.host, remote.port, remote.tls, remote.user) == (
        "imap.example.org",
        143,
        "starttls",
        "me@example.org",
    )
    assert remote.ca_file == ca
    assert remote.password_file == Path.home() / ".config/mail/main.pass"
    assert account.daemon.autorefresh == 300 and account.daemon.quick == 10
    assert account.daemon.idle_folders == ("INBOX", "Lists", "Work", "Family")
    assert account.daemon.max_connections == 5  # one beyond the IDLE ones, to sync with
    assert account.daemon.keepalive == 60 and account.daemon.hold_connection_open
    assert account.hooks.postsync == ("sh", "-c", "notmuch new")
    assert account.hooks.presync == ("sh", "-c", "~/bin/mail-online")
    assert account.hooks.newmail == ("sh", "-c", 'notify-send "New mail" > /dev/null 2>&1')
    assert account.folders.to_local("Trash") is None and account.folders.to_local("Spam") is None
    assert account.folders.to_local("Archive") == "Archive"
    assert "mailtide takes the server's prefix off itself" in text
    assert not_translated(text) == ["[general] metadata = ~/.offlineimap", "maxage = 30"]


def test_gmail_with_nametrans_mapping(tmp_path: Path) -> None:
    text, config = imported("offlineimap", GMAIL, tmp_path)
    account = config.account("gmail")
    remote = account.remote
    assert isinstance(remote, ImapRepository)
    assert remote.kind == "gmail" and remote.host == "imap.gmail.com"
    assert remote.password == "s3cret-Pa55word"
    assert "replace it with password_command" in text
    rules = account.folders
    assert rules.to_local("[Gmail]/Sent Mail") == "sent"
    assert rules.to_local("[Gmail]/Drafts") == "drafts"
    assert rules.to_local("[Gmail]/Trash") is None
    assert rules.to_local("Nur Anhänge") is None
    assert rules.to_server("sent") == "[Gmail]/Sent Mail"
    # the local reverse nametrans is derived, and listed; synclabels has no equivalent yet
    listed = not_translated(text)
    assert listed[0] == "synclabels = yes"
    assert listed[1].startswith("nametrans = lambda folder: {'drafts':")


def test_readme_folder_rules(tmp_path: Path) -> None:
    text, config = imported("offlineimap", RULES, tmp_path)
    account = config.account("work")
    rules = account.folders
    assert rules.to_local("Trash") is None and rules.to_local("Old Deleted") is None
    assert rules.to_local("Spam") == "Junk E-mail"
    assert rules.to_local("Sent") == "Sent"
    assert rules.to_local("Archive") is None  # the local folderfilter's include list
    remote = account.remote
    assert isinstance(remote, ImapRepository) and remote.netrc is not None
    assert '# password_command = ["pass", "show", "mail/..."]' in text
    listed = not_translated(text)
    assert 'remotepasseval = get_password_emacs("outlook.example.com", "me", "993")' in listed
    assert "auth_mechanisms = PLAIN" in listed


def test_what_is_not_simple_is_listed_not_guessed(tmp_path: Path) -> None:
    text, config = imported("offlineimap", ODD, tmp_path)
    account = config.account("odd")
    assert account.folders.to_local("Trash") == "Trash"  # no rule was guessed
    listed = not_translated(text)
    assert "folderfilter = lambda folder: folder.startswith('Lists') or len(folder) < 4" in listed
    assert "nametrans = lambda folder: re.sub('^\\[Gmail\\]/', '', folder).lower()" in listed
    assert "nametrans = lambda folder: folder.upper()" in listed
    assert any(item.startswith("cert_fingerprint = 43a4") for item in listed)


OAUTH2 = """
[Account g]
localrepository = g-local
remoterepository = g-remote

[Repository g-local]
type = Maildir
localfolders = ~/Mail/g
sep = /

[Repository g-remote]
type = Gmail
remoteuser = me@gmail.com
auth_mechanisms = XOAUTH2
oauth2_request_url = https://accounts.google.com/o/oauth2/token
oauth2_client_id = 1234-abc.apps.googleusercontent.com
oauth2_client_secret = GOCSPX-Secret
oauth2_refresh_token = 1//Refresh-Secret
remotepass = Password-Secret
"""


def test_oauth2_keys(tmp_path: Path) -> None:
    text, config = imported("offlineimap", OAUTH2, tmp_path)
    remote = config.account("g").remote
    assert isinstance(remote, ImapRepository) and remote.oauth2 is not None
    oauth2 = remote.oauth2
    assert oauth2.client_id == "1234-abc.apps.googleusercontent.com"
    assert oauth2.client_secret == "GOCSPX-Secret"
    assert oauth2.token_url == "https://oauth2.googleapis.com/token"  # the google preset
    assert oauth2.refresh_token_file == Path.home() / ".config/mailtide/g-remote.refresh-token"
    assert oauth2.mechanism == "XOAUTH2" and remote.password is None
    assert "mailtide oauth2 authorize ACCOUNT" in text
    assert "Refresh-Secret" not in text and "Password-Secret" not in text
    assert not_translated(text) == [
        "remotepass = <secret, not copied>",
        "oauth2_refresh_token = <secret, not copied>",
    ]


@pytest.mark.parametrize(
    ("rule", "server", "local"),
    [
        ("folderfilter = lambda f: f in ['INBOX', 'Sent']", "Sent", "Sent"),
        ("folderfilter = lambda f: f in ['INBOX', 'Sent']", "Drafts", None),
        ("folderfilter = lambda f: f != 'Junk' and not re.match('Old', f)", "Old/2019", None),
        ("folderfilter = lambda f: f != 'Junk' and not re.match('Old', f)", "Junk", None),
        ("folderfilter = lambda f: f != 'Junk' and not re.match('Old', f)", "Bold", "Bold"),
        ("nametrans = lambda f: re.sub('^\\[Gmail\\]/', '', f)", "[Gmail]/Sent Mail", "Sent Mail"),
        ("nametrans = lambda f: re.sub('^Sent$', 'root/Sent', f)", "Sent", "root/Sent"),
        ("nametrans = lambda f: re.sub('^Sent$', 'root/Sent', f)", "Sent2", "Sent2"),
        ("nametrans = lambda f: re.sub('^INBOX/', '', f)", "Lists", "Lists"),
        ("nametrans = lambda f: f[6:] if f.startswith('INBOX.') else f", "Lists", "Lists"),
        ("nametrans = lambda f: f[8:] if f.startswith('[Gmail]/') else f", "[Gmail]/Sent", "Sent"),
    ],
)
def test_simple_lambda_forms(rule: str, server: str, local: str | None, tmp_path: Path) -> None:
    source = (
        "[Account a]\nlocalrepository = l\nremoterepository = r\n\n"
        "[Repository l]\ntype = Maildir\nlocalfolders = ~/Mail/a\nsep = /\n\n"
        f"[Repository r]\ntype = IMAP\nremotehost = h.example\nremoteuser = u\n{rule}\n"
    )
    text, config = imported("offlineimap", source, tmp_path)
    assert config.account("a").folders.to_local(server) == local
    assert not_translated(text) == []


# ---- the real OfflineIMAP first (its default sep = .), then mailtide with the imported config --


def test_offlineimap_maildir_is_taken_over_without_a_download(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    if shutil.which("offlineimap") is None:
        pytest.skip("offlineimap is not installed (scripts/deps.sh installs it)")
    s = make_setup(imap_account, tmp_path, "fs")
    for i, folder in enumerate(["INBOX", "Archive/2024", "Lists/python-dev", "Lists/python-dev"]):
        srv.append(s.imap, folder, srv.make_message(i, folder), ["\\Seen"] if i % 2 else [])
    rc = tmp_path / "offlineimaprc"
    rc.write_text(
        f"[general]\naccounts = test\nmetadata = {tmp_path / 'offlineimap'}\n\n"
        "[Account test]\nlocalrepository = local\nremoterepository = remote\n\n"
        f"[Repository local]\ntype = Maildir\nlocalfolders = {s.root}\n\n"
        f"[Repository remote]\ntype = IMAP\nremotehost = {s.imap.host}\n"
        f"remoteport = {s.imap.port}\nremoteuser = {s.imap.user}\n"
        f"remotepass = {s.imap.password}\nssl = no\nstarttls = no\n"
    )
    done = subprocess.run(
        ["offlineimap", "-c", str(rc), "-o", "-u", "basic"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (s.root / "Lists.python-dev" / "cur").is_dir()  # sep = . : flat, dotted names
    take_over("offlineimap", rc, s.root, tmp_path)
    assert not (s.root / "Lists" / "python-dev").exists()  # no second tree beside the first
    on_server = srv.list_folders(s.imap, selectable=True)
    assert "Lists.python-dev" not in on_server  # nor uploaded as a new folder
    for folder in ["Archive/2024", "Lists/python-dev"]:
        names = [m.message_id for m in srv.fetch_all(s.imap, folder)]
        here = [m.message_id for m in loc.messages(s.root, "fs", folder.replace("/", "."))]
        assert sorted(names) == sorted(here) and len(set(names)) == len(names), folder


def test_a_value_out_of_mailtides_range_is_listed_and_the_config_loads(tmp_path: Path) -> None:
    source = (
        "[Account a]\nlocalrepository = l\nremoterepository = r\n\n"
        "[Repository l]\ntype = Maildir\nlocalfolders = ~/Mail/a\nsep = /\n\n"
        "[Repository r]\ntype = IMAP\nremotehost = h.example\nremoteuser = u\n"
        "keepalive = 5\nmaxconnections = 50\nretrycount = 2\nsslcacertfile = OS-DEFAULT\n"
    )
    text, config = imported("offlineimap", source, tmp_path)
    account = config.account("a")
    assert account.retries == 2 and account.daemon.keepalive == 120
    assert not_translated(text) == ["keepalive = 5", "maxconnections = 50"]


def test_client_certificate_and_sha256_pin(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
    pin = "ab" * 32
    source = (
        "[Account a]\nlocalrepository = l\nremoterepository = r\n\n"
        "[Repository l]\ntype = Maildir\nlocalfolders = ~/Mail/a\nsep = /\n\n"
        "[Repository r]\ntype = IMAP\nremotehost = h.example\nremoteuser = u\n"
        f"sslclientcert = {cert}\nsslclientkey = {key}\n"
        f"cert_fingerprint = {'cd' * 20}, {pin}\nssl_version = tls1_3\n"
    )
    text, config = imported("offlineimap", source, tmp_path / "import")
    remote = config.account("a").remote
    assert isinstance(remote, ImapRepository)
    assert (remote.client_cert, remote.client_key) == (cert, key)
    assert remote.cert_fingerprint is not None and remote.tls_min_version == "1.3"
    assert pin in str(remote.cert_fingerprint).replace(":", "").lower()
    assert not_translated(text) == [f"cert_fingerprint = {'cd' * 20}"]
