"""The daemon after a resume from suspend: every connection it held went silent (the relay
forwards nothing and closes nothing), as a real suspend leaves them.  The mail that came
meanwhile arrives at once, not after a LOGOUT wait per dead connection, and push works
again at once, not after the dead push connection's keepalive and command timeout."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import imap_helpers as srv
from daemon_helpers import Daemon, eventually, local_ids, settled
from engine_helpers import Setup, write_config
from fault_proxy import FaultProxy


def asleep_and_resumed(
    s: Setup, proxy: FaultProxy, daemons: Callable[..., Daemon], tmp_path: Path
) -> Daemon:
    """A daemon that synced, held its connections and pushed; then every connection goes
    silent, a message (7) comes that no push reports, and the clock jumps an hour."""
    slept = tmp_path / "slept"
    d = daemons(write_config(s), {"MAILTIDE_TEST_SLEPT_FILE": str(slept)})
    eventually(lambda: "event=imap.push" in d.output, 20, "push running", d)
    eventually(lambda: "event=account.done" in d.output, 20, "first sync", d)
    settled(d)
    proxy.stall_open()
    srv.append(replace(s.imap, port=proxy.target[1]), "INBOX", srv.make_message(7, "INBOX"), [])
    slept.write_text("3600\n")
    eventually(lambda: "event=daemon.resumed" in d.output, 15, "the resume seen", d)
    return d


def test_mail_that_came_during_a_suspend_arrives_at_once(
    proxied: tuple[Setup, FaultProxy], daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    s, proxy = proxied
    d = asleep_and_resumed(s, proxy, daemons, tmp_path)
    # 5 s for LOGOUT on each dead held connection, one after another, took 10 s and more
    eventually(lambda: srv.message_id(7, "INBOX") in local_ids(s), 4, "the catch-up", d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_push_works_at_once_after_a_suspend(
    proxied: tuple[Setup, FaultProxy], daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    s, proxy = proxied
    d = asleep_and_resumed(s, proxy, daemons, tmp_path)
    eventually(lambda: srv.message_id(7, "INBOX") in local_ids(s), 15, "the catch-up", d)
    settled(d)
    srv.append(replace(s.imap, port=proxy.target[1]), "INBOX", srv.make_message(8, "INBOX"), [])
    # the dead push connection was noticed only after its keepalive and timeout: ~100 s
    eventually(lambda: srv.message_id(8, "INBOX") in local_ids(s), 5, "push after resume", d)
    d.signal(signal.SIGTERM)
    assert d.wait_exit(10)[0] == 0


def test_a_stop_right_after_a_resume_exits_at_once(
    proxied: tuple[Setup, FaultProxy], daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    """The push connection given up at the resume is still ending when SIGTERM comes: it is
    not logged out (no answer would come), so the daemon exits at once, not 5 s later."""
    s, proxy = proxied
    d = asleep_and_resumed(s, proxy, daemons, tmp_path)
    time.sleep(0.3)  # within the 2 s the cancelled IDLE waits for the answer to DONE
    d.signal(signal.SIGTERM)
    code, took = d.wait_exit(10)
    assert code == 0, d.output[-3000:]
    assert took < 2.5, (took, d.output[-3000:])
