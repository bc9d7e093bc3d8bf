#!/usr/bin/env python3
"""How long from another client's APPEND until a push source reports the mailbox.

Starts a private Dovecot (tests/dovecot.py), runs one push source (NOTIFY watching every
mailbox, IDLE on INBOX), and appends messages with a second client (imaplib), one at a time:
the time from sending the APPEND to the source's ``changed`` call, p50 / p95 / max over N
events per source.  By hand, not in CI:

    .venv/bin/python bench/push_latency.py            # N=50
    .venv/bin/python bench/push_latency.py -n 200
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import logging
import statistics
import sys
import time
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import imap_helpers as srv
from dovecot import ImapAccount, private_dovecot
from mailtide.stores.imap.push import (
    IdlePush,
    NotifyPush,
    PushSettings,
    PushSource,
    connector,
)
from push_helpers import Reports, names, running, settings_of


async def measure(
    source: PushSource, account: ImapAccount, folder: str, n: int
) -> tuple[list[float], list[float]]:
    """Seconds from each APPEND's start to the report naming ``folder``, and to the APPEND's
    tagged OK (what the server needs to store the message, for comparison)."""
    reports = Reports()
    latencies: list[float] = []
    appends: list[float] = []
    with srv.session(account) as appender:
        srv.create_folder(account, folder, appender)
        async with running(source.run(reports)):
            await asyncio.sleep(0.5)  # watching
            for i in range(n):
                reports.clear()
                message = srv.make_message(i, folder)
                started = time.monotonic()
                sent = asyncio.ensure_future(
                    asyncio.to_thread(_append, account, folder, message, appender)
                )
                reported = await reports.next(10, names(folder))
                appends.append(await sent - started)
                latencies.append(reported - started)
                await asyncio.sleep(0.05)
    return latencies, appends


def _append(account: ImapAccount, folder: str, message: bytes, session: imaplib.IMAP4) -> float:
    """APPEND on ``session``; the monotonic time of its tagged OK."""
    srv.append(account, folder, message, imap=session)
    return time.monotonic()


def summary(label: str, measured: tuple[list[float], list[float]]) -> str:
    latencies, appends = measured
    ms = sorted(x * 1000 for x in latencies)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return (
        f"{label:<14} n={len(ms):<4} p50={cuts[49]:7.1f} ms  p95={cuts[94]:7.1f} ms  "
        f"max={ms[-1]:7.1f} ms  (APPEND itself: p50 {statistics.median(appends) * 1000:.1f} ms)"
    )


async def main(n: int) -> None:
    servers = private_dovecot()
    try:
        account = next(servers).account("latency")
        connect = connector(settings_of(account))
        settings = PushSettings()
        notify = await measure(NotifyPush(connect, settings, lambda _: True), account, "Work", n)
        idle = await measure(IdlePush(connect, "INBOX", settings), account, "INBOX", n)
    finally:
        servers.close()
    print(summary("NOTIFY (Work)", notify))
    print(summary("IDLE (INBOX)", idle))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="events per source (default 50)")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(parser.parse_args().n))
