"""The daemon's and the hooks' keys: defaults, [general] defaults an account overrides,
bounds, durations, and the pairs of keys that must agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtide.config import ConfigError, load_config
from mailtide.config.duration import FORMS
from mailtide.config.model import Config, DaemonSettings, Hooks

from .test_config_load import GOOD

SECOND = """
[account.second]
local = "second-local"
remote = "work-remote"

[repository.second-local]
type = "maildir"
path = "~/Mail/second"
"""


def config_text(general: str = "", account: str = "", second: bool = False) -> str:
    """GOOD with lines added to [general] and to [account.work], and maybe a second account."""
    text = GOOD.replace('state_dir = "state"\n', f'state_dir = "state"\n{general}')
    text = text.replace('remote = "work-remote"\n', f'remote = "work-remote"\n{account}')
    return text + (SECOND if second else "")


def load(tmp_path: Path, text: str) -> Config:
    file = tmp_path / "config.toml"
    file.write_text(text)
    return load_config(str(file))


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.problems


def located(tmp_path: Path, text: str, snippet: str, message: str) -> str:
    """The problem line for ``message`` at the line of ``text`` that starts with ``snippet``."""
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if line.startswith(snippet))
    return f"{tmp_path / 'config.toml'}:{number}: {message}"


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, GOOD)
    account = config.account("work")
    assert account.daemon == DaemonSettings(
        debounce=0.3,
        max_delay=5.0,
        idle_folders=("INBOX",),
        idle_renew=600.0,
        poll=120.0,
        notify=True,
        max_connections=4,
        watch_maildir=True,
        rescan=900.0,
        autorefresh=900.0,
        quick=10,
        hold_connection_open=True,
        keepalive=120.0,
    )
    assert account.hooks == Hooks(presync=None, postsync=None, newmail=None, timeout=60.0)
    assert config.general.max_sync_accounts == 2


EVERY_KEY = """\
debounce = "1s"
max_delay = 8
idle_folders = ["inbox", "Lists/python-dev"]
idle_renew = "29m"
poll = "1m30s"
notify = false
max_connections = 6
watch_maildir = false
rescan = "1h"
autorefresh = 0
quick = -1
hold_connection_open = false
keepalive = "10s"
presync_hook = ["mail-online"]
postsync_hook = ["notmuch", "new"]
newmail_hook = ["notify-send", "New mail"]
hook_timeout = "500ms"
"""

EVERY_VALUE = (
    DaemonSettings(
        debounce=1.0,
        max_delay=8.0,
        idle_folders=("INBOX", "Lists/python-dev"),
        idle_renew=1740.0,
        poll=90.0,
        notify=False,
        max_connections=6,
        watch_maildir=False,
        rescan=3600.0,
        autorefresh=0.0,
        quick=-1,
        hold_connection_open=False,
        keepalive=10.0,
    ),
    Hooks(
        presync=("mail-online",),
        postsync=("notmuch", "new"),
        newmail=("notify-send", "New mail"),
        timeout=0.5,
    ),
)


@pytest.mark.parametrize("where", ["account", "general"])
def test_every_key_is_read(tmp_path: Path, where: str) -> None:
    text = config_text(**{where: EVERY_KEY})
    account = load(tmp_path, text).account("work")
    assert (account.daemon, account.hooks) == EVERY_VALUE


def test_general_is_the_default_an_account_overrides(tmp_path: Path) -> None:
    general = (
        'poll = "5m"\nquick = -1\nidle_folders = []\npostsync_hook = ["notmuch", "new"]\n'
        "max_sync_accounts = 5\n"
    )
    account = 'poll = 30\nidle_folders = ["INBOX", "Lists/x"]\npostsync_hook = ["true"]\n'
    config = load(tmp_path, config_text(general, account, second=True))
    work, second = config.account("work"), config.account("second")
    assert (work.daemon.poll, work.daemon.idle_folders) == (30.0, ("INBOX", "Lists/x"))
    assert (second.daemon.poll, second.daemon.idle_folders) == (300.0, ())
    assert work.daemon.quick == second.daemon.quick == -1
    assert (work.hooks.postsync, second.hooks.postsync) == (("true",), ("notmuch", "new"))
    assert second.daemon.autorefresh == 900.0  # set nowhere: the default
    assert config.general.max_sync_accounts == 5


# (key = value as written, the message after "KEY: "); each is tried in [general] and in
# [account.work], and must be reported there, at its line, alone.
BOUNDS = [
    ("debounce = 61", "must be from 0s to 1m, not 61 seconds"),
    ('debounce = "-1s"', f'must not be negative: "-1s" ({FORMS})'),
    ("max_delay = 0", "must be more than 0s and at most 10m, not 0 seconds"),
    ('max_delay = "10m1ms"', 'must be more than 0s and at most 10m, not "10m1ms"'),
    (
        'idle_renew = "59s"',
        'must be from 1m to 29m, not "59s"'
        " (RFC 2177: a server may log out a client idle for 30 minutes)",
    ),
    (
        'idle_renew = "30m"',
        'must be from 1m to 29m, not "30m"'
        " (RFC 2177: a server may log out a client idle for 30 minutes)",
    ),
    ('poll = "9.999s"', 'must be at least 10s, not "9.999s"'),
    ("rescan = 0", "must be more than 0s, not 0 seconds"),
    ("autorefresh = -1", f"must not be negative: -1 ({FORMS})"),
    ("quick = -2", "must be at least -1, not -2"),
    ("quick = 1.5", "must be an integer, not a number"),
    ("max_connections = 0", "must be from 1 to 20, not 0"),
    ("max_connections = 21", "must be from 1 to 20, not 21"),
    ('keepalive = "9s"', 'must be from 10s to 29m, not "9s"'),
    ('keepalive = "29m1s"', 'must be from 10s to 29m, not "29m1s"'),
    ("hook_timeout = 0", "must be more than 0s, not 0 seconds"),
    ('notify = "yes"', "must be true or false, not a string"),
    ("watch_maildir = 1", "must be true or false, not an integer"),
    ("hold_connection_open = []", "must be true or false, not a list"),
    ('idle_folders = "INBOX"', "must be a list of strings, not a string"),
    ("idle_folders = [1]", "must be a list of strings, but holds an integer"),
    ('idle_folders = ["a//b"]', "folder name 'a//b' has an empty, '.' or '..' component"),
    ('idle_folders = ["../x"]', "folder name '../x' has an empty, '.' or '..' component"),
    ('idle_folders = ["/x"]', "folder name '/x' starts or ends with '/'"),
    ('idle_folders = ["INBOX", "inbox"]', 'names "INBOX" twice'),
    (
        'presync_hook = "notmuch new"',
        "must be a list of strings, the command and its arguments (run without a shell),"
        ' e.g. ["notmuch", "new"], not a string',
    ),
    (
        "postsync_hook = []",
        "must name a command: the list is empty or starts with an empty string",
    ),
    ('newmail_hook = ["notify-send", 1]', "must be a list of strings, but holds an integer"),
]


@pytest.mark.parametrize("where", ["general", "account"])
@pytest.mark.parametrize(("setting", "message"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_bounds(tmp_path: Path, where: str, setting: str, message: str) -> None:
    text = config_text(**{where: setting + "\n"})
    key = setting.split(" = ")[0]
    table = "general" if where == "general" else "account.work"
    assert problems(tmp_path, text) == [
        located(tmp_path, text, setting, f"{table}.{key}: {message}")
    ]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("max_sync_accounts = 0", "must be from 1 to 64, not 0"),
        ("max_sync_accounts = 65", "must be from 1 to 64, not 65"),
        ('max_sync_accounts = "2"', "must be an integer, not a string"),
    ],
)
def test_max_sync_accounts_bounds(tmp_path: Path, setting: str, message: str) -> None:
    text = config_text(general=setting + "\n")
    assert problems(tmp_path, text) == [
        located(tmp_path, text, setting, f"general.max_sync_accounts: {message}")
    ]


def test_edges_are_accepted(tmp_path: Path) -> None:
    lowest = (
        'debounce = 0\nmax_delay = "1ms"\nidle_renew = "1m"\npoll = "10s"\nrescan = "1ms"\n'
        "autorefresh = 0\nquick = -1\nmax_connections = 1\nidle_folders = []\n"
        'keepalive = "10s"\nhook_timeout = "1ms"\nmax_sync_accounts = 1\n'
    )
    config = load(tmp_path, config_text(general=lowest))
    daemon = config.account("work").daemon
    assert (daemon.debounce, daemon.max_delay, daemon.idle_renew) == (0.0, 0.001, 60.0)
    assert (daemon.max_connections, daemon.idle_folders, daemon.keepalive) == (1, (), 10.0)
    highest = (
        'debounce = "1m"\nmax_delay = "10m"\nidle_renew = "29m"\nmax_connections = 20\n'
        'keepalive = "29m"\nmax_sync_accounts = 64\n'
    )
    config = load(tmp_path, config_text(general=highest))
    daemon = config.account("work").daemon
    assert (daemon.debounce, daemon.max_delay, daemon.idle_renew) == (60.0, 600.0, 1740.0)
    assert (daemon.max_connections, daemon.keepalive) == (20, 1740.0)
    assert config.general.max_sync_accounts == 64


@pytest.mark.parametrize(
    ("written", "shown"),
    [("15 minutes", '"15 minutes"'), ("15min", '"15min"'), ("2d", '"2d"'), ("30", '"30"')],
)
def test_malformed_duration(tmp_path: Path, written: str, shown: str) -> None:
    text = config_text(account=f'poll = "{written}"\n')
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'config.toml'}:8: account.work.poll: not a duration: {shown} (write a"
        " number of seconds such as 90 or 0.5, or a string with units h, m, s, ms such as"
        ' "30s", "15m", "1h30m", "500ms")'
    ]


@pytest.mark.parametrize(
    ("general", "account", "expected"),
    [
        (
            "",
            "idle_folder = []\n",
            'account.work.idle_folder: unknown key (did you mean "idle_folders"?)',
        ),
        (
            "",
            "hook_timout = 5\n",
            'account.work.hook_timout: unknown key (did you mean "hook_timeout"?)',
        ),
        (
            "",
            "autorefesh = 5\n",
            'account.work.autorefesh: unknown key (did you mean "autorefresh"?)',
        ),
        (
            "",
            "newmail_hoook = []\n",
            'account.work.newmail_hoook: unknown key (did you mean "newmail_hook"?)',
        ),
        ("keep_alive = 5\n", "", 'general.keep_alive: unknown key (did you mean "keepalive"?)'),
        (
            "max_sync_acounts = 2\n",
            "",
            'general.max_sync_acounts: unknown key (did you mean "max_sync_accounts"?)',
        ),
        (
            "",
            "max_sync_accounts = 2\n",
            "account.work.max_sync_accounts: not a key for [account.work] (it is one for"
            " [general])",
        ),
        (
            "retries = 2\n",
            "",
            "general.retries: not a key for [general] (it is one for [account.NAME])",
        ),
    ],
)
def test_unknown_key_near_a_new_key(
    tmp_path: Path, general: str, account: str, expected: str
) -> None:
    text = config_text(general, account)
    (line,) = problems(tmp_path, text)
    assert line == located(tmp_path, text, (general or account).split(" = ")[0], expected)


# Pairs of keys that must agree: (in [general], in [account.work], the problems).
CLASHES = [
    (
        "",
        "debounce = 10\n",
        ["account.work.debounce: must be at most max_delay (5s, the default), not 10s"],
    ),
    (
        "",
        'debounce = 10\nmax_delay = "8s"\n',
        ["account.work.max_delay: must be at least debounce (10s), not 8s"],
    ),
    (
        'max_delay = "8s"\n',
        "debounce = 10\n",
        ["account.work.debounce: must be at most general.max_delay (8s), not 10s"],
    ),
    (
        "debounce = 10\n",
        'max_delay = "8s"\n',
        [
            # [general]'s own debounce clashes with the default max_delay, reported once there.
            "general.debounce: must be at most max_delay (5s, the default), not 10s",
            "account.work.max_delay: must be at least general.debounce (10s), not 8s",
        ],
    ),
    (
        # Set up in [general]: reported there once, not again for each account.
        "debounce = 10\n",
        "",
        ["general.debounce: must be at most max_delay (5s, the default), not 10s"],
    ),
    (
        "",
        'idle_folders = ["INBOX", "a", "b", "c"]\n',
        [
            "account.work.idle_folders: names 4 folders, one connection each for IDLE, but"
            " max_connections (4, the default) leaves 3 besides the one to sync with: name"
            " fewer folders or raise max_connections"
        ],
    ),
    (
        'idle_folders = ["INBOX", "a"]\n',
        "max_connections = 2\n",
        [
            "account.work.max_connections: must be at least 3, one connection for IDLE on each"
            " of general.idle_folders (2 folders) and one to sync with, not 2"
        ],
    ),
    (
        "",
        "max_connections = 1\n",
        [
            "account.work.max_connections: must be at least 2, one connection for IDLE on each"
            " of idle_folders (1 folder, the default) and one to sync with, not 1"
        ],
    ),
    (
        # A bad value is reported alone: no clash with the default that would stand in for it.
        "",
        'debounce = "soon"\nmax_delay = "100ms"\n',
        [f'account.work.debounce: not a duration: "soon" ({FORMS})'],
    ),
    (
        'debounce = "soon"\n',
        'max_delay = "100ms"\n',
        [f'general.debounce: not a duration: "soon" ({FORMS})'],
    ),
]


@pytest.mark.parametrize(("general", "account", "expected"), CLASHES)
def test_keys_that_must_agree(
    tmp_path: Path, general: str, account: str, expected: list[str]
) -> None:
    found = problems(tmp_path, config_text(general, account, second=True))
    assert [line.split(": ", 1)[1] for line in found] == expected


def test_agreeing_pairs_load(tmp_path: Path) -> None:
    text = config_text(
        'debounce = "5s"\nmax_delay = "5s"\n',
        'idle_folders = ["INBOX", "a", "b"]\nmax_connections = 4\n',
        second=True,
    )
    config = load(tmp_path, text)
    assert config.account("work").daemon.idle_folders == ("INBOX", "a", "b")
    assert config.account("second").daemon.max_delay == 5.0
