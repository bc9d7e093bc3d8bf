"""What an existing Maildir root holds, before an account's first sync: its layout, or other
data; and the one line that refuses a first sync into a root that does not fit."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailtide.stores.base import StoreError
from mailtide.stores.maildir import MaildirSettings, MaildirStore
from mailtide.stores.maildir.survey import RootSurvey, survey_root


@dataclass(frozen=True, slots=True)
class Tree:
    """A root as paths below it: "d/" a directory, "f" a file, "l -> target" a symlink."""

    paths: tuple[str, ...]
    kind: str
    fs: tuple[str, ...] = ()
    maildirpp: tuple[str, ...] = ()
    other: tuple[str, ...] = ()


FOLDER = ("cur/", "new/", "tmp/")


def folder(at: str) -> tuple[str, ...]:
    return tuple(f"{at}/{sub}" for sub in FOLDER)


TREES = {
    "empty": Tree((), "empty"),
    "only Maildir data": Tree(
        ("lost+found/", ".notmuch/xapian/flintlock", "dovecot-uidvalidity", "subscriptions"),
        "empty",
    ),
    "empty plain directories": Tree(("Projects/", "Lists/Old/"), "empty"),
    "fs (mailtide, mbsync, OfflineIMAP)": Tree(
        (
            *folder("INBOX"),
            "INBOX/.mbsyncstate",
            "INBOX/dovecot-keywords",
            *folder("Archive/2024"),
            ".mailtide-state-of-nothing",
        ),
        "fs",
        fs=("Archive", "INBOX"),
    ),
    "maildir++ (Dovecot, Courier)": Tree(
        (
            *FOLDER,
            "cur/1700000000.M1P1.host:2,S",
            *folder(".Sent"),
            ".Sent/maildirfolder",
            *folder(".Archive.2024"),
            "dovecot-uidlist",
            "dovecot.index.log",
            "dovecot-keywords",
            "subscriptions",
            "maildirsize",
            "courierimapuiddb",
            "courierimapkeywords/",
            ".mailtide-id",
        ),
        "maildir++",
        maildirpp=(".Archive.2024", ".Sent", "cur/", "new/", "tmp/"),
    ),
    "maildir++ without its INBOX": Tree(folder(".Sent"), "maildir++", maildirpp=(".Sent",)),
    "both layouts": Tree(
        (*FOLDER, *folder("INBOX")), "mixed", fs=("INBOX",), maildirpp=("cur/", "new/", "tmp/")
    ),
    "a home directory": Tree(
        ("Documents/report.pdf", "notes.txt", ".bashrc", ".config/app/x", *folder("Mail/INBOX")),
        "not a Maildir",
        fs=("Mail",),
        other=("Documents", "notes.txt"),
    ),
    "a file among fs folders' parents": Tree(
        (*folder("Archive/2024"), "Archive/README"), "not a Maildir", other=("Archive",)
    ),
    "symlinks": Tree(
        ("Lists -> ../elsewhere", "gone -> ../nowhere"),
        "not a Maildir",
        fs=("Lists",),
        other=("gone",),
    ),
}


def build(root: Path, paths: tuple[str, ...]) -> None:
    root.mkdir()
    (root.parent / "elsewhere" / "cur").mkdir(parents=True)
    (root.parent / "elsewhere" / "new").mkdir()
    for path in paths:
        name, arrow, target = path.partition(" -> ")
        where = root / name
        where.parent.mkdir(parents=True, exist_ok=True)
        if arrow:
            where.symlink_to(target)
        elif path.endswith("/"):
            where.mkdir(exist_ok=True)
        else:
            where.write_text("x")


@pytest.mark.parametrize("case", list(TREES))
def test_a_root_is_classified_by_what_it_holds(tmp_path: Path, case: str) -> None:
    tree = TREES[case]
    build(tmp_path / "Mail", tree.paths)
    survey = survey_root(str(tmp_path / "Mail"))
    assert (survey.kind, survey.fs, survey.maildirpp, survey.other) == (
        tree.kind,
        tree.fs,
        tree.maildirpp,
        tree.other,
    )


R = "/home/me/Mail"
T = "[repository.local]"

REFUSALS = [
    (RootSurvey(R), "fs", None),
    (RootSurvey(R, fs=("INBOX",)), "fs", None),
    (RootSurvey(R, maildirpp=("cur/", "new/")), "maildir++", None),
    (
        RootSurvey(R, maildirpp=(".Archive.2024", ".Lists", ".Sent", ".Trash", "cur/", "new/")),
        "fs",
        f"Maildir root {R} looks like a Maildir in the maildir++ layout (cur/, new/ at the "
        f'root; folders .Archive.2024, .Lists, .Sent and 1 more), but {T} has layout = "fs", '
        f'which would copy every message again beside it: set layout = "maildir++" in {T}',
    ),
    (
        RootSurvey(R, fs=("Archive", "INBOX")),
        "maildir++",
        f"Maildir root {R} looks like a Maildir in the fs layout (folders Archive, INBOX), but "
        f'{T} has layout = "maildir++", which would copy every message again beside it: set '
        f'layout = "fs" in {T}',
    ),
    (
        RootSurvey(R, fs=("INBOX",), maildirpp=("cur/", "new/")),
        "fs",
        f"Maildir root {R} holds folders of both layouts (fs: INBOX; maildir++: cur/, new/ at "
        "the root), and a sync would see only the fs ones: move the others out of it, or set "
        f"path in {T} to another directory",
    ),
    (
        RootSurvey(R, fs=("INBOX",), other=("Documents", "notes.txt")),
        "fs",
        f"Maildir root {R} holds other things than a Maildir (Documents, notes.txt): mailtide "
        f"does not put its folders among them; set path in {T} to a directory of its own (new, "
        "empty, or holding only a Maildir)",
    ),
]


@pytest.mark.parametrize(("survey", "layout", "refusal"), REFUSALS)
def test_the_refusal_says_what_was_found_and_what_to_change(
    survey: RootSurvey, layout: str, refusal: str | None
) -> None:
    assert survey.refusal(layout, T) == refusal  # type: ignore[arg-type]


def test_prepare_first_sync_creates_a_missing_root_or_refuses_one_that_does_not_fit(
    tmp_path: Path,
) -> None:
    missing = MaildirStore(MaildirSettings(str(tmp_path / "new" / "Mail"), "fs", T))
    assert missing.prepare_first_sync() is True
    assert os.path.isdir(tmp_path / "new" / "Mail")
    assert missing.prepare_first_sync() is False  # empty: fine
    build(tmp_path / "Mail", (*FOLDER, *folder(".Sent")))
    before = sorted(p for p in (tmp_path / "Mail").rglob("*"))
    wrong = MaildirStore(MaildirSettings(str(tmp_path / "Mail"), "fs", T))
    with pytest.raises(StoreError, match=r'set layout = "maildir\+\+" in \[repository\.local\]'):
        wrong.prepare_first_sync()
    assert sorted(p for p in (tmp_path / "Mail").rglob("*")) == before
    dry = MaildirStore(MaildirSettings(str(tmp_path / "absent"), "fs", T), read_only=True)
    assert dry.prepare_first_sync() is False
    assert not (tmp_path / "absent").exists()
