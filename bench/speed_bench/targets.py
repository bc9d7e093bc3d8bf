"""Issue 12's targets for mailtide, as data: per step, mode and link, the largest ratio to
mbsync's wall time, a wall time in seconds, a peak RSS; and the size the issue set each for
(at another size the verdict is for orientation only)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Target:
    step: str
    mode: str  # "folders" (20 folders) or "inbox" (one folder)
    link: bool  # through the 25 ms / 100 Mbit/s link
    ratio: float | None = None  # mailtide wall ÷ mbsync wall at most
    seconds: float | None = None  # mailtide wall at most
    rss_mb: float | None = None  # mailtide peak RSS at most
    at: int = 50_000  # the corpus size the issue states it for

    def text(self) -> str:
        parts = [f"≤ {self.ratio}×" if self.ratio is not None else ""]
        parts += [f"≤ {self.seconds} s" if self.seconds is not None else ""]
        parts += [f"RSS ≤ {self.rss_mb:.0f} MB" if self.rss_mb is not None else ""]
        return ", ".join(p for p in parts if p) + f" (at {self.at // 1000}k)"

    def verdict(self, wall: float | None, mbsync: float | None, rss_kb: float | None) -> str:
        """ "met", "missed (what)", or "–" when a figure it needs is missing."""
        missed = []
        if self.ratio is not None:
            if wall is None or not mbsync:
                return "–"
            if wall / mbsync > self.ratio:
                missed.append(f"{wall / mbsync:.2f}×")
        if self.seconds is not None and (wall is None or wall > self.seconds):
            missed.append("–" if wall is None else f"{wall:.2f} s")
        if self.rss_mb is not None and (rss_kb is None or rss_kb / 1024 > self.rss_mb):
            missed.append("–" if rss_kb is None else f"{rss_kb / 1024:.0f} MB")
        return "met" if not missed else "missed (" + ", ".join(missed) + ")"


TARGETS = (
    Target("initial", "folders", False, ratio=0.25, rss_mb=50),
    Target("nochange", "folders", False, ratio=0.5),
    Target("server", "folders", False, ratio=0.7),
    Target("local", "folders", False, ratio=0.7),
    Target("initial", "inbox", False, ratio=0.5, at=100_000),
    Target("nochange", "inbox", False, ratio=0.5, at=100_000),
    Target("flag1", "inbox", False, ratio=0.5, seconds=0.2, at=100_000),
    # "the same no-change and changed runs through a link": read as the one-folder ones above
    Target("nochange", "inbox", True, ratio=0.5, at=100_000),
    Target("flag1", "inbox", True, ratio=0.5, at=100_000),
    Target("initial", "folders", True, ratio=0.5, at=10_000),
)

# No-change re-sync time from 10k to 50k grows at most this much (two runs: bench/compare.py).
NOCHANGE_GROWTH = 1.2


def target_for(step: str, mode: str, link: bool) -> Target | None:
    return next((t for t in TARGETS if (t.step, t.mode, t.link) == (step, mode, link)), None)
