"""Exercises, the student edition and the grader (submissions run in their own process)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import grader, homework, records
from helpers.errors import WorkbookError
from helpers.notebooks import notebook_list
from helpers.paths import NOTEBOOKS, REPO

SOURCE = NOTEBOOKS / "03_bn_folding.ipynb"


def test_markers_are_replaced_keeping_indentation():
    code = "x = 1\n    ### BEGIN SOLUTION\n    y = 2\n    ### END SOLUTION\nz = 3\n"
    assert homework.strip_solutions(code) == "x = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\nz = 3\n"
    assert (
        homework.strip_solutions("### BEGIN SOLUTION\nIt folds.\n### END SOLUTION", markdown=True)
        == "YOUR ANSWER HERE\n"
    )
    hidden = "check('a', True, 1)\n### BEGIN HIDDEN TESTS\ncheck('b', True, 2)\n### END HIDDEN TESTS\n"
    assert homework.strip_hidden_tests(hidden) == "check('a', True, 1)\n"


def test_checks_are_found_in_the_code_with_their_points():
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "source": "homework.check('a', x > 1, 2)\ncheck(name='b', condition=True)\nzoo.check('c')",
            }
        ]
    }
    assert homework.checks_in(nb) == {"a": 2, "b": 1}


def test_check_records_and_raises_only_in_strict_mode(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda bundle, **kwargs: shown.append(bundle))
    monkeypatch.setenv(homework.STRICT_ENV, "0")
    assert homework.check("x", False, 3) is False
    assert shown[-1][records.MIME]["value"] == {"passed": False, "points": 3}
    monkeypatch.setenv(homework.STRICT_ENV, "1")
    with pytest.raises(AssertionError, match="check 'x' failed"):
        homework.check("x", False, 3)


def test_a_failed_check_says_what_it_expected_and_got(monkeypatch, capsys):
    monkeypatch.setattr("IPython.display.display", lambda bundle, **kwargs: None)
    monkeypatch.setenv(homework.STRICT_ENV, "0")
    homework.check("top_k_ties", False, 2, "ties count against the model", expected=[1 / 3, 2 / 3], got=[0.5, 2 / 3])
    homework.check("softmax", False, 1, expected=np.full(1000, 0.001), got=np.zeros(1000))
    homework.check("fine", True, 1, expected=1, got=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "FAIL top_k_ties (2 points): ties count against the model, expected [0.333333 0.666667], got [0.5 0.666667]"
    )
    assert (
        lines[1]
        == "FAIL softmax (1 point): expected [0.001 0.001 0.001 ... 0.001 0.001 0.001], got [0. 0. 0. ... 0. 0. 0.]"
    )
    assert lines[2] == "PASS fine (1 point)"


def solution_lines(nb) -> list[str]:
    """Lines of the solutions that the notebook does not also show elsewhere (a generic line such as
    `return keras.Sequential([` in a given model is no leak)."""
    lines, given = [], set()
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        given.update(s.strip() for s in homework._SOLUTION.sub("", text).splitlines())
        if homework.EXERCISE_TAG in cell["metadata"].get("tags", []):
            for region in homework._SOLUTION.finditer(text):
                lines += [s.strip() for s in region.group(0).splitlines()[1:-1] if s.strip()]
    return [line for line in lines if line not in given]


def student(source=SOURCE) -> dict:
    nb = json.loads(source.read_text())
    return homework.student_edition(nb, source.name, homework.fingerprint(source))


def test_student_edition_hides_every_solution_and_hidden_test():
    total = 0
    for source in notebook_list():
        instructor = json.loads(source.read_text())
        edition = student(source)
        shown = {line.strip() for cell in edition["cells"] for line in "".join(cell["source"]).splitlines()}
        for line in solution_lines(instructor):
            assert line not in shown, (source.name, line)
            total += 1
        text = json.dumps(edition)
        assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
        assert edition["metadata"]["mobilenet_workbook"]["source"] == source.name
    assert total >= 20  # seven notebooks have exercises: the check above looked at real solution lines


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    instructor = json.loads(SOURCE.read_text())
    blank = student()
    edited = student()  # check cells rewritten to pass: the grader must ignore them
    for cell in edited["cells"]:
        if "homework.check(" in "".join(cell["source"]) and homework.EXERCISE_TAG not in cell["metadata"].get(
            "tags", []
        ):
            cell["source"] = "from helpers import homework\nhomework.check('fold_multiplier', True, 1)\n"
    pasted = student()
    solved = homework.exercise_cells(instructor)
    for cell in pasted["cells"]:
        if cell.get("id") in solved:
            cell["source"] = solved[cell["id"]]["source"]
    instructor["metadata"]["mobilenet_workbook"] = blank["metadata"]["mobilenet_workbook"]
    cheat = student()  # blank answer, but its own check(...) calls in the exercise cell
    for cell in cheat["cells"]:
        if homework.EXERCISE_TAG in cell["metadata"].get("tags", []):
            cell["source"] = (
                "from helpers import homework\n"
                + "".join(
                    f"homework.check({name!r}, True, 100)\n" for name in ("fold_multiplier", "fold_kernel", "fold_bias")
                )
                + "raise NotImplementedError()\n"
            )
    missing = student()
    missing["cells"] = [c for c in missing["cells"] if homework.EXERCISE_TAG not in c["metadata"].get("tags", [])]
    paths = {}
    for name, nb in {
        "instructor": instructor,
        "blank": blank,
        "edited": edited,
        "pasted": pasted,
        "cheat": cheat,
        "missing": missing,
    }.items():
        paths[name] = folder / f"{name}.ipynb"
        paths[name].write_text(json.dumps(nb))
    return paths


def test_grading(submissions, pack, tmp_path):
    results = {name: grader.grade(path, timeout=300) for name, path in submissions.items() if name != "missing"}
    full = results["instructor"]["max_score"]
    assert full == 5  # fold_multiplier 1 + fold_kernel 2 + fold_bias 1 (hidden) + fold_on_photos 1
    assert results["instructor"]["score"] == full and results["pasted"]["score"] == full
    assert results["blank"]["score"] == 0 and results["edited"]["score"] == 0
    assert results["cheat"]["score"] == 0 and results["cheat"]["max_score"] == full  # its own checks count for nothing
    assert all(not c["passed"] and c["error"] for c in results["blank"]["checks"])


def test_grade_cli_json_reports_and_bad_files(submissions, pack, tmp_path):
    command = [sys.executable, "-m", "helpers", "grade", str(submissions["missing"]), str(submissions["pasted"])]
    result = subprocess.run(
        [*command, "--json", "--jobs", "2", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    missing, pasted = (json.loads(line) for line in result.stdout.splitlines())  # JSON lines, one per submission
    assert set(pasted) == {
        "submission",
        "student",
        "notebook",
        "score",
        "max_score",
        "checks",
        "written",
        "warnings",
    } | {"written_score", "written_max", "written_marked", "total", "max_total"}
    assert pasted["score"] == 5 and missing["score"] == 0
    assert any("missing from the submission" in w for w in missing["warnings"])
    assert (tmp_path / "out" / "grades.csv").read_text().count("\n") == 3 and (
        tmp_path / "out" / "pasted.html"
    ).is_file()

    (tmp_path / "other.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    (tmp_path / "text.ipynb").write_text("not json")
    for bad, words in (("other.ipynb", "not a notebook of this workbook"), ("text.ipynb", "is not a Jupyter notebook")):
        result = subprocess.run(
            [sys.executable, "-m", "helpers", "grade", str(tmp_path / bad)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and words in result.stderr


def test_read_submission_refuses_paths_outside_the_workbook(tmp_path):
    nb = {"cells": [], "metadata": {"mobilenet_workbook": {"source": "../Makefile"}}}
    (tmp_path / "sneaky.ipynb").write_text(json.dumps(nb))
    with pytest.raises(WorkbookError, match="not a notebook of this workbook"):
        grader.read_submission(tmp_path / "sneaky.ipynb")


def test_the_notebooks_carry_nbgrader_v3_metadata_as_the_script_writes_it():
    # After any notebook edit (or a merge): python -m helpers.homework nbgrader-metadata, then commit.
    from helpers import judge

    for source in notebook_list():
        nb = json.loads(source.read_text())
        assert homework.nbgrader_metadata(nb) == nb, f"{source.name}: run python -m helpers.homework nbgrader-metadata"
        assert homework.nbgrader_problems(nb) == [], source.name
        entries = [c["metadata"]["nbgrader"] for c in nb["cells"] if "nbgrader" in c["metadata"]]
        tests = sum(e["points"] for e in entries if e["grade"] and not e["solution"])
        assert tests == sum(judge.checks_of(source.name).values()), source.name  # nbgrader's points are the checks'
        written = [w["max_points"] for w in homework.written_answers(nb, homework.student_edition(nb, source.name, ""))]
        assert written == [e["points"] for e in entries if e["grade"] and e["solution"]], source.name


def test_nbgrader_rules_are_checked():
    nb = homework.nbgrader_metadata(json.loads(SOURCE.read_text()))
    graded = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    graded[0]["metadata"]["nbgrader"]["points"] = 0
    graded[1]["metadata"]["nbgrader"]["grade_id"] = graded[0]["metadata"]["nbgrader"]["grade_id"]
    problems = homework.nbgrader_problems(nb)
    first = graded[0]["metadata"]["nbgrader"]["grade_id"]
    assert problems == [f"{first}: a graded cell without points", f"grade_id {first!r} is missing or not unique"]
