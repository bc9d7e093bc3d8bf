"""``COPYUID`` (RFC 4315): which UIDs a COPY or MOVE took, and the UIDs they got."""

from __future__ import annotations

from mailtide.stores.imap.parse import ParseError


def expand(uid_set: str, most: int) -> list[int]:
    """``"3:5,9"`` -> [3, 4, 5, 9] in the order given; ParseError beyond ``most`` UIDs (a
    server's set for our own chunk of UIDs is never longer than that chunk)."""
    out: list[int] = []
    for part in uid_set.split(","):
        lo, _, hi = part.partition(":")
        if not lo.isdigit() or not (hi or lo).isdigit():
            raise ParseError(f"bad UID set {uid_set!r} in COPYUID")
        a, b = int(lo), int(hi or lo)
        step = 1 if b >= a else -1
        if len(out) + abs(b - a) + 1 > most:
            raise ParseError(f"COPYUID names more UIDs than were asked for: {uid_set!r}")
        out.extend(range(a, b + step, step))
    return out


def copied_uids(code_args: bytes, most: int) -> dict[int, int]:
    """``COPYUID <validity> <source set> <target set>``: source UID -> target UID."""
    fields = code_args.decode("ascii", "replace").split()
    if len(fields) != 3:
        raise ParseError(f"bad COPYUID {code_args[:80]!r}")
    source, target = expand(fields[1], most), expand(fields[2], most)
    if len(source) != len(target):
        raise ParseError(f"COPYUID sets of different lengths: {code_args[:80]!r}")
    return dict(zip(source, target, strict=True))
