"""The layering contract of pyproject.toml ([tool.importlinter]), which `make lint` runs.

Each case copies the source tree, adds one import the design forbids, and runs lint-imports
on the copy: the named contract must break. The real tree must keep every contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the source tree and its pyproject.toml."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "src" / "mailtide",
        tmp_path / "src" / "mailtide",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


def test_the_tree_keeps_every_contract(project: Path) -> None:
    result = lint_imports(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden", "contract"),
    [
        ("core/names.py", "mailtide.ui.log", "core imports nothing of mailtide outside core"),
        ("stores/base.py", "mailtide.state.db", "The house"),  # stores and state: independent
        ("state/db.py", "mailtide.config.model", "stores and state import core only"),
        ("engine/pair.py", "mailtide.config.model", "engine imports stores, state and core only"),
        ("engine/pair.py", "mailtide.daemon.clock", "nothing below the daemon imports it"),
        ("daemon/triggers.py", "mailtide.config", "daemon imports engine and below"),
        ("daemon/clock.py", "mailtide.engine.steps", "the daemon's leaves import nothing"),
        ("config/load.py", "mailtide.cli", "cli is the top"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    project: Path, module: str, forbidden: str, contract: str
) -> None:
    with open(project / "src" / "mailtide" / module, "a") as source:
        source.write(f"\nimport {forbidden}  # noqa\n")
    result = lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout


def test_an_exception_without_its_import_fails_the_lint(project: Path) -> None:
    """An ignored import that does not exist (any more) is an error, so the debt list stays
    true: the exception must go with its import."""
    with open(project / "pyproject.toml", "a") as pyproject:  # into the last contract
        pyproject.write('ignore_imports = ["mailtide.core.names -> mailtide.cli"]\n')
    result = lint_imports(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "mailtide.core.names -> mailtide.cli" in result.stdout + result.stderr
