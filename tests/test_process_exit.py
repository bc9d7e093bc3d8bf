"""The command line's exit without the interpreter's teardown (mailtide/process_exit.py): the
exit code, every byte of the output, the exit functions, and a thread still running all
survive it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = """
import atexit, sys, threading, time
from pathlib import Path
from mailtide.process_exit import exit_now
out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
if sys.argv[2] == "thread":
    def late():
        time.sleep(0.3)
        (out / "thread").write_text("finished")
    threading.Thread(target=late).start()
sys.stdout.write("o" * 300_000)  # more than a pipe holds: written as the reader takes it
sys.stderr.write("e" * 100_000)
exit_now(int(sys.argv[3]))
"""


@pytest.mark.parametrize("code", [0, 3, 70])
@pytest.mark.parametrize("thread", ["none", "thread"])
def test_exit_keeps_the_code_the_output_and_the_exit_functions(
    tmp_path: Path, code: int, thread: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path), thread, str(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == code
    assert done.stdout == "o" * 300_000
    assert done.stderr == "e" * 100_000
    assert (tmp_path / "atexit").read_text() == "ran"
    if thread == "thread":  # a thread still running is waited for, as a normal exit does
        assert (tmp_path / "thread").read_text() == "finished"


def test_a_profiled_run_returns_so_the_profiler_writes_its_results(tmp_path: Path) -> None:
    """``python -m cProfile -o FILE`` writes FILE after the program returns (bench/profile.py)."""
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    stats = tmp_path / "run.pstats"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(stats),
            str(script),
            str(tmp_path),
            "none",
            "0",
        ],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert (tmp_path / "atexit").read_text() == "ran"
    assert stats.stat().st_size > 0
