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
