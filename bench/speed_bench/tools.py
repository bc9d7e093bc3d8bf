"""The three tools as one-shot syncs of every folder between a lab server and a Maildir:
``mailtide sync`` (an fs Maildir), mbsync and OfflineIMAP through the lab's ``peer-run.sh``
(which execs the tool, so the timing is the tool's own)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from daemon_bench.lab import Server
from daemon_bench.mailtide_daemon import write_config

TOOLS = ("mailtide", "mbsync", "offlineimap")

# OfflineIMAP's initial sync took 540.7 s for 50k messages here (lab README, 2026-11): about
# 10.8 ms a message; a run that would exceed the budget is skipped with a note.
OFFLINEIMAP_SECONDS_PER_MESSAGE = 540.7 / 50_000


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    dir: Path  # the tool's config, state and Maildir (``dir/Mail``)
    server: Server  # where it syncs from: the lab server, or the shaped link in front of it
    # Through the shaped link mailtide compresses (COMPRESS=DEFLATE), as ``compress = "auto"``
    # does on any link that is not loopback: the link's far end is 127.0.0.1 only here.
    compress: bool = False

    @property
    def maildir(self) -> Path:
        return self.dir / "Mail"

    @property
    def layout(self) -> str:
        """How ``labtool.py`` reads the tool's Maildir folder names."""
        return "offlineimap" if self.name == "offlineimap" else "mbsync"

    def prepare(self) -> None:
        """An empty Maildir and state, and mailtide's config."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.maildir.mkdir(parents=True)
        (self.dir / "state").mkdir()
        if self.name == "mailtide":
            write_config(self.dir, self.server, {"compress": True} if self.compress else None)

    def argv(self, lab: Path, mailtide: Path) -> list[str]:
        if self.name == "mailtide":
            return [str(mailtide), "sync", "-c", str(self.dir / "config.toml")]
        peer = ["bash", str(lab / "peer-run.sh"), self.name, str(self.dir / "state")]
        peer += [str(self.server.port), str(self.maildir)]
        # mbsync's lab config has `Expunge None`: -X expunges what it marked \Deleted, as the
        # other two do, so a local deletion really leaves the server.
        return peer + (["-X"] if self.name == "mbsync" else [])

    def env(self) -> dict[str, str]:
        return {"IMAP_USER": self.server.user, "IMAP_PASS": self.server.password}

    def through(self, port: int) -> Tool:
        """The same tool syncing through ``port`` (the shaped link) instead."""
        return replace(self, server=replace(self.server, port=port), compress=True)


def installed(name: str, mailtide: Path) -> bool:
    if name == "mailtide":
        return mailtide.exists()
    return shutil.which(name) is not None


def offlineimap_too_slow(messages: int, budget: float) -> str | None:
    """Why OfflineIMAP is skipped at this size, or None when its initial sync fits ``budget``."""
    estimate = messages * OFFLINEIMAP_SECONDS_PER_MESSAGE
    if estimate <= budget:
        return None
    return (
        f"offlineimap skipped: its initial sync of {messages} messages would take about "
        f"{estimate / 60:.0f} min (540.7 s for 50k in 2026-11), "
        f"over the {budget / 60:.0f} min budget"
    )
