"""structlog loaded without the parts mailtide never uses (mailtide/structlog_load.py): they
are not loaded by a start, and they still work for whoever uses them."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import json, sys
import mailtide
loaded = {name: name in sys.modules for name in ("rich", "uuid", "platform")}
import structlog
context = structlog.threadlocal.wrap_dict(dict)({"a": 1})  # the deprecated module still works
import rich
print(json.dumps({"loaded": loaded, "context": dict(context._dict), "rich": rich.__name__}))
"""


def test_a_start_loads_neither_rich_nor_uuid_and_both_work_afterwards() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", PROGRAM],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["loaded"] == {"rich": False, "uuid": False, "platform": False}
    assert result["context"] == {"a": 1}
    assert result["rich"] == "rich"
