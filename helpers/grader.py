"""Grading submissions: each in its own process, with a time limit, scored by the instructor's checks.

A submission is untrusted code. It is never imported or run here: its ``exercise`` cells go into a
grading copy of the instructor notebook (:func:`helpers.homework.grading_copy`), which a separate
Python process executes with papermill in fast mode, errors allowed, and a wall-clock limit after
which the process group (kernel included) is killed. The score is read from the checks recorded in
the executed copy by the instructor's cells; a check that never ran counts as failed, and a
``check(...)`` a student calls in an exercise cell counts for nothing. The submission still runs
Python in the same kernel as the checks, so a student who rebinds ``helpers.homework.check`` itself
could fake results (nbgrader has the same limit): review suspicious submissions, or grade hidden
tests that recompute the answer from the student's variables.
"""

from __future__ import annotations

import csv
import html
import json
import os
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import homework
from .errors import WorkbookError
from .paths import NOTEBOOKS, REPO
from .records import MIME

DEFAULT_TIMEOUT_S = 900


def read_submission(path: str | Path) -> tuple[dict, Path]:
    """The submission notebook and the instructor notebook it was made from; anything else is a
    one-line error."""
    path = Path(path)
    if not path.is_file():
        raise WorkbookError(f"submission not found: {path}")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise WorkbookError(f"{path} is not a Jupyter notebook") from None
    stamp = (nb.get("metadata") or {}).get(homework.STAMP) or {}
    source = NOTEBOOKS / str(stamp.get("source", ""))
    if not stamp.get("source") or not source.is_file() or source.parent != NOTEBOOKS or not isinstance(cells, list):
        raise WorkbookError(
            f"{path} is not a notebook of this workbook (no student-edition stamp naming one of notebooks/*.ipynb); "
            "hand in the notebook from `make student`"
        )
    return nb, source


def _checks_outside_exercises(executed: dict) -> dict:
    """Checks recorded by the instructor's cells; a record made in an exercise cell (a student's own
    ``check(...)`` call) is ignored."""
    found = {}
    for cell in executed.get("cells", []):
        if homework.EXERCISE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME)
            if payload is not None and payload["name"].startswith(homework.CHECK_PREFIX):
                found[payload["name"]] = payload["value"]
    return found


def _error_of(executed: dict) -> str:
    for cell in executed.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename')}: {output.get('evalue')}"[:300]
    return ""


def grade(submission: str | Path, *, timeout: int = DEFAULT_TIMEOUT_S, workdir: Path | None = None) -> dict:
    """Grade one submission (see the module docstring); returns the JSON-ready result."""
    nb, source = read_submission(submission)
    instructor = json.loads(source.read_text(encoding="utf-8"))
    copy, warnings = homework.grading_copy(instructor, nb)
    expected = homework.checks_in(instructor)  # names and points from the instructor's cells only
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        grading, executed = Path(folder) / source.name, Path(folder) / f"executed_{source.name}"
        grading.write_text(json.dumps(copy), encoding="utf-8")
        env = os.environ | {homework.STRICT_ENV: "0"}
        command = [sys.executable, "-m", "helpers.grader", "--run", str(grading), str(executed)]
        child = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the papermill process and its kernel
            child.communicate()
            warnings.append(f"stopped after the time limit of {timeout} s")
            stderr = ""
        ran = json.loads(executed.read_text(encoding="utf-8")) if executed.is_file() else {"cells": []}
        results, error = _checks_outside_exercises(ran), _error_of(ran)
        if not executed.is_file() and stderr:
            warnings.append(f"the grading run failed: {stderr.strip().splitlines()[-1][:300]}")
    checks = []
    for name, points in expected.items():
        found = results.get(homework.CHECK_PREFIX + name)
        passed = bool(found and found.get("passed"))
        reason = "" if passed else ("check failed" if found else f"did not run{' (' + error + ')' if error else ''}")
        checks.append({"name": name, "passed": passed, "points": points, "error": reason})
    return {
        "submission": str(submission),
        "notebook": source.name,
        "score": sum(c["points"] for c in checks if c["passed"]),
        "max_score": sum(c["points"] for c in checks),
        "checks": checks,
        "warnings": warnings,
    }


def grade_all(submissions: list[str], *, jobs: int = 1, timeout: int = DEFAULT_TIMEOUT_S) -> list[dict]:
    """Grade several submissions, ``jobs`` at a time; a bad file is a one-line error before any run."""
    for path in submissions:
        read_submission(path)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda s: grade(s, timeout=timeout), submissions))


def write_reports(results: list[dict], out: str | Path) -> Path:
    """``out/grades.csv`` (one row per submission) and ``out/<submission>.html`` feedback pages."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", "notebook", "score", "max_score"])
        for r in results:
            writer.writerow([r["submission"], r["notebook"], r["score"], r["max_score"]])
    for r in results:
        rows = "".join(
            f"<tr><td>{html.escape(c['name'])}</td><td>{'passed' if c['passed'] else 'failed'}</td>"
            f"<td>{c['points'] if c['passed'] else 0} / {c['points']}</td><td>{html.escape(c['error'])}</td></tr>"
            for c in r["checks"]
        )
        notes = "".join(f"<li>{html.escape(w)}</li>" for w in r["warnings"])
        page = (
            f"<!doctype html><meta charset='utf-8'><title>{html.escape(r['notebook'])}</title>"
            f"<h1>{html.escape(r['notebook'])}: {r['score']} / {r['max_score']}</h1>"
            f"<p>{html.escape(r['submission'])}</p><ul>{notes}</ul>"
            f"<table border=1><tr><th>check</th><th>result</th><th>points</th><th>why</th></tr>{rows}</table>"
        )
        (out / f"{Path(r['submission']).stem}.html").write_text(page, encoding="utf-8")
    return out


def _run(grading: str, executed: str) -> int:
    """The child process: execute a grading copy in fast mode, errors allowed."""
    from .notebooks import execute

    execute(grading, executed, {"fast": True}, allow_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--run":
        sys.exit(_run(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m helpers grade SUBMISSION.ipynb ...")
