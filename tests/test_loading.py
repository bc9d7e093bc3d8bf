"""Loading without the cyclic garbage collector (mailtide/loading.py): the collector is off while
the package or a command's modules load, on again for the work, and a library user finds it as
it left it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dovecot import ImapAccount
from engine_helpers import one_message_account

# The modules loaded with the collector on while ``mailtide`` loads, but for those before the
# pause (the package, the module that pauses and what it imports), and whether the collector
# is on afterwards; argv[1]: whether the host turned the collector off itself first.
IMPORT = """
import gc, json, sys
if sys.argv[1] == "off":
    gc.disable()
collected = []
def loaded(event, args):
    if event == "import" and gc.isenabled():
        collected.append(args[0])
sys.addaudithook(loaded)
import mailtide
before_the_pause = {"mailtide", "mailtide.loading", "__future__"}
print(json.dumps({"collected": sorted(set(collected) - before_the_pause),
                  "enabled": gc.isenabled()}))
"""

# The command line as the console script runs it: the modules it loads with the collector on
# before its event loop, and whether the collector is on in the loop, printed at exit.
COMMAND = """
import asyncio, atexit, gc, json, sys
from mailtide.entry import run
collected, seen = [], {}
def loaded(event, args):
    if event == "import" and gc.isenabled() and "enabled" not in seen:
        collected.append(args[0])
sys.addaudithook(loaded)
real_run = asyncio.run
def run_loop(main, **kw):
    seen.update(collected=sorted(set(collected)), enabled=gc.isenabled())
    return real_run(main, **kw)
asyncio.run = run_loop
atexit.register(lambda: print(json.dumps(seen)))
sys.argv = ["mailtide", "sync", "-c", sys.argv[1]]
run()
"""


def _python(program: str, *args: str) -> tuple[int, dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=120
    )
    assert done.stdout, done.stderr[-2000:]
    return done.returncode, json.loads(done.stdout.splitlines()[-1]), done.stderr


def test_the_package_loads_without_the_collector_and_leaves_it_on() -> None:
    code, seen, stderr = _python(IMPORT, "on")
    assert code == 0, stderr[-2000:]
    assert seen == {"collected": [], "enabled": True}


def test_a_host_that_turned_the_collector_off_finds_it_off() -> None:
    code, seen, stderr = _python(IMPORT, "off")
    assert code == 0, stderr[-2000:]
    assert seen == {"collected": [], "enabled": False}


def test_a_sync_loads_its_modules_without_the_collector_and_syncs_with_it_on(
    imap_account: ImapAccount, tmp_path: Path
) -> None:
    setup, config = one_message_account(imap_account, tmp_path, "loading")
    code, seen, stderr = _python(COMMAND, str(config))
    assert code == 0, stderr[-2000:]
    assert seen == {"collected": [], "enabled": True}
    assert len(list((setup.root / "INBOX").glob("*/*"))) == 1
