"""Gradescope: one autograder zip per notebook, and the ``run_autograder`` side that grades there.

``python -m helpers.gradescope build --out build/gradescope`` (``make gradescope``) writes
``NN_autograder.zip`` per graded notebook in Gradescope's autograder format: ``setup.sh`` (run
once when the image is built: Python, bubblewrap, the pinned packages, the offline data pack, and
the warm-up of the grading caches with the instructor's solutions, :func:`helpers.grader.warm_caches`),
``run_autograder`` (run per submission: grades ``/autograder/submission/*.ipynb`` with
:mod:`helpers.grader` and writes ``/autograder/results/results.json``) and the workbook itself
beside them (Gradescope unpacks the zip into ``/autograder/source``). ``AUTOGRADER`` in the
environment names another folder than ``/autograder`` (the tests use a temporary one);
``WORKBOOK_PYTHON`` another interpreter than the one setup.sh made.

results.json has the autograded ``score``, one test per check (``name``, ``score``,
``max_score``, ``output``: the check's message, ``visibility``: hidden checks ``after_published``)
and an ``output`` naming the written answers, which Gradescope's own manually graded questions
(or ``grade --manual``) mark.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

from . import grader, homework, sandbox
from .notebooks import notebook_list
from .paths import REPO

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, in /autograder/source, when it builds the autograder's image.
set -euo pipefail
cd /autograder/source
apt-get update
apt-get install -y python3 python3-venv python3-pip bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet -r requirements.txt
/autograder/venv/bin/python -m pip install --quiet --no-deps -e .
/autograder/venv/bin/python -m helpers pack /autograder/data  # the offline data pack: grading runs offline
# the instructor's solutions graded once, in the image: its caches serve every submission (and a self-test)
WORKBOOK_DATA=/autograder/data /autograder/venv/bin/python -m helpers.gradescope warm --notebook {notebook}
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this per submission: grade {notebook} from submission/, write results/results.json.
set -uo pipefail
AUTOGRADER="${{AUTOGRADER:-/autograder}}"
PYTHON="${{WORKBOOK_PYTHON:-$AUTOGRADER/venv/bin/python}}"
export WORKBOOK_DATA="${{WORKBOOK_DATA:-$AUTOGRADER/data}}"
cd "$AUTOGRADER/source"
exec "$PYTHON" -m helpers.gradescope run --root "$AUTOGRADER" --notebook {notebook}
"""

SOURCE_FILES = ("pyproject.toml", "requirements.txt", "README.md")


def hidden_checks(nb: dict) -> set[str]:
    """The check names of a notebook's hidden tests."""
    shown = {"cells": [{**c, "source": homework.strip_hidden_tests(homework._source(c))} for c in nb["cells"]]}
    return set(homework.checks_in(nb)) - set(homework.checks_in(shown))


def results_json(result: dict, hidden: set[str]) -> dict:
    """Gradescope's results.json for one graded submission (:func:`helpers.grader.grade`)."""
    tests = [
        {
            "name": check["name"],
            "score": check["points"] if check["passed"] else 0,
            "max_score": check["points"],
            "output": check.get("message", "") or ("passed" if check["passed"] else "failed"),
            "visibility": "after_published" if check["name"] in hidden else "visible",
        }
        for check in result.get("checks", [])
    ]
    notes = [grader._student_warning(w) for w in result.get("warnings", [])]
    if result.get("error"):
        notes.append("not graded: " + result["error"].rsplit(": ", 1)[-1])
    blank = [w["cell_id"] for w in result.get("written", []) if not w["answered"]]
    if result.get("written"):
        notes.append(
            f"{len(result['written'])} written answers are marked by hand"
            + (f" (blank: {', '.join(blank)})" if blank else "")
        )
    return {"score": result.get("score", 0), "output": "\n".join(notes), "tests": tests}


def run(root: Path, notebook: str) -> dict:
    """Grade the submission in ``root/submission`` (the ``.ipynb`` of ``notebook``, else the only
    one there) and write ``root/results/results.json``; returns what it wrote. Without user
    namespaces (some containers) it grades unsandboxed and says so in the output."""
    submitted = sorted((root / "submission").glob("*.ipynb"))
    chosen = [p for p in submitted if p.name == notebook] or submitted[:1]
    nb = json.loads((REPO / "notebooks" / notebook).read_text(encoding="utf-8"))
    if not chosen:
        result = grader.error_row(str(root / "submission"), f"no .ipynb submitted (expected {notebook})")
    else:
        use_sandbox = sandbox.unavailable() is None
        (result,) = grader.grade_all([str(chosen[0])], use_sandbox=use_sandbox)
        if result.get("notebook") not in ("", notebook):
            result = grader.error_row(str(chosen[0]), f"this is {result['notebook']}, not {notebook}")
    results = results_json(result, hidden_checks(nb))
    if not result.get("error"):
        checks_max = sum(t["max_score"] for t in results["tests"])
        results["output"] = f"autograded {results['score']} / {checks_max}\n" + results["output"]
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def _add(archive: zipfile.ZipFile, path: Path, name: str, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed: the same zip every build
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, path.read_bytes())


def build(out: Path) -> list[Path]:
    """``out/NN_autograder.zip`` for every notebook with graded checks (see the module docstring)."""
    from . import judge

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(
        [
            *(p for p in (REPO / "helpers").rglob("*") if p.is_file() and "__pycache__" not in p.parts),
            *(REPO / "notebooks").glob("*.ipynb"),
            *(p for p in (REPO / "images").rglob("*") if p.is_file()),
            *(REPO / name for name in SOURCE_FILES),
        ]
    )
    written = []
    for source in notebook_list():
        if not judge.PROBES.get(source.name):
            continue
        target = out / f"{source.name.split('_')[0]}_autograder.zip"  # 07, 07b, ...: never two alike
        with zipfile.ZipFile(target, "w") as archive:
            scripts = {
                "setup.sh": SETUP_SH.format(notebook=source.name),
                "run_autograder": RUN_AUTOGRADER.format(notebook=source.name),
            }
            for name, text in scripts.items():
                info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                info.external_attr = (0o100755) << 16
                archive.writestr(info, text)
            for path in files:
                _add(archive, path, str(path.relative_to(REPO)))
        written.append(target)
    return written


def main(argv: list[str]) -> int:
    """``build --out DIR``, ``warm --notebook NAME`` (what setup.sh calls) or ``run --root DIR
    --notebook NAME`` (what run_autograder calls)."""
    parser = argparse.ArgumentParser(prog="python -m helpers.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build").add_argument("--out", type=Path, default=REPO / "build" / "gradescope")
    sub.add_parser("warm").add_argument("--notebook", required=True)
    p = sub.add_parser("run")
    p.add_argument("--root", type=Path, default=Path("/autograder"))
    p.add_argument("--notebook", required=True)
    args = parser.parse_args(argv)
    if args.command == "build":
        print("\n".join(str(p) for p in build(args.out)))
    elif args.command == "warm":
        grader.warm_caches(REPO / "notebooks" / args.notebook, use_sandbox=sandbox.unavailable() is None)
    else:
        print(json.dumps(run(args.root, args.notebook), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
