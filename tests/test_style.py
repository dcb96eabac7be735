"""The helpers package and the tests are ruff-clean (ruff is pinned in requirements.txt)."""

from __future__ import annotations

import subprocess
import sys

from helpers.paths import REPO


def test_ruff_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "helpers", "tests"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
