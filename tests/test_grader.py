"""The trusted judge and the up-front validation of submissions (no notebook runs here).

tests/test_grader_sandbox.py grades hostile submissions in the sandbox.
"""

from __future__ import annotations

import ast
import json
import os

import numpy as np
import pytest

from helpers import answers, grader, homework, judge
from helpers.errors import WorkbookError
from helpers.notebooks import notebook_list
from helpers.paths import NOTEBOOKS, REPO


def instructor(name: str) -> dict:
    return json.loads((NOTEBOOKS / name).read_text())


def test_the_judge_grades_exactly_the_instructor_checks():
    # The instructor edition (make test, strict) and the grader must agree on names and points.
    for source in notebook_list():
        assert judge.checks_of(source.name) == homework.checks_in(instructor(source.name)), source.name
    total = sum(sum(judge.checks_of(s.name).values()) for s in notebook_list())
    assert total == 50  # 3 each; 02, 06, 10: 6; 03: 5; 07: 9; 06b: none (an optional deep dive)


def test_probe_points_are_cells_of_the_notebook():
    for name, probes in judge.PROBES.items():
        cells = {c.get("id"): c for c in instructor(name)["cells"]}
        for probe in probes:
            assert homework.EXERCISE_TAG in cells[probe.cell]["metadata"]["tags"], (name, probe.name)
            assert probe.after in cells, (name, probe.name)


def namespace_after(name: str, probe: judge.Probe, solved: bool) -> tuple[dict, str]:
    """A namespace like the notebook's after its exercise cell ran (solution or placeholder), and
    the exercise's code as a grading copy would hold it."""
    import keras
    import tensorflow as tf

    cell = homework.exercise_cells(instructor(name))[probe.cell]
    code = "".join(cell["source"])
    code = code if solved else homework.strip_solutions(code)
    namespace = {"np": np, "tf": tf, "keras": keras}
    if not probe.rerun:
        try:
            exec(code, namespace)  # the function definitions, as the notebook's own run made them
        except NotImplementedError:
            pass
    return namespace, code


# 05's accuracy probe reads the model the notebook trained: only a notebook run has it.
IN_PROCESS = [(n, p) for n, probes in judge.PROBES.items() for p in probes if p.after == p.cell]


@pytest.mark.parametrize("name,probe", IN_PROCESS, ids=[f"{n[:2]}-{p.name}" for n, p in IN_PROCESS])
def test_each_probe_passes_the_solution_and_fails_the_placeholder(name, probe):
    rng = np.random.default_rng(7)
    inputs = probe.inputs(rng)
    namespace, code = namespace_after(name, probe, solved=True)
    values = answers.evaluate(judge.task(probe, code), inputs, namespace)
    rows = judge.verdicts(probe, inputs, values, "")
    assert all(r["passed"] for r in rows), rows
    namespace, code = namespace_after(name, probe, solved=False)
    with pytest.raises((NotImplementedError, NameError)):  # 05's placeholder replaces the whole def
        answers.evaluate(judge.task(probe, code), inputs, namespace)
    rows = judge.verdicts(probe, inputs, None, "NotImplementedError")
    assert [r["error"] for r in rows] == ["did not run (NotImplementedError)"] * len(rows)


def test_wrong_or_malformed_values_fail():
    probe = judge.PROBES["01_classify.ipynb"][0]
    inputs = probe.inputs(np.random.default_rng(0))
    uniform = np.full(1000, 1 / 1000)  # sums to one, but is not the softmax of these logits
    rows = judge.verdicts(probe, inputs, {"probabilities": uniform, "top5_indices": np.arange(5)}, "")
    assert [r["passed"] for r in rows] == [False, False, True]
    rows = judge.verdicts(probe, inputs, {"probabilities": np.array(["a"])}, "")  # a string, no indices
    assert not any(r["passed"] for r in rows) and all(r["error"].startswith("check failed") for r in rows)


