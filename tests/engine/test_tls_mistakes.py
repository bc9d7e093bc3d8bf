"""``tls`` set the wrong way round for the port, through a whole sync against the real Dovecot
(its plain + STARTTLS port and its implicit-TLS port): it fails within seconds, once, with the
setting to use, and it is never retried (a mistake in the config fails the same way again)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dovecot import ImapAccount
from engine_helpers import Setup, make_setup, run_forked, write_config
from fault_proxy import Fault, FaultProxy
from log_helpers import one_error_line

# (tls, the port it is set on, what the message must say)
MISTAKES = {
    "starttls on the TLS port": ("starttls", "imaps_port", 'first byte: set tls = "implicit"'),
    "none on the TLS port": ("none", "imaps_port", 'first byte: set tls = "implicit"'),
    "implicit on the plain port": ("implicit", "port", "plain IMAP, not TLS from the first byte"),
}


def mistaken(imap: ImapAccount, tmp_path: Path, mistake: str, port: int, timeout: float) -> Setup:
    tls, _, _ = MISTAKES[mistake]
    s = make_setup(imap, tmp_path, ca_file=Path(imap.ca_file), tls=tls, port=port, timeout=timeout)
    return s.with_account(retries=3, retry_delay=0.01)


@pytest.mark.parametrize("timeout", [60.0, 2.0], ids=["timeout-60", "timeout-2"])
@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistaken_tls_mode_fails_fast_once_and_says_what_to_set(
    imap_account: ImapAccount, tmp_path: Path, mistake: str, timeout: float
) -> None:
    _, port_attr, advice = MISTAKES[mistake]
    with FaultProxy(getattr(imap_account, port_attr)) as proxy:
        s = mistaken(imap_account, tmp_path, mistake, proxy.port, timeout)
        start = time.monotonic()
        report = s.sync()
        elapsed = time.monotonic() - start
        (line,) = report.failures()
        assert advice in line and f"127.0.0.1:{proxy.port}" in line, line
        assert "attempt" not in line, line  # not a lost connection that ran out of retries
        # one attempt, and the one connection that asked the port what it speaks
        assert proxy.connections == 2
    assert elapsed < min(15.0, timeout), elapsed  # a guard, not a benchmark
    assert not list(s.root.iterdir()), "nothing is created locally"


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_the_user_sees_one_line_and_exit_status_1(
    imap_account: ImapAccount, tmp_path: Path, mistake: str
) -> None:
    _, port_attr, advice = MISTAKES[mistake]
    s = mistaken(imap_account, tmp_path, mistake, getattr(imap_account, port_attr), 60.0)
    code, output = run_forked(write_config(s))
    assert code == 1, output
    line = one_error_line(output)
    assert line.startswith("mailtide: account test: 127.0.0.1:") and advice in line, output
    assert "WRONG_VERSION_NUMBER" not in output, output


def test_a_silent_plain_server_is_not_taken_for_tls(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    """A port that stays silent but does not speak TLS either is a server that stopped
    answering: a lost connection, retried, and the sync goes on when it answers again."""
    with FaultProxy(imap_account.port) as proxy:
        proxy.arm(Fault("stall", "down", 0, connection=1))  # the first greeting never comes
        s = make_setup(imap_account, tmp_path, port=proxy.port, timeout=1.5)
        report = s.with_account(retries=1, retry_delay=0.01).sync()
        assert not report.failed, report.failures()
        assert len(proxy.fired) == 1
        # the stalled attempt, the TLS probe it made, then the retry's (the store's own
        # connection, which then goes to the mailbox)
        assert proxy.connections == 3
