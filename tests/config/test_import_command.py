"""``mailtide import-config``, the command: where it reads, where it writes (a new 0600 file,
never over an existing one), and a source it cannot use: one line naming the file and the
line, exit 2, the line's text (maybe a password) never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mailtide.cli import main

from .import_helpers import not_translated

OFFLINEIMAP = """
[Account a]
localrepository = l
remoterepository = r

[Repository l]
type = Maildir
localfolders = ~/Mail/a
sep = /

[Repository r]
type = IMAP
remotehost = imap.example.org
remoteuser = me
remotepass = Hunter2-Secret
oauth2_refresh_token = 1//refresh-Secret
"""

BAD = [
    ("offlineimap", "[Account a]\nlocalrepository = l\nremotepass Hunter2-Secret\n", 3),
    ("offlineimap", "remotepass = Hunter2-Secret\n[Account a]\n", 1),
    ("offlineimap", "[Account a]\nquick = 1\nquick = Hunter2-Secret\n", 3),
    ("mbsync", 'IMAPStore x\nHost h\nPass "Hunter2-Secret\n', 3),
    ("mbsync", "IMAPStore x\n= Hunter2-Secret\n", 2),
    ("mbsync", "IMAPStore x\n\nChannel c\nFar Hunter2-Secret\nNear :x:\n", 4),
]


@pytest.mark.parametrize(("tool", "text", "line"), BAD)
def test_a_source_that_does_not_parse_is_one_line_naming_file_and_line(
    tool: str, text: str, line: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    source.write_text(text)
    assert main(["import-config", tool, str(source)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"mailtide: {source}:{line}: ") and err.count("\n") == 1
    assert "Secret" not in err


def test_a_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing"
    assert main(["import-config", "mbsync", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"mailtide: {missing}: cannot read the file: No such file or directory;"
        " name the file to import\n"
    )


@pytest.mark.parametrize(
    ("tool", "where"),
    [
        ("offlineimap", ".offlineimaprc"),
        ("offlineimap", "xdg/offlineimap/config"),
        ("mbsync", ".mbsyncrc"),
        ("mbsync", "xdg/isyncrc"),
    ],
)
def test_the_default_source_is_where_the_tool_reads(
    tool: str,
    where: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert main(["import-config", tool]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / where) in err and err.count("\n") == 1
    source = tmp_path / where
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(
        OFFLINEIMAP
        if tool == "offlineimap"
        else "IMAPStore r\nHost h\nUser u\nPass p\n\nMaildirStore l\nPath ~/M/\nInbox ~/M/INBOX\n"
        "\nChannel a\nFar :r:\nNear :l:\nPatterns *\n"
    )
    assert main(["import-config", tool]) == 0
    out = capsys.readouterr().out
    assert f"from {source}." in out and "[account.a]" in out


def test_written_0600_never_over_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "offlineimaprc"
    source.write_text(OFFLINEIMAP)
    out = tmp_path / "config.toml"
    old = os.umask(0)
    try:
        assert main(["import-config", "offlineimap", str(source), "-o", str(out)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert 'password = "Hunter2-Secret"' in text
    assert "refresh-Secret" not in text  # a secret is translated only into a password key
    assert "oauth2_refresh_token = <secret, not copied>" in not_translated(text)
    capsys.readouterr()
    out.write_text("mine")
    assert main(["import-config", "offlineimap", str(source), "-o", str(out)]) == 2
    assert out.read_text() == "mine"
    err = capsys.readouterr().err
    assert err == (
        f"mailtide: {out}: the file exists; import-config never overwrites one: name a new file\n"
    )