def test_the_sandbox_side_never_imports_the_judge():
    # helpers/answers.py runs inside the sandbox, where judge.py and grader.py are left out.
    seen, todo = set(), ["answers"]
    while todo:
        module = todo.pop()
        seen.add(module)
        for node in ast.walk(ast.parse((REPO / "helpers" / f"{module}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                todo += [n for n in names if n not in seen and (REPO / "helpers" / f"{n}.py").is_file()]
    assert "notebooks" in seen and not seen & {name.removesuffix(".py") for name in grader.LEFT_OUT}


def test_extracted_values_must_be_plain_arrays():
    task = {"setup": "", "source": "x = object()", "collect": "", "outputs": ["x"]}
    with pytest.raises(TypeError, match="not an array of numbers"):
        answers.evaluate(task, {}, {})
    task["source"] = "x = [1.5, 2.5]"
    assert answers.evaluate(task, {}, {})["x"].tolist() == [1.5, 2.5]


def stamped(name: str = "01_classify.ipynb") -> dict:
    nb = homework.student_edition(instructor(name), name, homework.fingerprint(NOTEBOOKS / name))
    return json.loads(json.dumps(nb))


def broken(kind: str) -> dict:
    nb = stamped()
    if kind == "stamp is a string":
        nb["metadata"]["mobilenet_workbook"] = "01_classify.ipynb"
    elif kind == "metadata is a list":
        nb["metadata"] = []
    elif kind == "a cell is a string":
        nb["cells"][3] = "print(1)"
    elif kind == "tags: null":
        nb["cells"][3]["metadata"]["tags"] = None
    elif kind == "a list as cell id":
        nb["cells"][3]["id"] = ["c10e"]
    elif kind == "source outside notebooks/":
        nb["metadata"]["mobilenet_workbook"]["source"] = "../Makefile"
    return nb


BROKEN = ["stamp is a string", "metadata is a list", "a cell is a string", "tags: null", "a list as cell id"]


@pytest.mark.parametrize("kind", [*BROKEN, "source outside notebooks/"])
def test_malformed_submissions_are_one_line_errors(kind, tmp_path):
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(broken(kind)))
    with pytest.raises(WorkbookError) as error:
        grader.read_submission(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_stamp_from_another_version_is_graded_with_a_warning(tmp_path):
    nb = stamped()
    nb["metadata"]["mobilenet_workbook"]["sha256"] = "0" * 64
    (tmp_path / "old.ipynb").write_text(json.dumps(nb))
    read = grader.read_submission(tmp_path / "old.ipynb")
    current = homework.fingerprint(NOTEBOOKS / "01_classify.ipynb")
    assert read.source.name == "01_classify.ipynb"
    assert read.warnings == [
        f"made from another version of 01_classify.ipynb: stamp sha256 '{'0' * 64}', "
        f"current instructor notebook {current}"
    ]


def test_a_record_shaped_string_in_the_outputs_is_ignored(tmp_path):
    # The grader reads no record from a submission: a payload that is a string cannot break it.
    nb = stamped()
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    bogus = {"output_type": "display_data", "data": {"application/vnd.mobilenet-workbook.record+json": "x"}}
    cell["outputs"] = [{**bogus, "metadata": {}}]
    (tmp_path / "odd.ipynb").write_text(json.dumps(nb))
    read = grader.read_submission(tmp_path / "odd.ipynb")
    copy, _ = grader.grading_notebook(instructor("01_classify.ipynb"), read.nb, "01_classify.ipynb")
    assert all(c.get("outputs", []) == [] for c in copy["cells"])


def test_the_grading_copy_holds_no_solution_or_hidden_test_and_ends_with_the_extract():
    for source in notebook_list():
        nb = instructor(source.name)
        copy, _ = grader.grading_notebook(nb, stamped(source.name), source.name)
        text = json.dumps(copy)
        assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text, source.name
        probes = judge.PROBES.get(source.name, [])  # 06b, an optional deep dive, grades nothing
        assert not probes or copy["cells"][-1]["metadata"]["tags"] == ["extract"], source.name
        assert sum("extract" in c["metadata"].get("tags", []) for c in copy["cells"]) == len(probes)


# What a sandboxed run leaves in its folder is read by the host: never through a link, a pipe or a device.
def test_host_side_reads_refuse_links_pipes_and_devices(tmp_path):
    from helpers import sandbox

    secret = tmp_path / "host_secret.txt"
    secret.write_text("AWS_SECRET=42")
    (tmp_path / "regular").write_bytes(b"x" * 100)
    (tmp_path / "link").symlink_to(secret)
    (tmp_path / "zero").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo")
    assert sandbox.read_regular(tmp_path / "regular", 10) == b"x" * 10
    for name in ("link", "zero", "fifo", "missing"):
        assert sandbox.read_regular(tmp_path / name, 10) is None, name  # the fifo: no wait for a writer
    executed = tmp_path / "executed.ipynb"
    executed.symlink_to("/dev/zero")
    assert grader._first_error(executed) == ""  # was: read /dev/zero until out of memory
    (tmp_path / "p.error").symlink_to(secret)
    assert grader._read_answers(tmp_path, "p") == (None, "")


def test_the_log_is_read_through_the_grader_s_own_handle(tmp_path):
    """A command that replaces its log by a link to a host secret, or by a named pipe, shows what it
    printed, not the secret, and the grader does not block on the pipe."""
    from helpers import sandbox

    secret = tmp_path / "secret.txt"
    secret.write_text("GRADER_SECRET_TOKEN=hunter2")
    log = tmp_path / "log.txt"
    swap = f"echo printed; rm {log}; ln -s {secret} {log}"
    assert sandbox.run(["sh", "-c", swap], timeout=30, log=log).tail == "printed\n"
    pipe = f"echo printed; rm {log}; mkfifo {log}"
    outcome = sandbox.run(["sh", "-c", pipe], timeout=30, log=log)
    assert outcome.tail == "printed\n" and outcome.seconds < 10


def test_a_deep_tree_is_removed_without_raising(tmp_path):
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(3000):  # deeper than Python's recursion limit: shutil.rmtree raised RecursionError
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    from helpers import sandbox

    sandbox.remove_tree(top)
    assert not top.exists()


def test_report_text_cannot_draw_on_the_terminal_and_pages_never_collide():
    from helpers import sandbox

    assert sandbox.printable("boom\r\x1b[2K\n  ok   softmax (1)") == "boom\\r\\x1b[2K\\n  ok   softmax (1)"
    names = grader.page_names(["a/alice/01_classify.ipynb", "b/bob/01_classify.ipynb", "02.ipynb", "02.ipynb"])
    assert names == ["alice-01_classify.html", "bob-01_classify.html", "02.html", "02_.html"]
    assert grader.page_names(["../../etc/passwd.ipynb"]) == ["passwd.html"]


def test_timing_magics_in_an_exercise_cell_still_count():
    task = {"setup": "", "source": "%%time\ny = 2 * x\n", "collect": "", "outputs": ["y"]}
    assert answers.evaluate(task, {"x": np.array(3)}, {})["y"] == 6
    assert answers.python_source("%timeit z = 1\n") == "get_ipython().run_line_magic('timeit', 'z = 1')\n"
