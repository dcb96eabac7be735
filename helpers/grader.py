"""Grading submissions: each in its own sandbox, with a time limit, judged outside it.

A submission is untrusted code. Every file of a batch is read into memory and validated (JSON,
``nbformat``, the student-edition stamp) before any code runs; a malformed one becomes one error
row. The grading copy (:func:`helpers.homework.grading_copy`: the submission with every instructor
cell restored, no solution or hidden test) gets one extract cell after
each probe point of :data:`helpers.judge.PROBES` and ends after the last one. It runs under
papermill in fast mode inside a bubblewrap sandbox (:mod:`helpers.sandbox`) that sees a copy of
the workbook holding only student editions and no :mod:`helpers.judge`, with inputs the grader drew
for this submission. The extract cells write plain arrays (:mod:`helpers.answers`); this process,
which imported the judge before any student code ran, computes every verdict from those values and
its own references. Printing, faking records or rebinding ``homework.check`` earns nothing. At the
time limit the sandbox is killed with everything in it; a probe that did not report is "did not run
(reason)". ``sandbox=False`` (``--no-sandbox``) runs the same child without isolation and says so in
every report.
"""

from __future__ import annotations

import copy
import csv
import html
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import answers, homework, judge, native_log, sandbox
from .errors import WorkbookError
from .notebooks import notebook_list
from .paths import REPO

DEFAULT_TIMEOUT_S = 900
MAX_SUBMISSION_BYTES = 20 << 20
MAX_ANSWER_BYTES = 16 << 20
NO_SANDBOX_WARNING = "graded WITHOUT the sandbox (--no-sandbox): the submission could read, write and fake anything"
NO_GROUP_WARNING = (
    "no cgroup could be made for the sandbox: its threads, processes and memory were capped per process only"
)
LEFT_OUT = ("judge.py", "grader.py")  # the trusted side: not in the sandbox's copy of the workbook
_JUDGING = threading.Lock()  # native_log.filtered() redirects the process's stderr: one verdict at a time


@dataclass
class Submission:
    """A submission read into memory and validated, with the instructor notebook it came from."""

    path: str
    nb: dict
    source: Path
    warnings: list[str] = field(default_factory=list)
    student: str = ""  # the submission's folder name, or --student


