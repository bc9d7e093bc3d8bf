"""The dataclass methods kept compiled (mailtide/compiled_methods.py): classes built from the
kept code behave exactly as classes built by compiling, a second start compiles nothing, and a
file that cannot be trusted or read is ignored, never a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mailtide.compiled_methods as compiled_methods

MODULE = Path(compiled_methods.__file__)

# Each run is a fresh interpreter: the hook is installed once per process.  The module is
# loaded on its own (the mailtide package would install it for itself first), then a few value
# classes of the kinds mailtide has are built and described.
PROGRAM = """
import dataclasses, importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("cm", sys.argv[1])
cm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cm)
cm.install(Path(sys.argv[2]))

@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    uid: int
    flags: frozenset[str] = frozenset()
    secret: str = dataclasses.field(default="", repr=False)
    labels: tuple[str, ...] = dataclasses.field(default_factory=tuple)

@dataclasses.dataclass(order=True)
class Counter:
    n: int = 0

a, b = Message(7, frozenset({"\\\\Seen"}), "pw"), Message(7, frozenset({"\\\\Seen"}), "pw")
try:
    a.uid = 8
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
c = Counter()
c.n += 2
print(json.dumps({
    "repr": repr(a), "eq": a == b, "hash": hash(a) == hash(b), "frozen": frozen,
    "slots": not hasattr(a, "__dict__"), "default": Message(1).labels == (),
    "annotations": sorted(map(str, Message.__init__.__annotations__.items())),
    "order": Counter(1) < Counter(2), "counter": repr(c),
    "compiled": cm.compiled(),
}))
"""


def run(package: Path, **env: str) -> dict[str, object]:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(MODULE), str(package)],
        env={**environment, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def described(result: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in result.items() if k != "compiled"}


def test_classes_built_from_the_kept_code_are_the_classes_compiling_builds(
    tmp_path: Path,
) -> None:
    first = run(tmp_path)
    assert first["compiled"] and isinstance(first["compiled"], int)
    kept = compiled_methods.cache_file(tmp_path)
    assert kept.exists()
    second = run(tmp_path)
    assert second["compiled"] == 0  # every method read back, none compiled
    assert described(second) == described(first)
    assert first["repr"] == "Message(uid=7, flags=frozenset({'\\\\Seen'}), labels=())"
    assert first["eq"] and first["hash"] and first["frozen"] and first["slots"]
    assert first["order"] and first["counter"] == "Counter(n=2)"


def test_a_damaged_or_foreign_file_is_compiled_around_and_written_again(tmp_path: Path) -> None:
    reference = described(run(tmp_path / "reference"))
    kept = compiled_methods.cache_file(tmp_path)
    kept.parent.mkdir(parents=True)
    for content in (b"", b"garbage", b"\x00" * 40, b"\x42\x0d\x0d\x0a" + b"\xff" * 100):
        kept.write_bytes(content)
        result = run(tmp_path)
        assert result["compiled"], content
        assert described(result) == reference
        assert kept.read_bytes() != content  # written again, good this time
    assert run(tmp_path)["compiled"] == 0


def test_a_file_others_may_write_is_not_read(tmp_path: Path) -> None:
    run(tmp_path)
    kept = compiled_methods.cache_file(tmp_path)
    kept.chmod(0o666)
    assert run(tmp_path)["compiled"]  # a file anyone could have replaced: compiled again
    kept.chmod(0o644)
    assert run(tmp_path)["compiled"] == 0


def test_nothing_is_written_where_python_writes_no_bytecode(tmp_path: Path) -> None:
    run(tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert not compiled_methods.cache_file(tmp_path).exists()


def test_a_read_only_package_still_builds_its_classes(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        result = run(tmp_path)
    finally:
        tmp_path.chmod(0o755)
    assert result["eq"] and result["frozen"]
    if os.geteuid() != 0:  # root writes anyway
        assert not compiled_methods.cache_file(tmp_path).exists()
