"""COPYUID (RFC 4315) as a COPY or MOVE answers it: source UID -> new UID, never expanded
beyond the UIDs asked for (a hostile server's "1:4294967295" costs nothing)."""

from __future__ import annotations

import pytest

from mailtide.stores.imap.copyuid import copied_uids
from mailtide.stores.imap.parse import ParseError


def test_sets_pair_up_in_order() -> None:
    assert copied_uids(b"38505 304,319:320 3956:3958", 3) == {304: 3956, 319: 3957, 320: 3958}
    assert copied_uids(b"1 5:3 10:12", 3) == {5: 10, 4: 11, 3: 12}


@pytest.mark.parametrize(
    "args",
    [b"1 1:4294967295 1:4294967295", b"1 1:3 7:8", b"1 1,x 2", b"1 2", b""],
)
def test_what_does_not_add_up_is_refused(args: bytes) -> None:
    with pytest.raises(ParseError):
        copied_uids(args, 3)