def read_submission(path: str | Path) -> Submission:
    """Read and validate one submission; anything malformed is a one-line :class:`WorkbookError`."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise WorkbookError(f"submission not found: {path}")
    if path.stat().st_size > MAX_SUBMISSION_BYTES:
        raise WorkbookError(f"{path} is larger than {MAX_SUBMISSION_BYTES >> 20} MB; hand in the notebook itself")
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise WorkbookError(f"{path} is not a Jupyter notebook") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise WorkbookError(f"{path} is not a Jupyter notebook")
    metadata = nb.get("metadata")
    stamp = metadata.get(homework.STAMP) if isinstance(metadata, dict) else {}
    names = {p.name: p for p in notebook_list()}
    if isinstance(metadata, dict) and (
        not isinstance(stamp, dict) or not isinstance(stamp.get("source"), str) or stamp["source"] not in names
    ):
        raise WorkbookError(
            f"{path} is not a notebook of this workbook (no student-edition stamp naming one of notebooks/*.ipynb); "
            "hand in the notebook from `make student`"
        )
    try:
        with warnings.catch_warnings():  # nbformat warns about (and adds) missing cell ids: not our line
            warnings.simplefilter("ignore")
            nbformat.validate(copy.deepcopy(nb), version=4)
    except Exception as error:  # nbformat's ValidationError and friends: one line is enough
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WorkbookError(f"{path} is not a valid notebook (nbformat 4): {first[:200]}") from None
    source = names[stamp["source"]]
    submission = Submission(str(path), nb, source, student=path.resolve().parent.name)
    current = homework.fingerprint(source)
    if stamp.get("sha256") != current:
        submission.warnings.append(
            f"made from another version of {source.name}: stamp sha256 {str(stamp.get('sha256'))[:64]!r}, "
            f"current instructor notebook {current}"
        )
    return submission


def grading_notebook(instructor: dict, submission: dict, notebook: str) -> tuple[dict, list[str]]:
    """The grading copy with one extract cell after each probe point, ending after the last one."""
    nb, warnings = homework.grading_copy(instructor, submission)
    probes = judge.PROBES.get(notebook, [])
    ids = [cell.get("id") for cell in nb["cells"]]
    cells = copy.copy(nb["cells"])
    for probe in sorted(probes, key=lambda p: ids.index(p.after), reverse=True):
        extract = {
            "cell_type": "code",
            "id": f"extract-{probe.name}".replace("_", "-"),
            "metadata": {"tags": ["extract"]},
            "execution_count": None,
            "outputs": [],
            "source": f"from helpers import answers as _answers\n_answers.extract({probe.name!r})",
        }
        cells.insert(ids.index(probe.after) + 1, extract)
    last = max((i for i, c in enumerate(cells) if "extract" in c["metadata"].get("tags", [])), default=len(cells) - 1)
    nb["cells"] = cells[: last + 1]
    return nb, warnings


def _view(folder: Path) -> Path:
    """The workbook as the sandbox sees it: helpers without the judge, student editions only, and
    empty mount points for the images and the venv (bound read-only over them)."""
    view = folder / "workbook"
    (view / "helpers").mkdir(parents=True)
    for module in (REPO / "helpers").glob("*.py"):
        if module.name not in LEFT_OUT:
            shutil.copy2(module, view / "helpers" / module.name)
    shutil.copytree(REPO / "helpers" / "listings", view / "helpers" / "listings")  # the data folders' file lists
    (view / "notebooks").mkdir()
    for source in notebook_list():
        edition = homework.student_edition(json.loads(source.read_text("utf-8")), source.name, "")
        (view / "notebooks" / source.name).write_text(json.dumps(edition), encoding="utf-8")
    (view / "images").mkdir()
    if Path(sys.prefix).is_relative_to(REPO):  # the venv's mount point
        (view / Path(sys.prefix).relative_to(REPO)).mkdir(parents=True)
    for cache in _caches():  # a cache inside the repository (build/cache/...) needs its mount point
        if cache.is_relative_to(REPO):
            (view / cache.relative_to(REPO)).mkdir(parents=True, exist_ok=True)
    return view


def _mirror(source: Path, target: Path) -> None:
    """``target`` as a tree of real folders and symbolic links to ``source``'s files: a cache the
    sandbox reads (through a read-only bind) and adds to without touching the original."""
    for root, _, files in os.walk(source):
        here = target / Path(root).relative_to(source)
        here.mkdir(parents=True, exist_ok=True)
        for name in files:
            (here / name).symlink_to(Path(root) / name)


def _caches() -> list[Path]:
    """The data cache, then the build caches the sandbox reads: bottlenecks and LiteRT conversions
    (each under ``build/cache``, mirrored to the same place of the sandbox's own build folder)."""
    from . import bottlenecks, data, tflite

    return [data.cache_dir(), bottlenecks.cache_root(), tflite.conversion_cache()]


@contextmanager
def _batch(workdir: Path | None, use_sandbox: bool):
    """A temporary folder for one batch (with the sandbox's view of the workbook); always removed.
    Never inside the repository: the sandbox's read-only view of the workbook covers it there."""
    place = Path(workdir or tempfile.gettempdir()).resolve()
    if use_sandbox and place.is_relative_to(REPO.resolve()):
        raise WorkbookError(
            f"the grading folder {place} is inside the repository, which the sandbox shows read-only; "
            "set TMPDIR to a folder outside it"
        )
    folder = Path(tempfile.mkdtemp(prefix="grading-", dir=workdir))
    try:
        os.chmod(folder, 0o700)
        yield folder, (_view(folder) if use_sandbox else None)
    finally:
        sandbox.remove_tree(folder)


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (by parent pid, whatever their session)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            os.kill(current, signal.SIGKILL)
        except OSError:
            pass


def _run_unsandboxed(command: list[str], env: dict, timeout: float, log: Path) -> sandbox.Outcome:
    import time

    start = time.monotonic()
    with open(log, "w+b") as handle:
        child = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT
        )
        code: int | None = None
        try:
            while (left := start + timeout - time.monotonic()) > 0 and not sandbox.STOP.is_set():
                try:
                    code = child.wait(timeout=min(1.0, left))
                    break
                except subprocess.TimeoutExpired:
                    pass
        finally:  # past the deadline, or the grader itself stopped
            if code is None:
                _kill_tree(child.pid)
                child.wait(timeout=30)
        return sandbox.Outcome(code, time.monotonic() - start, sandbox.tail(handle))


