"""Exercises: graded checks, and the student and grading editions of a notebook (nbgrader's markers,
no nbgrader dependency).

The committed notebooks are the *instructor edition*:

* a cell tagged ``exercise`` holds the student's part: code between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (a markdown answer between the same markers);
* a check cell calls :func:`check` with a literal name and points; lines between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are checks the student does not see.

:func:`student_edition` replaces every solution by ``# YOUR CODE HERE`` / ``raise
NotImplementedError()`` (markdown: ``YOUR ANSWER HERE``), drops hidden tests and outputs, and
stamps the notebook's metadata with its source. :func:`grading_copy` follows nbgrader's model: the
submission is the base (cells the student added stay where they are), every instructor cell is
restored from the instructor notebook by id (hidden tests stripped), or put back where it was
deleted, and the ``exercise`` cells hold the student's code (found by id, or by tag and position):
editing a check cell changes nothing. Checks in a grading copy only give the student feedback;
:mod:`helpers.judge` decides the grade. :func:`written_answers` reads the written answers (markdown
``exercise`` cells, marked by a person); :func:`nbgrader_metadata` gives the notebooks nbgrader's v3
cell metadata.
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


_UNSET = object()


def check(
    name: str, condition: bool, points: int = 1, hint: str = "", *, expected: object = _UNSET, got: object = _UNSET
) -> bool:
    """Record one graded check and show whether it passed; on failure it prints ``hint`` and, when
    given, what was ``expected`` and what it ``got`` (arrays shortened). In strict mode a failed
    check raises with the same words."""
    import numpy as np

    passed = bool(condition)
    record(f"{CHECK_PREFIX}{name}", {"passed": passed, "points": points})
    words = [hint] if hint else []
    for label, value in (("expected", expected), ("got", got)):
        if value is not _UNSET:
            shown = (
                np.array2string(np.asarray(value), precision=6, threshold=10, edgeitems=3)
                if np.ndim(value)
                else repr(value)
            )
            words.append(f"{label} {' '.join(shown.split())}")
    why = ", ".join(words)
    print(
        f"{'PASS' if passed else 'FAIL'} {name} ({points} point{'s' if points != 1 else ''})"
        + (f": {why}" if why and not passed else "")
    )
    if not passed and os.environ.get(STRICT_ENV, "") not in ("", "0"):
        raise AssertionError(f"check {name!r} failed" + (f": {why}" if why else ""))
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


# tags a cell the student added never keeps in the grading copy: the grader's extract cells, and
# papermill's (a copied parameters cell above the instructor's would have fast mode injected after
# it, then switched off again by the instructor's: a full run, past the time limit)
GRADER_TAGS = ("extract", "parameters", "injected-parameters")
ORIGIN = "origin"  # grading copy: the cell's metadata[STAMP][ORIGIN] is "student" for the student's code


def match_cells(instructor, submission) -> tuple[list[tuple[str | None, dict]], list[str]]:
    """The submission's cells in its order, each with the id of the instructor cell it is (None for
    a cell the student added), and warnings. A cell is the instructor's by id; an ``exercise`` cell
    whose id changed (cut and paste) is the first unmatched exercise cell of its type after the
    instructor cell above it, those that lie between the instructor cells around them matched first
    (so a tagged copy of one exercise kept below it never takes the place of the next, moved one);
    a second cell with an id already seen is one the student added."""
    ours = {cell.get("id"): cell for cell in instructor["cells"]}
    order = [cell.get("id") for cell in instructor["cells"]]
    warnings, seen, pairs = [], set(), []
    for number, cell in enumerate(submission["cells"], 1):
        cell_id = cell.get("id") if isinstance(cell.get("id"), str) else None
        if cell_id in seen:
            warnings.append(f"cell id {cell_id} appears twice: cell {number} is graded as a cell you added")
            cell_id = None
        seen.add(cell_id)
        pairs.append((cell_id if cell_id in ours else None, cell))
    placed = {cell_id for cell_id, _ in pairs if cell_id}
    by_id = [order.index(cell_id) if cell_id else None for cell_id, _ in pairs]
    found: dict[int, str] = {}
    for bounded in (True, False):  # first the cells that sit between the instructor cells around theirs
        above = -1  # index in the instructor notebook of the last instructor cell so far
        for k, (_, cell) in enumerate(pairs):
            if by_id[k] is not None or k in found:
                above = by_id[k] if by_id[k] is not None else order.index(found[k])
                continue
            if EXERCISE_TAG not in _tags(cell):
                continue
            below = next((i for i in by_id[k + 1 :] if i is not None), len(order)) if bounded else len(order)
            candidates = [
                i
                for i in order[above + 1 : max(below, above + 1)]
                if i not in placed and EXERCISE_TAG in _tags(ours[i]) and ours[i]["cell_type"] == cell["cell_type"]
            ]
            if candidates:
                found[k] = candidates[0]
                placed.add(candidates[0])
                above = order.index(candidates[0])
    for k, cell_id in sorted(found.items()):
        pairs[k] = (cell_id, pairs[k][1])
        where = f"its id is {pairs[k][1].get('id')!r} in the submission"
        warnings.append(f"exercise cell {cell_id} found by its tag and position ({where})")
    return pairs, warnings


def _student_text(cell) -> str:
    """An instructor cell as the student edition shows it."""
    text = strip_hidden_tests(_source(cell))
    return strip_solutions(text, markdown=cell["cell_type"] == "markdown") if EXERCISE_TAG in _tags(cell) else text


def grading_copy(instructor, submission) -> tuple[dict, list[str]]:
    """nbgrader's model of a submission: the student's notebook is the base, so every cell the
    student added or edited stays in its place (an added cell's code runs, as in their kernel);
    every instructor cell (setup, parameters, checks, every code cell not tagged ``exercise``) is
    the instructor's, hidden tests stripped, and is put back where the student deleted it; the
    ``exercise`` cells hold the student's code (:func:`match_cells` finds them). Returns the copy
    and one warning per restored, re-inserted or re-identified cell."""
    ours = {cell.get("id"): cell for cell in instructor["cells"]}
    pairs, warnings = match_cells(instructor, submission)
    taken = set(ours)
    cells = []
    for number, (cell_id, theirs) in enumerate(pairs, 1):
        if cell_id is None:  # added by the student: kept, under an id no instructor cell has
            cell = copy.deepcopy(theirs)
            new_id, suffix = cell.get("id") if isinstance(cell.get("id"), str) else "", 0
            while not new_id or new_id in taken:
                new_id, suffix = f"added-{number}" + (f"-{suffix}" if suffix else ""), suffix + 1
            cell["id"] = new_id
            cell["source"] = _source(theirs)
            metadata = cell.setdefault("metadata", {})
            metadata["tags"] = [t for t in _tags(cell) if t not in GRADER_TAGS]
            metadata[STAMP] = {ORIGIN: "student"}
            taken.add(new_id)
        elif EXERCISE_TAG in _tags(ours[cell_id]):
            cell = copy.deepcopy(ours[cell_id])
            cell["source"] = _source(theirs)
            cell["metadata"][STAMP] = {ORIGIN: "student"}
        else:
            cell = copy.deepcopy(ours[cell_id])
            cell["source"] = strip_hidden_tests(_source(cell))
            if _source(theirs) != _student_text(ours[cell_id]):
                warnings.append(f"cell {cell_id} was edited: the instructor's version was graded")
        cells.append(cell)
    present = {cell.get("id") for cell in cells}
    for index, ours_cell in enumerate(instructor["cells"]):
        if ours_cell.get("id") in present:
            continue
        cell = copy.deepcopy(ours_cell)
        if EXERCISE_TAG in _tags(cell):
            cell["source"] = strip_solutions(_source(cell), markdown=cell["cell_type"] == "markdown")
            warnings.append(f"exercise cell {cell.get('id')} is missing from the submission (graded as not answered)")
        else:
            cell["source"] = strip_hidden_tests(_source(cell))
            warnings.append(f"cell {cell.get('id')} was deleted: the instructor's version was put back")
        before = [c.get("id") for c in instructor["cells"][:index]]
        ids = [c.get("id") for c in cells]
        at = max((ids.index(b) + 1 for b in before if b in ids), default=0)
        cells.insert(at, cell)
        present.add(cell.get("id"))
    for cell in cells:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    out = copy.deepcopy({k: v for k, v in instructor.items() if k != "cells"})
    out["cells"] = cells
    return out, warnings


def student_sources(nb) -> dict[str, str]:
    """``cell id -> code`` of a grading copy's cells that came from the student (exercise cells and
    added ones)."""
    return {
        cell["id"]: _source(cell)
        for cell in nb["cells"]
        if cell["cell_type"] == "code" and cell.get("metadata", {}).get(STAMP, {}).get(ORIGIN) == "student"
    }


WRITTEN_POINTS = 2  # points of a written answer whose cell has no nbgrader points (nbgrader_metadata writes them)
_PLACEHOLDER = "YOUR ANSWER HERE"


def solution_text(cell) -> str:
    """The model answer of an instructor cell: the text between its solution markers."""
    found = re.findall(r"### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", _source(cell), re.S | re.M)
    return "".join(found).strip()


def question_of(nb, index: int) -> str:
    """The question a written-answer cell answers: the markdown cell above it (its last paragraph
    when that is a bold question, as in "From the original homework"), headings dropped."""
    above = next((c for c in reversed(nb["cells"][:index]) if c["cell_type"] == "markdown"), None)
    text = _source(above).strip() if above else ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip() and not p.lstrip().startswith("#")]
    if paragraphs and paragraphs[-1].startswith("**"):
        return paragraphs[-1]
    return "\n\n".join(paragraphs)


def written_answers(instructor, submission) -> list[dict]:
    """One row per written question (markdown cell tagged ``exercise``) of the instructor notebook:
    ``cell_id``, ``question``, the student's ``answer`` (found as :func:`match_cells` finds cells,
    with the markdown cells the student added right below it: a split cell, an answer written under
    the placeholder),
    ``answered`` (anything besides the placeholder), ``points`` (None: a person marks it) and
    ``max_points`` (the cell's nbgrader points)."""
    pairs, _ = match_cells(instructor, submission)
    theirs: dict[str, list[str]] = {}  # the answer cell, and the markdown cells the student added below it
    last = None
    for cell_id, cell in pairs:
        if cell_id:
            last = cell_id
            theirs[cell_id] = [_source(cell).strip()]
        elif last in theirs and cell.get("cell_type") == "markdown" and _source(cell).strip():
            theirs[last].append(_source(cell).strip())  # a split cell, or an answer written below the placeholder
    rows = []
    for index, cell in enumerate(instructor["cells"]):
        if cell["cell_type"] != "markdown" or EXERCISE_TAG not in _tags(cell):
            continue
        answer = "\n\n".join(theirs.get(cell.get("id"), [])).strip()
        points = cell.get("metadata", {}).get("nbgrader", {}).get("points", WRITTEN_POINTS)
        rows.append(
            {
                "cell_id": cell["id"],
                "question": question_of(instructor, index),
                "answer": answer,
                "answered": bool(answer.replace(_PLACEHOLDER, "").strip()) and answer != _student_text(cell).strip(),
                "points": None,
                "max_points": points,
            }
        )
    return rows


NBGRADER_SCHEMA = 3
QUESTIONS_HEADING = "## Questions"
_NUMBERED = re.compile(r"^\d+\. ", re.M)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _check_points(cell) -> int:
    return sum(checks_in({"cells": [cell]}).values()) if cell["cell_type"] == "code" else 0


def nbgrader_metadata(nb) -> dict:
    """An instructor notebook with nbgrader's v3 cell metadata derived from its tags (deterministic
    and idempotent: run it again after any edit). A ``## Questions`` section without an answer cell
    gets one (markdown tagged ``exercise``, id ``<its id>a``); the answer cell of a Questions section
    is worth 1 point per numbered question unless it has points already; every
    code cell tagged ``exercise`` is an autograded answer (``solution``); a cell with
    ``homework.check`` calls is a locked test cell worth their points; a markdown ``exercise`` cell
    is a manually graded answer (``grade`` and ``solution``) worth :data:`WRITTEN_POINTS` unless it
    has points already (an instructor's choice is kept). Other cells carry no nbgrader metadata."""
    out = copy.deepcopy(nb)
    cells, ids = [], {cell.get("id") for cell in out["cells"]}
    per_question: dict[str, int] = {}  # the answer cell of a Questions section: 1 point per question
    for index, cell in enumerate(out["cells"]):
        cells.append(cell)
        following = out["cells"][index + 1] if index + 1 < len(out["cells"]) else None
        questions = cell["cell_type"] == "markdown" and _source(cell).startswith(QUESTIONS_HEADING)
        if questions and following and following["cell_type"] == "markdown" and EXERCISE_TAG in _tags(following):
            per_question[following.get("id")] = max(1, len(_NUMBERED.findall(_source(cell))))
        elif questions:
            new_id = f"{cell['id']}a" if f"{cell['id']}a" not in ids else f"{cell['id']}-answers"
            text = "### BEGIN SOLUTION\nMarked against this notebook's own measurements (no model answer yet).\n"
            points = max(1, len(_NUMBERED.findall(_source(cell))))
            cells.append(
                {
                    "cell_type": "markdown",
                    "id": new_id,
                    "metadata": {"nbgrader": {"points": points}, "tags": [EXERCISE_TAG]},
                    "source": _lines(text + "### END SOLUTION"),
                }
            )
            ids.add(new_id)
    for cell in cells:
        metadata = cell.setdefault("metadata", {})
        old = metadata.pop("nbgrader", {})
        exercise, points = EXERCISE_TAG in _tags(cell), _check_points(cell)
        if exercise and cell["cell_type"] == "markdown":
            default = per_question.get(cell.get("id"), WRITTEN_POINTS)
            entry = {"grade": True, "solution": True, "locked": False, "points": old.get("points", default)}
        elif exercise:
            entry = {"grade": False, "solution": True, "locked": False}
        elif points:
            entry = {"grade": True, "solution": False, "locked": True, "points": points}
        else:
            continue
        metadata["nbgrader"] = dict(
            sorted({**entry, "grade_id": cell["id"], "schema_version": NBGRADER_SCHEMA}.items())
        )
        cell["metadata"] = dict(sorted(metadata.items()))  # the order Jupyter saves them in
    out["cells"] = cells
    return out


def nbgrader_problems(nb) -> list[str]:
    """What breaks nbgrader's v3 rules in a notebook: ids unique, points on every graded cell, a
    graded markdown cell also a solution cell, an autograded answer not graded itself."""
    problems, seen = [], set()
    for cell in nb["cells"]:
        entry = cell.get("metadata", {}).get("nbgrader")
        if not entry:
            continue
        grade_id = entry.get("grade_id")
        if grade_id in seen or not grade_id:
            problems.append(f"grade_id {grade_id!r} is missing or not unique")
        seen.add(grade_id)
        if entry.get("schema_version") != NBGRADER_SCHEMA:
            problems.append(f"{grade_id}: schema_version is not {NBGRADER_SCHEMA}")
        if entry.get("grade") and not (isinstance(entry.get("points"), int | float) and entry["points"] > 0):
            problems.append(f"{grade_id}: a graded cell without points")
        if entry.get("grade") and cell["cell_type"] == "markdown" and not entry.get("solution"):
            problems.append(f"{grade_id}: a graded markdown cell must be a solution cell")
        if entry.get("solution") and entry.get("locked"):
            problems.append(f"{grade_id}: a solution cell cannot be locked")
    return problems


def write_nbgrader_metadata(paths: list[Path]) -> list[str]:
    """Rewrite each instructor notebook in place with :func:`nbgrader_metadata` (a developer's tool,
    run by hand: ``python -m helpers.homework nbgrader-metadata``); the paths it changed."""
    import json

    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = json.dumps(nbgrader_metadata(json.loads(text)), indent=1, ensure_ascii=False) + "\n"
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(str(path))
    return changed


if __name__ == "__main__":
    import sys

    from .paths import notebook_list

    if sys.argv[1:] != ["nbgrader-metadata"]:
        print("usage: python -m helpers.homework nbgrader-metadata", file=sys.stderr)
        sys.exit(2)
    print("\n".join(write_nbgrader_metadata(notebook_list())) or "every notebook is up to date")
