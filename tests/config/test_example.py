"""The shipped config.example.toml is a valid configuration."""

from pathlib import Path

from mailtide.config import ImapRepository, MaildirRepository, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def test_example_config_validates() -> None:
    config = load_config(str(EXAMPLE))
    assert config.general.accounts == ("work", "home")
    work, home = config.account("work"), config.account("home")
    assert isinstance(work.local, MaildirRepository) and work.local.layout == "fs"
    assert isinstance(work.remote, ImapRepository) and work.remote.tls == "implicit"
    assert work.remote.password_command is not None
    assert isinstance(home.local, MaildirRepository) and home.local.layout == "maildir++"
    assert isinstance(home.remote, ImapRepository) and home.remote.tls == "starttls"


def test_example_gmail_account() -> None:
    gmail = load_config(str(EXAMPLE)).account("gmail").remote
    assert isinstance(gmail, ImapRepository)
    assert (gmail.kind, gmail.host, gmail.port, gmail.tls) == (
        "gmail",
        "imap.gmail.com",
        993,
        "implicit",
    )
    assert (
        gmail.oauth2 is not None and gmail.oauth2.token_url == "https://oauth2.googleapis.com/token"
    )
    assert "\\All" in gmail.left_out
    assert gmail.gmail_labels


def test_example_daemon_keys() -> None:
    config = load_config(str(EXAMPLE))
    work, home = config.account("work"), config.account("home")
    assert config.general.max_sync_accounts == 2
    # [general] sets autorefresh and postsync_hook for every account; work overrides one.
    assert (work.daemon.autorefresh, home.daemon.autorefresh) == (300.0, 900.0)
    assert work.hooks.postsync == home.hooks.postsync == ("notmuch", "new")
    assert work.daemon.idle_folders == ("INBOX", "Lists/python-dev")
    assert home.daemon.idle_folders == ("INBOX",)


def test_example_folder_rules() -> None:
    rules = load_config(str(EXAMPLE)).account("work").folders
    assert rules.to_local("[Gmail]/Starred") == "gmail/Starred"
    assert rules.to_local("Lists/Python-Dev") == "lists/python-dev"
    assert rules.to_local("Projects/Old") is None
    assert rules.to_local("Gesendete Objekte", "\\Sent") == "Sent"
    assert rules.to_local("Trash") is None  # [repository.work-remote] excludes it
    assert rules.to_server("gmail/Starred") == "[Gmail]/Starred"