def _first_error(executed: Path) -> str:
    """The first error a cell of the executed copy shows (empty when none, or unreadable)."""
    content = sandbox.read_regular(executed, sandbox.FILE_LIMIT)
    try:
        for cell in json.loads(content or b"{}").get("cells", []):
            for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
                if isinstance(output, dict) and output.get("output_type") == "error":
                    return f"{output.get('ename')}: {output.get('evalue')}"[:300]
    except (ValueError, AttributeError, TypeError):
        pass
    return ""


def _read_answers(work: Path, name: str) -> tuple[dict | None, str]:
    """The arrays one probe wrote (plain arrays only, no pickle), or None and why not."""
    content = sandbox.read_regular(work / f"answers_{name}.npz", MAX_ANSWER_BYTES + 1)
    if content is not None and len(content) <= MAX_ANSWER_BYTES:
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:  # what it would unpack to, before unpacking it
                if sum(item.file_size for item in archive.infolist()) > MAX_ANSWER_BYTES:
                    return None, f"answers larger than {MAX_ANSWER_BYTES >> 20} MB"
            with np.load(io.BytesIO(content), allow_pickle=False) as npz:
                return {key: npz[key] for key in npz.files}, ""
        except Exception as error:  # a truncated or forged file: no answers
            return None, f"unreadable answers: {type(error).__name__}"
    error = sandbox.read_regular(work / f"{name}.error", 300)
    return None, (error or b"").decode("utf-8", "replace").strip()


