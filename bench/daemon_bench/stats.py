"""p50 / p95 / max of a list of latencies, with the events that never arrived counted apart."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Spread:
    n: int  # events that arrived
    missed: int  # events that did not arrive within the timeout
    p50: float | None
    p95: float | None
    max: float | None

    def text(self, unit: float = 1.0, suffix: str = "s", digits: int = 2) -> str:
        if self.p50 is None or self.p95 is None or self.max is None:
            return f"n={self.n} (none arrived, {self.missed} missed)"
        missed = f", {self.missed} MISSED" if self.missed else ""
        return (
            f"p50 {self.p50 / unit:.{digits}f}{suffix}  p95 {self.p95 / unit:.{digits}f}{suffix}"
            f"  max {self.max / unit:.{digits}f}{suffix}  (n={self.n}{missed})"
        )


def spread(values: list[float | None]) -> Spread:
    """Percentiles by the inclusive method (p95 of 100 values lies between the 95th and
    96th); None values are events that never arrived."""
    got = sorted(v for v in values if v is not None)
    missed = len(values) - len(got)
    if not got:
        return Spread(0, missed, None, None, None)
    if len(got) == 1:
        return Spread(1, missed, got[0], got[0], got[0])
    cuts = statistics.quantiles(got, n=100, method="inclusive")
    return Spread(len(got), missed, cuts[49], cuts[94], got[-1])
