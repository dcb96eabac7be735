"""The helpers package, the tests and the notebooks are ruff-clean (ruff is pinned in requirements.txt)."""

from __future__ import annotations

import subprocess
import sys

from helpers.paths import REPO


def test_ruff_clean():
    command = [sys.executable, "-m", "ruff", "check", "helpers", "tests", "notebooks"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert "notebooks/" in subprocess.run(
        [*command[:3], "check", "--show-files", "notebooks"], cwd=REPO, capture_output=True, text=True
    ).stdout  # the notebooks are really linted
    assert result.returncode == 0, result.stdout + result.stderr