def grade(
    submission: Submission | str | Path,
    *,
    timeout: int = DEFAULT_TIMEOUT_S,
    use_sandbox: bool = True,
    batch: tuple[Path, Path | None] | None = None,
    warm: bool = False,
) -> dict:
    """Grade one submission (see the module docstring); returns the JSON-ready result. ``warm``
    (only for the instructor's own solutions, :func:`warm_caches`) keeps the bottlenecks and LiteRT
    conversions the run computed in the host's caches, which later sandboxes read."""
    if not isinstance(submission, Submission):
        submission = read_submission(submission)
    if batch is None:
        with _batch(None, use_sandbox) as made:
            return grade(submission, timeout=timeout, use_sandbox=use_sandbox, batch=made, warm=warm)
    folder, view = batch
    notebook = submission.source.name
    instructor = json.loads(submission.source.read_text(encoding="utf-8"))
    nb, warnings = grading_notebook(instructor, submission.nb, notebook)
    warnings = submission.warnings + warnings + ([] if use_sandbox else [NO_SANDBOX_WARNING])
    if not judge.PROBES.get(notebook):  # an optional deep dive: nothing to run, only written answers
        warnings.append(f"{notebook} has no autograded exercise: not run, written answers only")
        return result_of(submission, [], warnings, homework.written_answers(instructor, submission.nb))
    sources = {c.get("id"): "".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]}
    scratch = Path(tempfile.mkdtemp(prefix="submission-", dir=folder))
    try:
        task_dir, work = scratch / "task", scratch / "work"
        task_dir.mkdir()
        work.mkdir()
        rng = np.random.default_rng(secrets.randbits(64))  # fresh inputs: nothing to hard-code
        inputs, task = {}, {}
        for probe in judge.PROBES.get(notebook, []):
            inputs[probe.name] = probe.inputs(rng)
            np.savez(task_dir / f"inputs_{probe.name}.npz", **inputs[probe.name])
            task[probe.name] = judge.task(probe, sources.get(probe.cell, ""))
        (task_dir / "task.json").write_text(json.dumps(task), encoding="utf-8")
        grading, executed, log = work / notebook, work / f"executed_{notebook}", work / "log.txt"
        grading.write_text(json.dumps(nb), encoding="utf-8")
        build, cache = work / "build", work / "cache"
        host_cache, *host_builds = _caches()
        if host_cache.is_dir():
            _mirror(host_cache, cache)
        for host_build in host_builds:
            if host_build.is_dir():
                _mirror(host_build, build / "cache" / host_build.name)
        env = {
            homework.STRICT_ENV: "0",
            answers.TASK_ENV: str(task_dir),
            answers.ANSWERS_ENV: str(work),
            "WORKBOOK_BUILD": str(build),
            "WORKBOOK_CACHE": str(cache),
            "WORKBOOK_OFFLINE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(
                REPO
            ),  # the kernel imports this checkout's helpers, wherever the venv's editable install points
        }
        from .data import pack_dir

        pack = pack_dir()
        env["WORKBOOK_DATA"] = str(pack) if pack else ""
        # abspath, not resolve: the venv's python is a link whose own path selects the venv
        command = [os.path.abspath(sys.executable), "-m", "helpers.answers", str(grading), str(executed)]
        if use_sandbox:
            venv = Path(sys.prefix)  # the venv (REPO/.venv for make setup), read-only over the view
            binds = [(view, REPO), (REPO / "images", REPO / "images"), (venv, venv)]
            binds += [(p, p) for p in (pack, host_cache, *host_builds) if p and p.is_dir()]
            binds += [(task_dir, task_dir)]
            line = sandbox.command_line(
                command, writable=work, read_only=binds, env=env, cwd=REPO, cpu_seconds=2 * timeout + 60
            )
            outcome = sandbox.run(line, timeout=timeout, log=log, watch=scratch)
            if not outcome.limits:
                warnings.append(NO_GROUP_WARNING)
        else:
            home = work / "home"  # kernel connection files and IPython/matplotlib settings: removed below
            home.mkdir()
            plain = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG")} | {"HOME": str(home)}
            outcome = _run_unsandboxed(command, plain | env, timeout, log)
        if outcome.stopped:
            why = outcome.stopped
            warnings.append(why)
        elif outcome.timed_out:
            why = f"stopped after the time limit of {timeout} s"
            warnings.append(why)
        elif outcome.returncode != 0:
            last = (outcome.tail.strip().splitlines() or [f"exit status {outcome.returncode}"])[-1]
            why = f"the grading run failed: {last[:300]}"
            warnings.append(why)
        else:
            why = ""
        why = why or _first_error(executed) or "its extract cell did not run"
        checks = []
        refusals = reference_refusals(nb, notebook)
        for probe in judge.PROBES.get(notebook, []):
            values, error = _read_answers(work, probe.name)
            with _JUDGING, native_log.filtered():  # 06/08's references import TensorFlow: no start-up lines
                rows = judge.verdicts(probe, inputs[probe.name], values, error or why)
            if uses := refusals[probe.name]:
                rows = judge.refused(rows, uses)
                warnings.append(f"{probe.name}: {rows[0]['error']}")
            checks += rows
        if warm:
            _harvest(build / "cache", host_builds)
    finally:
        sandbox.remove_tree(scratch)
    for check in checks:  # reasons may quote what the submission printed: no control characters
        check["error"], check["message"] = sandbox.printable(check["error"]), sandbox.printable(check["message"])
    return result_of(submission, checks, warnings, homework.written_answers(instructor, submission.nb))


def reference_refusals(nb: dict, notebook: str) -> dict[str, list[str]]:
    """``probe name -> the references its exercise uses`` (:func:`judge.reference_uses`) in a grading
    copy: the exercise cell first, then every other cell of the student's (the cells added and the
    other exercises: any of them can supply a helper)."""
    theirs = homework.student_sources(nb)
    return {
        probe.name: judge.reference_uses(
            probe, [theirs.get(probe.cell, ""), *(code for cell_id, code in theirs.items() if cell_id != probe.cell)]
        )
        for probe in judge.PROBES.get(notebook, [])
    }


