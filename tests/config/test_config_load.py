"""load_config: good files become values, bad ones list every problem with file, line and key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mailtide.config import ConfigError, ImapRepository, MaildirRepository, load_config

GOOD = """\
[general]
accounts = ["work"]
state_dir = "state"

[account.work]
local = "work-local"
remote = "work-remote"

[repository.work-local]
type = "maildir"
path = "~/Mail/work"

[repository.work-remote]
type = "imap"
host = "imap.example.org"
user = "me@example.org"
password_command = ["pass", "show", "mail/work"]
"""


def write(tmp_path: Path, text: str) -> str:
    file = tmp_path / "config.toml"
    file.write_text(text)
    return str(file)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


def test_good_config_gets_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write(tmp_path, GOOD))
    account = config.account("work")
    assert config.general.accounts == ("work",)
    assert config.general.state_dir == tmp_path / "state"  # relative to the file
    assert account.local == MaildirRepository(name="work-local", path=tmp_path / "home/Mail/work")
    remote = account.remote
    assert isinstance(remote, ImapRepository)
    assert (remote.host, remote.port, remote.tls, remote.ca_file) == (
        "imap.example.org",
        993,
        "implicit",
        None,
    )
    assert remote.password is None
    assert remote.password_command == ("pass", "show", "mail/work")
    assert (account.mass_delete_share, account.mass_delete_floor) == (0.5, 10)


def test_defaults_without_general(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    text = GOOD.replace('accounts = ["work"]\nstate_dir = "state"\n', "")
    text += '\n[account.second]\nlocal = "work-remote"\nremote = "second-local"\n'
    text += '\n[repository.second-local]\ntype = "maildir"\npath = "~/Mail/second"\n'
    config = load_config(write(tmp_path, text))
    assert config.general.accounts == ("work", "second")  # file order
    assert config.general.state_dir == tmp_path / "xdg-state/mailtide"


def test_starttls_port_and_paths_expand_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILROOT", str(tmp_path / "mail"))
    (tmp_path / "ca.pem").write_text("")
    text = (
        GOOD.replace('"~/Mail/work"', '"$MAILROOT/work"\nlayout = "maildir++"')
        + 'tls = "starttls"\nca_file = "ca.pem"\ntimeout = "5s"\nfolders.exclude = ["Trash"]\n'
    )
    config = load_config(write(tmp_path, text))
    local, remote = config.account("work").local, config.account("work").remote
    assert isinstance(local, MaildirRepository) and isinstance(remote, ImapRepository)
    assert (local.path, local.layout) == (tmp_path / "mail/work", "maildir++")
    assert (remote.port, remote.ca_file, remote.timeout) == (143, tmp_path / "ca.pem", 5.0)
    assert not remote.folders.selects("Trash") and remote.folders.selects("INBOX")


def test_tls_none_allowed_on_loopback(tmp_path: Path) -> None:
    text = GOOD.replace('"imap.example.org"', '"::1"') + 'tls = "none"\n'
    remote = load_config(write(tmp_path, text)).account("work").remote
    assert isinstance(remote, ImapRepository) and (remote.tls, remote.port) == ("none", 143)


def test_password_is_not_in_repr(tmp_path: Path) -> None:
    text = GOOD.replace('password_command = ["pass", "show", "mail/work"]', 'password = "s3cret"')
    config = load_config(write(tmp_path, text))
    assert "s3cret" not in repr(config)


def test_imap_on_both_sides_is_allowed(tmp_path: Path) -> None:
    text = GOOD.replace('type = "maildir"\npath = "~/Mail/work"', 'type = "imap"\nhost = "b"\n')
    text = text.replace('host = "b"\n', 'host = "b"\nuser = "u"\npassword = "p"')
    config = load_config(write(tmp_path, text))
    assert isinstance(config.account("work").local, ImapRepository)


# (name, change to GOOD as (old, new), the text every expected problem line contains)
BAD = [
    (
        "misspelt key with a suggestion",
        ('remote = "work-remote"', 'remot = "work-remote"'),
        ['config.toml:7: account.work.remot: unknown key (did you mean "remote"?)'],
    ),
    (
        "misspelt section",
        ("[general]", "[generl]"),
        ['config.toml:1: generl: unknown key (did you mean "general"?)'],
    ),
    (
        "wrong type: string for an integer",
        ("user =", 'port = "993"\nuser ='),
        ["config.toml:16: repository.work-remote.port: must be an integer, not a string"],
    ),
    (
        "wrong type: a boolean is not an integer",
        ("user =", "port = true\nuser ="),
        ["config.toml:16: repository.work-remote.port: must be an integer, not a boolean"],
    ),
    (
        "wrong type: a table is not a list",
        ('accounts = ["work"]', 'accounts = "work"'),
        ["config.toml:2: general.accounts: must be a list of strings, not a string"],
    ),
    (
        "missing key",
        ('host = "imap.example.org"\n', ""),
        ['config.toml:13: repository.work-remote: missing key "host"'],
    ),
    (
        "bad tls",
        ("user =", 'tls = "ssl"\nuser ='),
        [
            'config.toml:16: repository.work-remote.tls: must be one of "implicit", "starttls",'
            ' "none", not "ssl"'
        ],
    ),
    (
        "tls none on a remote host",
        ("user =", 'tls = "none"\nuser ='),
        [
            'config.toml:16: repository.work-remote.tls: "none" is refused for host'
            ' "imap.example.org": the password would cross the network in clear text'
        ],
    ),
    (
        "password and password_command both",
        ("user =", 'password = "x"\nuser ='),
        [
            'config.toml:13: repository.work-remote: sets 2 password sources ("password",'
            ' "password_command"): keep exactly one'
        ],
    ),
    (
        "password and password_command neither",
        ('password_command = ["pass", "show", "mail/work"]\n', ""),
        [
            'config.toml:13: repository.work-remote: needs a password source: one of "password",'
            ' "password_command", "password_file", "password_credential", "netrc", "keyring",'
            ' or an OAuth2 token source ("oauth2_token_command", "oauth2_client_id")'
        ],
    ),
    (
        "password_command as a string",
        ('["pass", "show", "mail/work"]', '"pass show mail/work"'),
        ["config.toml:17: repository.work-remote.password_command: must be a list of strings"],
    ),
    (
        "password_command empty",
        ('["pass", "show", "mail/work"]', "[]"),
        ["config.toml:17: repository.work-remote.password_command: must name a command"],
    ),
    (
        "port out of range",
        ("user =", "port = 99999\nuser ="),
        ["config.toml:16: repository.work-remote.port: must be between 1 and 65535, not 99999"],
    ),
    (
        "unknown layout",
        ('path = "~/Mail/work"', 'path = "~/Mail/work"\nlayout = "mh"'),
        ['config.toml:12: repository.work-local.layout: must be one of "fs", "maildir++"'],
    ),
    (
        "unknown repository reference",
        ('local = "work-local"', 'local = "work-locl"'),
        ['config.toml:6: account.work.local: no repository named "work-locl" (did you mean'],
    ),
    (
        "unknown account in general.accounts",
        ('accounts = ["work"]', 'accounts = ["wrok"]'),
        ['config.toml:2: general.accounts: no account named "wrok" (did you mean "work"?)'],
    ),
    (
        "invalid glob",
        ('path = "~/Mail/work"', 'path = "~/Mail/work"\nfolders.exclude = ["Spam/[ab"]'),
        ["config.toml:12: repository.work-local.folders.exclude: pattern", "unclosed '['"],
    ),
    (
        "a key of the other repository type",
        ('path = "~/Mail/work"', 'path = "~/Mail/work"\nhost = "x"'),
        ['config.toml:12: repository.work-local.host: not a key for type = "maildir"'],
    ),
    (
        "unknown repository type",
        ('type = "maildir"', 'type = "mbox"'),
        [
            'config.toml:10: repository.work-local.type: must be "maildir", "imap" or "gmail",'
            ' not "mbox"'
        ],
    ),
    (
        "mass-delete share out of range",
        ('remote = "work-remote"', 'remote = "work-remote"\nmass_delete_share = 0'),
        ["config.toml:8: account.work.mass_delete_share: must be above 0 and at most 1, not 0"],
    ),
    (
        "timeout of zero",
        ("user =", 'timeout = "0s"\nuser ='),
        ['config.toml:16: repository.work-remote.timeout: must be more than 0s, not "0s"'],
    ),
    (
        "timeout not a duration",
        ("user =", 'timeout = "1 minute"\nuser ='),
        ['config.toml:16: repository.work-remote.timeout: not a duration: "1 minute" (write'],
    ),
    (
        "unset environment variable",
        ('"~/Mail/work"', '"$MAILTIDE_TEST_UNSET_VAR/work"'),
        ["config.toml:11: repository.work-local.path: environment variable"],
    ),
    (
        "TOML syntax error",
        ('remote = "work-remote"', "remote = work-remote"),
        ["config.toml:7: TOML syntax error: Invalid value (at line 7, column 10)"],
    ),
]


@pytest.mark.parametrize(("change", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config(tmp_path: Path, change: tuple[str, str], expected: list[str]) -> None:
    old, new = change
    assert old in GOOD
    found = problems(tmp_path, GOOD.replace(old, new, 1))
    assert len(found) == 1, found
    (line,) = found
    assert line.startswith(str(tmp_path / "config.toml") + ":")
    for text in expected:
        assert text in line


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD
    for old, new in [
        ('accounts = ["work"]', 'acounts = ["work"]'),
        ('local = "work-local"', 'local = "nowhere"'),
        ("user =", 'tls = "none"\nport = 0\nuser ='),
        ('path = "~/Mail/work"', 'path = 7\nlayout = "x"'),
    ]:
        text = text.replace(old, new)
    found = problems(tmp_path, text)
    keys = [line.split(": ")[1] for line in found]
    assert keys == [
        "general.acounts",
        "account.work.local",
        "repository.work-local.path",
        "repository.work-local.layout",
        "repository.work-remote.tls",
        "repository.work-remote.port",
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "nope.toml"))
    assert info.value.problems == [
        f"{tmp_path}/nope.toml: cannot read the config file: No such file or directory"
    ]


def test_default_file_missing_says_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        load_config(None)
    (line,) = info.value.problems
    assert line.startswith(f"{tmp_path}/mailtide/config.toml: cannot read the config file")
    assert "-c FILE" in line


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path))
    assert info.value.problems == [f"{tmp_path}: cannot read the config file: Is a directory"]


def test_not_utf8(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_bytes(GOOD.encode().replace(b"me@example", b"m\xe9@example"))
    with pytest.raises(ConfigError) as info:
        load_config(str(file))
    assert info.value.problems == [f"{file}:16: the file is not valid UTF-8"]


def test_no_accounts(tmp_path: Path) -> None:
    found = problems(tmp_path, "")
    assert found == [f"{tmp_path}/config.toml: no [account.NAME] table: there is nothing to sync"]


def test_quoted_names_are_located(tmp_path: Path) -> None:
    text = GOOD.replace("[account.work]", '[account."my work"]').replace('"work"]', '"my work"]')
    text = text.replace('remote = "work-remote"', 'remote = "work-remote"\nmass_delete_flor = 1')
    (line,) = problems(tmp_path, text)
    assert line.endswith(
        ':8: account."my work".mass_delete_flor: unknown key (did you mean "mass_delete_floor"?)'
    )


# ---- password sources ----------------------------------------------------------------------


COMMAND = 'password_command = ["pass", "show", "mail/work"]\n'


def with_source(lines: str) -> str:
    return GOOD.replace(COMMAND, lines)


def remote_of(tmp_path: Path, lines: str) -> ImapRepository:
    remote = load_config(write(tmp_path, with_source(lines))).account("work").remote
    assert isinstance(remote, ImapRepository)
    return remote


def test_each_source_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PWDIR", str(tmp_path / "secrets"))
    assert remote_of(tmp_path, 'password_file = "work.pw"\n').password_file == tmp_path / "work.pw"
    file = remote_of(tmp_path, 'password_file = "$PWDIR/w"\n').password_file
    assert file == tmp_path / "secrets/w"
    assert remote_of(tmp_path, 'password_credential = "mail-work"\n').password_credential == (
        "mail-work"
    )
    assert remote_of(tmp_path, "netrc = true\n").netrc == tmp_path / "home/.netrc"
    assert remote_of(tmp_path, 'netrc = "~/mail.netrc"\n').netrc == tmp_path / "home/mail.netrc"
    assert remote_of(tmp_path, "keyring = true\n").keyring is True
    # false chooses nothing, so it does not count as a second source
    chosen = remote_of(tmp_path, COMMAND + "netrc = false\nkeyring = false\n")
    assert (chosen.netrc, chosen.keyring) == (None, False)


WHERE = "config.toml:13: repository.work-remote"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            COMMAND + 'password_file = "pw"\n',
            f'{WHERE}: sets 2 password sources ("password_command", "password_file"): keep'
            " exactly one",
        ),
        (
            'password = "x"\nnetrc = true\nkeyring = true\n',
            f'{WHERE}: sets 3 password sources ("password", "netrc", "keyring"): keep exactly one',
        ),
        (
            "netrc = false\n",
            f'{WHERE}: needs a password source: one of "password", "password_command",'
            ' "password_file", "password_credential", "netrc", "keyring", or an OAuth2 token'
            ' source ("oauth2_token_command", "oauth2_client_id")',
        ),
        (
            'password_credential = "../work"\n',
            f"{WHERE.replace(':13:', ':17:')}.password_credential: must be a credential name"
            ' (a file name, no "/"), not "../work"',
        ),
        (
            'password_file = ""\n',
            f"{WHERE.replace(':13:', ':17:')}.password_file: must not be empty",
        ),
        (
            "netrc = 1\n",
            f"{WHERE.replace(':13:', ':17:')}.netrc: must be true (for ~/.netrc) or the path of"
            " a netrc file, not an integer",
        ),
        (
            'keyring = "yes"\n',
            f"{WHERE.replace(':13:', ':17:')}.keyring: must be true or false, not a string",
        ),
        (
            'password_file = "$NO_SUCH_VARIABLE_HERE/pw"\n',
            f"{WHERE.replace(':13:', ':17:')}.password_file: environment variable"
            " $NO_SUCH_VARIABLE_HERE is not set",
        ),
    ],
)
def test_bad_password_source(tmp_path: Path, lines: str, expected: str) -> None:
    assert problems(tmp_path, with_source(lines)) == [f"{tmp_path}/{expected}"]


def test_keyring_without_the_package_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)
    assert problems(tmp_path, with_source("keyring = true\n")) == [
        f"{tmp_path}/{WHERE.replace(':13:', ':17:')}.keyring: needs the keyring package,"
        " which is not installed: pip install 'mailtide[keyring]'"
    ]
