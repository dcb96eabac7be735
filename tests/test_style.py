"""The helpers package, the tests and the notebooks are ruff-clean (ruff is pinned in requirements.txt)."""

from __future__ import annotations

import ast
import json
import re
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


# A sitting (issue 21): what a student reads and runs in one notebook. Prose is counted in the student
# edition (the instructor's model answers are not read in the sitting); code in the instructor edition
# (the solutions are what a student ends up with); the first code cell is only imports and setup(), so
# it is exempt from the cell length (one helpers module per line, as ruff's import sorting writes them).
MAX_PROSE_WORDS = 1800
MAX_CODE_LINES = 300
MAX_CELL_LINES = 25


def _notebooks():
    from helpers.notebooks import notebook_list

    return [(nb, json.loads(nb.read_text())) for nb in notebook_list()]


def test_every_notebook_fits_a_sitting():
    from helpers import homework

    too_long = []
    for path, nb in _notebooks():
        student = homework.student_edition(nb, path.name, "")
        words = sum(len(c["source"].split()) for c in student["cells"] if c["cell_type"] == "markdown")
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        lines = sum(len("".join(c["source"]).splitlines()) for c in code)
        if words > MAX_PROSE_WORDS or lines > MAX_CODE_LINES:
            too_long.append(f"{path.stem}: {words} words of prose, {lines} lines of code")
        too_long += [
            f"{path.stem} {c['id']}: {n} lines"
            for c in code[1:]
            if (n := len("".join(c["source"]).splitlines())) > MAX_CELL_LINES
        ]
    assert not too_long


def test_setup_cell_holds_only_imports_and_the_setup_call():
    for path, nb in _notebooks():
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        body = ast.parse("".join(first["source"])).body
        *imports, call = body
        assert all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in imports), path.stem
        assert ast.unparse(call) == "setup()", path.stem


def test_overview_plans_the_sitting_and_optional_depth_says_so():
    from helpers import results

    for path, nb in _notebooks():
        first = "".join(nb["cells"][0]["source"])
        assert "\n## Overview\n" in first, path.stem
        assert results.plan_of(path.stem), path.stem  # "Plan about 45 minutes to work through it"
        if re.match(r"\d\d[a-z]_", path.stem):  # a deep dive: 06b, 07b, 07c
            assert "This notebook is optional" in first, path.stem
        headings = [
            line for c in nb["cells"] if c["cell_type"] == "markdown" for line in "".join(c["source"]).splitlines()
        ]
        going_further = [h for h in headings if h.startswith("#") and "going further" in h.lower()]
        assert all("(optional)" in h for h in going_further), (path.stem, going_further)