def question_name(written: dict) -> str:
    """A written answer as a student can find it: its cell id (for the marker) and its question's
    first words (a student sees no cell ids in JupyterLab)."""
    words = " ".join(re.sub(r"[*#`]", "", written["question"]).split())
    return f"{written['cell_id']} (\"{words[:60]}{'...' if len(words) > 60 else ''}\")"


def result_of(submission: Submission, checks: list[dict], warnings: list[str], written: list[dict]) -> dict:
    """The JSON-ready result of one graded submission (written answers unmarked until --manual)."""
    # the question's own line breaks kept (the pages show them), any other control character escaped
    written = [{**w, "question": "\n".join(map(sandbox.printable, w["question"].split("\n")))} for w in written]
    if blank := [question_name(w) for w in written if not w["answered"]]:
        warnings = [*warnings, f"blank written answers: {'; '.join(blank)}"]
    return totals(
        {
            "submission": submission.path,
            "student": submission.student,
            "notebook": submission.source.name,
            "score": sum(c["points"] for c in checks if c["passed"]),
            "max_score": sum(c["points"] for c in checks),
            "checks": checks,
            "written": written,
            "warnings": [sandbox.printable(w) for w in warnings],
        }
    )


def error_row(path: str, error: str, student: str = "") -> dict:
    """The result row of a submission that could not be graded."""
    return totals(
        {
            "submission": path,
            "student": student or Path(path).resolve().parent.name,
            "notebook": "",
            "score": 0,
            "max_score": 0,
            "checks": [],
            "written": [],
            "warnings": [],
            "error": sandbox.printable(error),
        }
    )


def grade_all(
    submissions: list[str],
    *,
    jobs: int = 1,
    timeout: int = DEFAULT_TIMEOUT_S,
    use_sandbox: bool = True,
    student: str = "",
    warm: bool = True,
) -> list[dict]:
    """Grade several submissions, ``jobs`` at a time. Every file is read and validated first; a
    malformed one is an error row (``python -m helpers grade`` prints it as one line on stderr),
    the rest are graded. ``student`` names the student of every submission (default: each
    submission's folder name). With ``warm`` each notebook of the batch first gets
    :func:`warm_caches` (once per version of it and of the helpers)."""
    if use_sandbox and (reason := sandbox.unavailable()):
        raise WorkbookError(reason)
    read: list[Submission | dict] = []
    for path in submissions:
        try:
            read.append(read_submission(path))
            read[-1].student = student or read[-1].student
        except WorkbookError as error:
            read.append(error_row(str(path), str(error), student))

    with _batch(None, use_sandbox) as made:
        if warm:
            for source in sorted({item.source for item in read if isinstance(item, Submission)}):
                warm_caches(source, timeout=timeout, use_sandbox=use_sandbox, batch=made)

        def one(item):
            if isinstance(item, dict):
                return item
            try:
                return grade(item, timeout=timeout, use_sandbox=use_sandbox, batch=made)
            except Exception as error:  # one broken grading never loses the batch
                why = f"{item.path}: grading failed: {type(error).__name__}: {error}"[:300]
                return error_row(item.path, why, item.student)

        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            return list(pool.map(one, read))
        except BaseException:  # SIGTERM's SystemExit or Ctrl-C in this thread: stop the running sandboxes
            sandbox.STOP.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            sandbox.STOP.clear()


def page_names(submissions: list[str]) -> list[str]:
    """One feedback page name per submission, never two alike: the file's stem, with as many of its
    folders in front as it takes to tell it from the others (``alice-01_classify.html``)."""

    def name(path: str, depth: int) -> str:
        parts = [part for part in Path(path).parts if part not in ("/", "..", ".")][-depth:]
        parts[-1] = Path(parts[-1]).stem if parts else "submission"
        return re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts) or "submission").lstrip(".")

    names: list[str] = []
    for index, path in enumerate(submissions):
        depth, candidate = 1, name(path, 1)
        others = [s for i, s in enumerate(submissions) if i != index]
        while any(name(o, depth) == candidate for o in others) and depth < len(Path(path).parts):
            depth += 1
            candidate = name(path, depth)
        while candidate in names:  # same path twice, or names that only differ in odd characters
            candidate += "_"
        names.append(candidate)
    return [f"{n}.html" for n in names]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula
