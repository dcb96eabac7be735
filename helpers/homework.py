"""Exercises: graded checks, and the student and grading editions of a notebook (nbgrader's markers,
no nbgrader dependency).

The committed notebooks are the *instructor edition*:

* a cell tagged ``exercise`` holds the student's part: code between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (a markdown answer between the same markers);
* a check cell calls :func:`check` with a literal name and points; lines between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are checks the student does not see.

:func:`student_edition` replaces every solution by ``# YOUR CODE HERE`` / ``raise
NotImplementedError()`` (markdown: ``YOUR ANSWER HERE``), drops hidden tests and outputs, and
stamps the notebook's metadata with its source. :func:`grading_copy` takes the instructor notebook,
strips its solutions and its hidden tests, and puts in a submission's ``exercise`` cells by cell
id: every other cell comes from the instructor's copy, so editing a check cell changes nothing.
Checks in a grading copy only give the student feedback; :mod:`helpers.judge` decides the grade.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import os
import re
from pathlib import Path

from .errors import WorkbookError
from .records import record

STRICT_ENV = "WORKBOOK_STRICT"  # set (to 1) by the tests: a failing check raises, so the notebook fails
EXERCISE_TAG = "exercise"
STAMP = "mobilenet_workbook"
CHECK_PREFIX = "check:"
_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)", re.S | re.M)
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|$)", re.S | re.M)


def check(name: str, condition: bool, points: int = 1, hint: str = "") -> bool:
    """Record one graded check and show whether it passed; in strict mode a failed check raises."""
    passed = bool(condition)
    record(f"{CHECK_PREFIX}{name}", {"passed": passed, "points": points})
    print(
        f"{'PASS' if passed else 'FAIL'} {name} ({points} point{'s' if points != 1 else ''})"
        + (f": {hint}" if hint and not passed else "")
    )
    if not passed and os.environ.get(STRICT_ENV, "") not in ("", "0"):
        raise AssertionError(f"check {name!r} failed" + (f": {hint}" if hint else ""))
    return passed


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def strip_solutions(source: str, markdown: bool = False) -> str:
    """Replace each solution region by the student's placeholder, keeping its indentation."""

    def placeholder(match: re.Match) -> str:
        indent = match.group(1)
        if markdown:
            return f"{indent}YOUR ANSWER HERE\n"
        return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()\n"

    return _SOLUTION.sub(placeholder, source)


def strip_hidden_tests(source: str) -> str:
    """Remove every hidden-tests region."""
    return _HIDDEN.sub("", source)


def checks_in(nb) -> dict[str, int]:
    """``name -> points`` of every ``check(...)`` call of a notebook (instructor edition: hidden
    checks included), read from the code without running it."""
    found: dict[str, int] = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(_source(cell))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_check(node.func):
                args = dict(zip(("name", "condition", "points"), node.args, strict=False))
                args.update({k.arg: k.value for k in node.keywords if k.arg})
                if not isinstance(args.get("name"), ast.Constant):
                    raise WorkbookError(f"a check(...) call has no literal name: {ast.unparse(node)[:80]}")
                points = args.get("points")
                found[args["name"].value] = points.value if isinstance(points, ast.Constant) else 1
    return found


def _is_check(func) -> bool:
    """``check(...)`` or ``homework.check(...)``."""
    if isinstance(func, ast.Name):
        return func.id == "check"
    return isinstance(func, ast.Attribute) and func.attr == "check" and getattr(func.value, "id", "") == "homework"


def fingerprint(path: str | Path) -> str:
    """sha256 of a notebook file (stamped into the editions made from it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def student_edition(nb, source_name: str, source_sha256: str):
    """A copy of an instructor notebook for students (see the module docstring)."""
    out = copy.deepcopy(nb)
    for cell in out["cells"]:
        text = strip_hidden_tests(_source(cell))
        if EXERCISE_TAG in _tags(cell):
            text = strip_solutions(text, markdown=cell["cell_type"] == "markdown")
        cell["source"] = text
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    out["metadata"][STAMP] = {"source": source_name, "sha256": source_sha256, "edition": "student"}
    return out


def exercise_cells(nb) -> dict[str, dict]:
    """``cell id -> cell`` of the cells tagged ``exercise``."""
    return {cell["id"]: cell for cell in nb["cells"] if EXERCISE_TAG in _tags(cell) and cell.get("id")}


def grading_copy(instructor, submission) -> tuple[dict, list[str]]:
    """The instructor notebook with its solutions and hidden tests stripped and the submission's
    exercise cells put in by id; returns it with warnings (exercise cells missing)."""
    out = copy.deepcopy(instructor)
    theirs = exercise_cells(submission)
    warnings = []
    for cell in out["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        if EXERCISE_TAG not in _tags(cell):
            cell["source"] = strip_hidden_tests(_source(cell))
            continue
        if cell.get("id") in theirs:
            cell["source"] = _source(theirs[cell["id"]])
        else:
            cell["source"] = strip_solutions(_source(cell), markdown=cell["cell_type"] == "markdown")
            warnings.append(f"exercise cell {cell.get('id')} is missing from the submission (graded as not answered)")
    return out, warnings
