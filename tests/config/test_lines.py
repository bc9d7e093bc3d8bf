"""key_lines: where each TOML key is, found by scanning the text."""

from mailtide.config.lines import key_lines, line_of, split_key

TEXT = '''\
# comment = not a key
[general]
accounts = [
  "a",      # x = 1 inside an array is not a key
]

[ account . "my work" ]
local = "l"
note = """
fake = 1
"""
folders.include = ["*"]
[[repository.list]]
inline = { a = 1 }
'''


def test_key_lines() -> None:
    lines = key_lines(TEXT)
    assert lines[("general",)] == 2
    assert lines[("general", "accounts")] == 3
    assert lines[("account",)] == 7
    assert lines[("account", "my work")] == 7
    assert lines[("account", "my work", "local")] == 8
    assert ("account", "my work", "fake") not in lines
    assert ("general", "x") not in lines and ("comment",) not in lines
    assert lines[("account", "my work", "folders", "include")] == 12
    assert lines[("repository", "list", "inline")] == 14


def test_line_of_falls_back_to_the_enclosing_key() -> None:
    lines = key_lines(TEXT)
    assert line_of(lines, ("repository", "list", "inline", "a")) == 14
    assert line_of(lines, ("account", "my work", "missing")) == 7
    assert line_of(lines, ("nothing",)) is None


def test_split_key() -> None:
    assert split_key("a . \"b.c\" . 'd e'") == ("a", "b.c", "d e")


def test_non_ascii_quoted_keys() -> None:
    lines = key_lines('[account."Büro 日本"]\nlocal = 1\n')
    assert lines[("account", "Büro 日本", "local")] == 2