MANUAL_COLUMNS = ["submission", "student", "cell_id", "max_points", "points", "comment"]


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string that would start a formula gets a ``'``."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _uncsv(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def totals(result: dict) -> dict:
    """``result`` with its written points and totals (marked written answers only)."""
    written = result.get("written", [])
    marked = sum(w["points"] for w in written if w["points"] is not None)
    most = sum(w["max_points"] for w in written)
    return {
        **result,
        "written_score": marked,
        "written_max": most,
        "written_marked": all(w["points"] is not None for w in written),
        "total": result["score"] + marked,
        "max_total": result["max_score"] + most,
    }


def read_manual(path: str | Path) -> dict[tuple[str, str], tuple[float | None, str]]:
    """``(submission, cell_id) -> (points or None, comment)`` from a filled-in ``manual.csv``."""
    marks: dict[tuple[str, str], tuple[float | None, str]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise WorkbookError(f"{path}: cannot read the marks: {error}") from None
    for line, row in enumerate(rows, 2):
        if set(MANUAL_COLUMNS) - set(row):
            raise WorkbookError(f"{path}: needs the columns {', '.join(MANUAL_COLUMNS)}")
        text = (row["points"] or "").strip()
        try:
            points = None if not text else float(text)
            most = float(row["max_points"])
        except ValueError:
            raise WorkbookError(f"{path} line {line}: points {text!r} is not a number") from None
        if points is not None and not 0 <= points <= most:
            raise WorkbookError(f"{path} line {line}: points {text} outside 0..{row['max_points']}")
        if points is not None and points.is_integer():
            points = int(points)
        marks[(_uncsv(row["submission"]), _uncsv(row["cell_id"]))] = (points, _uncsv(row["comment"] or ""))
    return marks


def merge_manual(results: list[dict], marks: dict[tuple[str, str], tuple[float | None, str]]) -> list[dict]:
    """The results with a person's marks of their written answers (:func:`read_manual`) merged in;
    a mark for a submission or question not in the batch is an error (a typo loses no marks)."""
    known = {(r["submission"], w["cell_id"]): w["max_points"] for r in results for w in r.get("written", [])}
    if stray := sorted(set(marks) - set(known)):
        raise WorkbookError(f"marks for a submission or question not in this batch: {stray[0][0]} {stray[0][1]}")
    for key, (points, _) in sorted(marks.items()):  # the question's own points, whatever the file's column says
        if points is not None and points > known[key]:
            raise WorkbookError(f"marks of {points} for {key[0]} {key[1]}: more than its {known[key]} points")
    merged = []
    for r in results:
        written = []
        for w in r.get("written", []):
            points, comment = marks.get((r["submission"], w["cell_id"]), (w["points"], w.get("comment", "")))
            written.append({**w, "points": points, "comment": comment})
        merged.append(totals({**r, "written": written}))
    return merged


def _student_warning(warning: str) -> str:
    """A warning as the student's page shows it: a failed run's last line (raw text) left out."""
    return warning.split(": ", 1)[0] if warning.startswith("the grading run failed") else warning


def _written_page_name(notebook: str, cell_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{Path(notebook).stem}-{cell_id}") + ".html"


def write_reports(results: list[dict], out: str | Path) -> Path:
    """``out/grades.csv`` (one row per submission, cells escaped against formulas), one
    ``out/<name>.html`` feedback page per submission (:func:`page_names`; check messages, never
    raw exception text), ``out/written/<notebook>-<cell>.html`` per written question (the model
    answer and every student's answer beside its points, blank ones flagged: for the marker, not
    the students) and ``out/manual.csv`` to fill in (``grade --manual``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = [totals(r) for r in results]
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        header = ["submission", "student", "notebook", "score", "max_score", "written_score", "written_max"]
        writer.writerow([*header, "total", "max_total", "error", "warnings"])
        for r in results:
            row = [r["submission"], r["student"], r["notebook"], r["score"], r["max_score"]]
            row += [r["written_score"] if r["written_marked"] else "", r["written_max"], r["total"], r["max_total"]]
            writer.writerow([csv_cell(v) for v in [*row, r.get("error", ""), "; ".join(r["warnings"])]])
    with open(out / "manual.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANUAL_COLUMNS)
        for r in results:
            for w in r.get("written", []):
                row = [r["submission"], r["student"], w["cell_id"], w["max_points"], w["points"], w.get("comment", "")]
                writer.writerow([csv_cell("" if v is None else v) for v in row])
    for r, page_name in zip(results, page_names([r["submission"] for r in results]), strict=True):
        (out / page_name).write_text(_feedback_page(r), encoding="utf-8")
    _written_pages(results, out / "written")
    return out


def _feedback_page(r: dict) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(c['name'])}</td><td>{'passed' if c['passed'] else 'failed'}</td>"
        f"<td>{c['points'] if c['passed'] else 0} / {c['points']}</td><td>{e(c.get('message', ''))}</td></tr>"
        for c in r["checks"]
    )
    written = "".join(
        f"<tr><td style='white-space:pre-wrap'>{e(w['question'])}</td>"
        f"<td>{'answered' if w['answered'] else '<b>blank</b>'}</td>"
        f"<td>{'to be marked' if w['points'] is None else w['points']} / {w['max_points']}</td>"
        f"<td>{e(w.get('comment', ''))}</td></tr>"
        for w in r.get("written", [])
    )
    notes = [_student_warning(w) for w in r["warnings"]] + (
        ["not graded: see your instructor"] if r.get("error") else []
    )
    marked = "" if r["written_marked"] else " (written answers not marked yet)"
    return (
        f"<!doctype html><meta charset='utf-8'><title>{e(r['notebook'])}</title>"
        f"<h1>{e(r['notebook'])}: {r['total']} / {r['max_total']}{marked}</h1>"
        f"<p>{e(r['student'])}: {e(r['submission'])}</p><ul>{''.join(f'<li>{e(n)}</li>' for n in notes)}</ul>"
        f"<h2>Checks: {r['score']} / {r['max_score']}</h2>"
        f"<table border=1><tr><th>check</th><th>result</th><th>points</th><th>why</th></tr>{rows}</table>"
        + (
            f"<h2>Written answers</h2><table border=1><tr><th>question</th><th>answer</th><th>points</th>"
            f"<th>comment</th></tr>{written}</table>"
            if written
            else ""
        )
    )


def _written_pages(results: list[dict], folder: Path) -> None:
    """One page per written question of the batch: model answer, then every student's answer."""
    e = html.escape
    questions: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for r in results:
        for w in r.get("written", []):
            questions.setdefault((r["notebook"], w["cell_id"]), []).append((r, w))
    if questions:
        folder.mkdir(parents=True, exist_ok=True)
    models: dict[str, dict] = {}
    for (notebook, cell_id), answers_of in questions.items():
        if notebook not in models:
            nb = json.loads((REPO / "notebooks" / notebook).read_text(encoding="utf-8"))
            models[notebook] = {c.get("id"): homework.solution_text(c) for c in nb["cells"]}
        rows = "".join(
            f"<tr><td>{e(r['student'])}<br><small>{e(r['submission'])}</small></td>"
            f"<td style='white-space:pre-wrap'>{e(w['answer']) if w['answered'] else '<b>BLANK</b>'}</td>"
            f"<td>{'' if w['points'] is None else w['points']} / {w['max_points']}</td>"
            f"<td>{e(w.get('comment', ''))}</td></tr>"
            for r, w in answers_of
        )
        blank = sum(not w["answered"] for _, w in answers_of)
        page = (
            f"<!doctype html><meta charset='utf-8'><title>{e(notebook)} {e(cell_id)}</title>"
            f"<h1>{e(notebook)}, cell {e(cell_id)}</h1>"
            f"<p style='white-space:pre-wrap'>{e(answers_of[0][1]['question'])}</p>"
            f"<h2>Model answer</h2><div style='white-space:pre-wrap'>{e(models[notebook].get(cell_id, ''))}</div>"
            f"<h2>{len(answers_of)} answers, {blank} blank</h2>"
            f"<table border=1><tr><th>student</th><th>answer</th><th>points</th><th>comment</th></tr>{rows}</table>"
        )
        (folder / _written_page_name(notebook, cell_id)).write_text(page, encoding="utf-8")


def solved_submission(source: Path) -> dict:
    """The student edition of ``source`` with the instructor's solutions in its exercise cells:
    what a student who solved everything hands in."""
    instructor = json.loads(source.read_text(encoding="utf-8"))
    edition = homework.student_edition(instructor, source.name, homework.fingerprint(source))
    solved = homework.exercise_cells(instructor)
    for cell in edition["cells"]:
        if cell.get("id") in solved:
            cell["source"] = solved[cell["id"]]["source"]
    return edition


def warm_record() -> Path:
    """``build/cache/grading-warm.json``: which notebook versions have warmed the grading caches."""
    from .paths import build_dir

    return build_dir() / "cache" / "grading-warm.json"


def _warm_key(source: Path) -> str:
    """The notebook's fingerprint with the helpers' code and TensorFlow's version: a change to any
    of them can change what a grading run computes, so it warms again."""
    import hashlib
    from importlib import metadata

    digest = hashlib.sha256(f"{homework.fingerprint(source)} tf{metadata.version('tensorflow')}".encode())
    for module in sorted((REPO / "helpers").glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()


def warm_caches(source: Path, *, timeout: int = DEFAULT_TIMEOUT_S, use_sandbox: bool = True, batch=None) -> dict | None:
    """Grade the instructor's own solutions of ``source`` once, keeping the bottlenecks and LiteRT
    conversions its run computed (:func:`grade` with ``warm``), so that every later grading of the
    notebook reads them instead of computing them: a student's run computes the same models from
    the same seeds, so it finds them by their inputs' hashes; anything a submission changes is
    computed anew. Only this trusted run adds to the host's caches; a submission's run writes to its
    own copy. Does nothing (returns None) when this version is already warm; prints one line to
    stderr, and a warning when the instructor's solutions do not earn full marks."""
    import time

    if not judge.PROBES.get(source.name):  # never run when graded: nothing to warm
        return None
    record = warm_record()
    try:
        warmed = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        warmed = {}
    key = _warm_key(source)
    if isinstance(warmed, dict) and isinstance(warmed.get(source.name), dict) and warmed[source.name].get("key") == key:
        return None
    start = time.monotonic()
    solved = Submission(f"instructor solutions of {source.name}", solved_submission(source), source)
    result = grade(solved, timeout=timeout, use_sandbox=use_sandbox, batch=batch, warm=True)
    seconds = time.monotonic() - start
    print(
        f"warmed the grading caches with the instructor's solutions of {source.name} (once per version): "
        f"{seconds:.0f} s, {result['score']} / {result['max_score']}",
        file=sys.stderr,
    )
    if result["score"] != result["max_score"]:
        print(f"warning: the instructor's own solutions of {source.name} do not earn full marks", file=sys.stderr)
    warmed = warmed if isinstance(warmed, dict) else {}
    warmed[source.name] = {"key": key, "seconds": round(seconds, 1), "score": [result["score"], result["max_score"]]}
    from .data import write_atomic

    write_atomic(record, json.dumps(warmed, indent=1, sort_keys=True))
    return result


def _harvest(made: Path, host_builds: list[Path]) -> None:
    """Copy the plain files a warm-up run added under its ``build/cache/<name>`` (not the mirror's
    links to the host's files) into the host cache of the same name."""
    from .data import write_atomic

    for host in host_builds:
        for root, _, files in os.walk(made / host.name):
            for name in files:
                path = Path(root) / name
                if path.is_symlink() or not path.is_file() or name.startswith(".") or name.endswith(".part"):
                    continue
                target = host / path.relative_to(made / host.name)
                if not target.exists():
                    write_atomic(target, path.read_bytes())
