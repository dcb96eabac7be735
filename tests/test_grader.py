"""The trusted judge and the up-front validation of submissions (no notebook runs here).

tests/test_grader_sandbox.py grades hostile submissions in the sandbox.
"""

from __future__ import annotations

import ast
import json
import os
import re
import tempfile
from pathlib import Path

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
    assert total == 50  # 3 each; 02, 06, 10: 6; 03: 5; 07: 9; 06b, 07b: none (optional deep dives)


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


def judged(probe: judge.Probe, code: str, seed: int) -> tuple[int, list[dict]]:
    """Points ``code`` (the exercise cell's code) earns on ``probe``, run here as the sandbox would."""
    import keras
    import tensorflow as tf

    inputs = probe.inputs(np.random.default_rng(seed))
    namespace = {"np": np, "tf": tf, "keras": keras}
    try:
        if not probe.rerun:
            exec(code, namespace)  # the function definitions
        values = answers.evaluate(judge.task(probe, code), inputs, namespace)
    except Exception as error:
        values, reason = None, f"{type(error).__name__}: {error}"
    else:
        reason = ""
    rows = judge.verdicts(probe, inputs, values, reason)
    return sum(r["points"] for r in rows if r["passed"]), rows


def variants(kind: str) -> list:
    return [
        pytest.param(p, code, id=f"{n[:2]}-{p.name}-{what}")
        for n, probes in judge.PROBES.items()
        for p in probes
        if p.after == p.cell
        for what, code in getattr(p, kind).items()
    ]


SEEDS = (1, 2, 3)  # fresh inputs per submission: each variant is judged on three draws


@pytest.mark.parametrize("probe,code", variants("wrong"))
def test_each_likely_wrong_answer_loses_points(probe, code):
    for seed in SEEDS:
        score, rows = judged(probe, code, seed)
        assert score < sum(points for points, _ in probe.checks.values()), (seed, rows)
        assert all(r["message"] for r in rows if not r["passed"]), rows  # the student is told why


@pytest.mark.parametrize("probe,code", variants("right"))
def test_each_right_answer_in_another_style_earns_every_point(probe, code):
    for seed in SEEDS:
        score, rows = judged(probe, code, seed)
        assert score == sum(points for points, _ in probe.checks.values()), (seed, rows)


def test_the_exercises_list_their_wrong_answers():
    # the generic framework: each graded exercise this issue covers lists at least four likely bugs
    covered = {
        "01": "softmax",
        "02": "const_nodes",
        "03": "fold",
        "04": "subset_softmax",
        "07": "dequantize",
        "07c": "rounding_shift",
        "08": "inverted_residual",
        "09": "imprint",
        "10": "top_k",
    }
    for name, probes in judge.PROBES.items():
        for probe in probes:
            if covered.get(name.split("_")[0]) == probe.name:
                assert len(probe.wrong) >= 4 and probe.references or name[:3] == "07_", (name, probe.name)


def test_a_failed_check_says_what_was_expected_and_what_came_back():
    probe = judge.PROBES["03_bn_folding.ipynb"][0]
    _, rows = judged(probe, probe.wrong["no epsilon"], 1)
    message = {r["name"]: r["message"] for r in rows}["fold_multiplier"]
    assert message.startswith("multiplier at index (") and "expected" in message and ", got " in message, message
    assert "float32 results accepted" in message  # the tolerance states its reason


def test_a_float32_answer_is_accepted_where_the_notebook_compares_exactly():
    probe = judge.PROBES["10_accuracy_vs_cost.ipynb"][0]
    values = {"toy_accuracy": np.float32([1 / 3, 2 / 3]), "coarse_accuracy": np.float32([0.1, 0.3, 0.5])}
    inputs = {"toy": np.array([[0.1, 0.5, 0.5], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]]), "toy_labels": np.array([1, 0, 0])}
    inputs |= {"coarse": np.zeros((10, 4)), "truth": np.zeros(10, int)}  # all tied: every k counts 1.0
    rows = judge.verdicts(probe, inputs, values, "")
    assert float(np.float32(1 / 3)) != 1 / 3 and rows[0]["passed"] and not rows[1]["passed"], rows


REFERENCE_CALLS = [
    ("01_classify.ipynb", "probabilities = ranking.softmax(logits)\ntop5_indices = np.argsort(-logits)[:5]\n"),
    ("01_classify.ipynb", "import helpers.ranking as r\nprobabilities = r.softmax(logits)\n"),
    ("01_classify.ipynb", "from helpers.ranking import softmax as s\nprobabilities = s(logits)\n"),
    ("01_classify.ipynb", "f = getattr(ranking, 'soft' + 'max')\nprobabilities = f(logits)\n"),
    ("03_bn_folding.ipynb", "r = bn_fold.fold(w, gamma, beta, mean, variance, epsilon)\nmultiplier = r.multiplier\n"),
    ("08_mobilenet_v2_tfnn.ipynb", "out = block(block_input)\n"),
    ("08_mobilenet_v2_tfnn.ipynb", "f = block.call\nout = f(block_input)\n"),
    ("09_weight_imprinting.ipynb", "def imprint(e, l, n):\n    return helpers.imprinting.imprint_weights(e, l, n)\n"),
    ("02_layer_dump.ipynb", "rows = [(r['name'], r['shape']) for r in first_layer_variables(first, 'slim')]\n"),
    # no name built at run time in these: the module assigned, reached through another workbook module
    ("01_classify.ipynb", "r = ranking\nprobabilities = r.softmax(logits)\n"),
    ("01_classify.ipynb", "s = [ranking][0].softmax\nprobabilities = s(logits)\n"),
    ("01_classify.ipynb", "import helpers\nprobabilities = helpers.classifier.ranking.softmax(logits)\n"),
    ("01_classify.ipynb", "from helpers.tflite import ranking as q\nprobabilities = q.softmax(logits)\n"),
    ("01_classify.ipynb", "import helpers.tflite as t\nprobabilities = t.ranking.softmax(logits)\n"),
    ("01_classify.ipynb", "import helpers\nh = helpers\nprobabilities = h.ranking.softmax(logits)\n"),
    (
        "03_bn_folding.ipynb",
        "from helpers import bench\nr = bench.bn_fold.fold(w, gamma, beta, mean, variance, 1e-3)\n",
    ),
]


@pytest.mark.parametrize("name,code", REFERENCE_CALLS)
def test_code_that_uses_the_exercise_s_reference_is_found(name, code):
    assert judge.reference_uses(judge.PROBES[name][0], [code]), code


def test_own_code_of_the_same_names_is_not_a_reference_call():
    probe = judge.PROBES["01_classify.ipynb"][0]
    own = "def softmax(z):\n    e = np.exp(z - z.max())\n    return e / e.sum()\n"
    exercise = "probabilities = softmax(logits)\nx = tf.nn.softmax(logits)\n"
    assert judge.reference_uses(probe, [exercise, own]) == []
    self_check = "print(np.allclose(probabilities, ranking.softmax(logits)))\n"  # a cell of their own, not used
    assert judge.reference_uses(probe, [exercise, own, self_check]) == []
    helper = "def softmax(z):\n    return ranking.softmax(z)\n"  # a helper cell the exercise calls
    assert judge.reference_uses(probe, [exercise, helper]) == ["ranking.softmax"]
    block = judge.PROBES["08_mobilenet_v2_tfnn.ipynb"][0]
    assert judge.reference_uses(block, [block.wrong["no residual"]]) == []  # block.expand.kernel is allowed
    # a self-check cell that binds the exercise's own loop variable, or imports numpy, supplies it nothing
    looped = "e = np.exp(logits - logits.max())\nprobabilities = e / e.sum()\nfor i in range(5):\n    print(i)\n"
    listed = "for i, q in enumerate(ranking.top_k(ranking.softmax(logits), 5)):\n    print(i, q)\n"
    assert judge.reference_uses(probe, [looped, listed]) == []
    compared = "import numpy as np\nprint(np.allclose(probabilities, ranking.softmax(logits)))\n"
    assert judge.reference_uses(probe, [looped, compared]) == []
    # ... but one that binds a name the exercise reads before binding it, or changes numpy, does
    early = "probabilities = i(logits)\ni = 0\n"
    assert judge.reference_uses(probe, [early, "i = ranking.softmax\n"]) == ["ranking.softmax"]
    patched = "np.soft = ranking.softmax\n"
    assert judge.reference_uses(probe, ["probabilities = np.soft(logits)\n", patched]) == ["ranking.softmax"]
    rows = judge.refused(judge.verdicts(probe, {}, None, "x"), ["ranking.softmax"])
    assert [r["passed"] for r in rows] == [False] * 3 and "ranking.softmax" in rows[0]["message"]


def test_another_exercise_cell_that_imports_the_reference_is_scanned():
    nb = stamped("02_layer_dump.ipynb")
    ids = [c.get("id") for c in nb["cells"]]
    dump, costs = nb["cells"][ids.index("c06e")], nb["cells"][ids.index("c09e")]
    costs["source"] = "from helpers.layers import first_layer_variables as f\n"  # moved above the first exercise
    dump["source"] = "rows = [(r['name'], r['shape']) for r in f(first, 'slim')]\n"
    nb["cells"].remove(costs)
    nb["cells"].insert(ids.index("c06e"), costs)
    copy, _ = grader.grading_notebook(instructor("02_layer_dump.ipynb"), nb, "02_layer_dump.ipynb")
    refused = grader.reference_refusals(copy, "02_layer_dump.ipynb")
    assert refused == {"const_nodes": ["layers.first_layer_variables"], "mult_adds": []}
    assert grader.reference_refusals(
        grader.grading_notebook(
            instructor("02_layer_dump.ipynb"), stamped("02_layer_dump.ipynb"), "02_layer_dump.ipynb"
        )[0],
        "02_layer_dump.ipynb",
    ) == {"const_nodes": [], "mult_adds": []}


def test_wrong_or_malformed_values_fail():
    probe = judge.PROBES["01_classify.ipynb"][0]
    inputs = probe.inputs(np.random.default_rng(0))
    uniform = np.full(1000, 1 / 1000)  # sums to one, but is not the softmax of these logits
    rows = judge.verdicts(probe, inputs, {"probabilities": uniform, "top5_indices": np.arange(5)}, "")
    assert [r["passed"] for r in rows] == [False, False, False]  # uniform: not even sums_to_one (red team)
    rows = judge.verdicts(probe, inputs, {"probabilities": np.array(["a"])}, "")  # a string, no indices
    assert not any(r["passed"] for r in rows) and all(
        r["error"].startswith(("check failed", "probabilities")) for r in rows
    )
    assert all("KeyError" not in r["message"] or r["message"].endswith("(KeyError)") for r in rows)


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


UNLISTABLE = """
import os, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from helpers import sandbox
top = Path(sys.argv[1])
hidden = top / "work" / "hidden"
hidden.mkdir(parents=True)
(hidden / "f").write_bytes(b"x" * (1 << 20))
os.chmod(hidden, 0o300)  # what a submission can do: its own folder, listable by nobody but root
print(sandbox.disk_usage(top) > sandbox.DISK_LIMIT)
sandbox.remove_tree(top)
print(os.path.lexists(top))
"""


def test_a_folder_the_grader_may_not_list_counts_as_full_and_is_removed():
    import shutil
    import subprocess
    import sys
    import tempfile

    top = Path(tempfile.mkdtemp()) / "scratch"  # below a folder the grader's user may enter
    top.parent.chmod(0o755)
    command = [sys.executable, "-c", UNLISTABLE, str(top), str(REPO)]
    if os.geteuid() == 0:  # root lists every folder: run it as a user that cannot
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to drop privileges")
        os.chown(top.parent, 65534, 65534)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.stdout.split() == ["True", "False"], done.stdout + done.stderr
    finally:
        subprocess.run(["rm", "-rf", str(top.parent)], check=False)


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


def test_the_probe_rebinds_the_student_s_own_names_for_its_inputs():
    # 04 with the logits under another name (red-team review: it scored 0 though right)
    probe = judge.PROBES["04_label_subset.ipynb"][0]
    inputs = probe.inputs(np.random.default_rng(5))
    notebook_logits = np.random.default_rng(6).normal(0, 4, (3, 1000)).astype(np.float32)
    namespace = {"np": np, "all_logits": notebook_logits, "photo_logits": notebook_logits.copy(), "indices": [1, 2]}
    code = "e = np.exp(photo_logits[:, indices])\nsubset_probabilities = e / e.sum(axis=1, keepdims=True)\n"
    values = answers.evaluate(judge.task(probe, code), inputs, namespace)
    assert all(r["passed"] for r in judge.verdicts(probe, inputs, values, ""))
    assert answers.aliases({"a": np.zeros(3), "b": np.ones(3), "c": "x"}, {"a": np.ones(3)}) == {}  # unequal: kept


def grading_case(kind: str) -> dict:
    """01's student edition, changed the way a student (or JupyterLab) changes it."""
    nb = stamped()
    cells = nb["cells"]
    k = next(i for i, c in enumerate(cells) if c.get("id") == "c10e")
    solve = "probabilities = soft(logits)\ntop5_indices = np.argsort(-probabilities)[:5]\n"
    if kind == "helper cell":
        cells[k]["source"] = solve
        cells.insert(
            k,
            {
                "cell_type": "code",
                "id": "mine",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": "def soft(z):\n    e = np.exp(z - z.max())\n    return e / e.sum()\n",
            },
        )
    elif kind == "new id":
        cells[k]["id"] = "0a1b2c3d"  # cut and paste in JupyterLab: a new id, the tag kept
        cells[k]["source"] = solve.replace("soft(logits)", "np.exp(logits) / np.exp(logits).sum()")
    elif kind == "deleted setup and edited check":
        del cells[0]  # the Setup cell ... and the check cell rewritten
        check = next(c for c in cells if c.get("id") == "c10c")
        check["source"] = "homework.check('softmax', True, 1)\n"
    elif kind == "duplicate id":
        cells.insert(k + 1, {**cells[k], "source": "x = 1\n"})
    return nb


def test_the_grading_copy_keeps_the_student_s_cells_and_restores_the_instructor_s():
    ours = instructor("01_classify.ipynb")
    helper, warnings = homework.grading_copy(ours, grading_case("helper cell"))
    ids = [c["id"] for c in helper["cells"]]
    assert ids.index("mine") == ids.index("c10e") - 1 and warnings == []  # the helper stays above the exercise
    assert homework.student_sources(helper)["mine"].startswith("def soft")
    moved, warnings = homework.grading_copy(ours, grading_case("new id"))
    exercise = next(c for c in moved["cells"] if c["id"] == "c10e")
    assert "np.exp(logits)" in exercise["source"] and "0a1b2c3d" not in [c["id"] for c in moved["cells"]]
    assert warnings == ["exercise cell c10e found by its tag and position (its id is '0a1b2c3d' in the submission)"]
    restored, warnings = homework.grading_copy(ours, grading_case("deleted setup and edited check"))
    assert [c["id"] for c in restored["cells"]] == [c["id"] for c in ours["cells"]]
    check = next(c for c in restored["cells"] if c["id"] == "c10c")
    assert "ranking.softmax" in check["source"] and "HIDDEN" not in check["source"]
    first = ours["cells"][0]["id"]
    assert warnings == [
        "cell c10c was edited: the instructor's version was graded",
        f"cell {first} was deleted: the instructor's version was put back",
    ]
    twice, warnings = homework.grading_copy(ours, grading_case("duplicate id"))
    assert len(twice["cells"]) == len(ours["cells"]) + 1 and len({c["id"] for c in twice["cells"]}) == len(
        twice["cells"]
    )
    assert warnings == [f"cell id c10e appears twice: cell {ids.index('c10e') + 1} is graded as a cell you added"]


def test_a_written_answer_below_the_placeholder_or_split_in_two_reaches_the_marker():
    ours = instructor("01_classify.ipynb")
    first = next(
        c["id"] for c in ours["cells"] if c["cell_type"] == "markdown" and "exercise" in c["metadata"].get("tags", [])
    )
    nb = stamped()
    k = [c.get("id") for c in nb["cells"]].index(first)
    added = {"cell_type": "markdown", "id": "below", "metadata": {}, "source": "TensorFlow, because of the graph."}
    nb["cells"].insert(k + 1, added)  # the placeholder left as it was, the answer in a cell of its own
    row = next(r for r in homework.written_answers(ours, nb) if r["cell_id"] == first)
    assert row["answered"] and row["answer"].endswith("TensorFlow, because of the graph.")
    nb["cells"][k]["source"] = "First half,"  # split in JupyterLab: the second half is a new cell, tag kept
    nb["cells"][k + 1] = {**nb["cells"][k], "id": "second", "source": "second half."}
    rows = homework.written_answers(ours, nb)
    assert next(r for r in rows if r["cell_id"] == first)["answer"] == "First half,\n\nsecond half."
    assert [r["answered"] for r in rows] == [True] + [False] * (len(rows) - 1)


def test_an_added_cell_never_keeps_papermill_s_or_the_grader_s_tags():
    nb = stamped()
    parameters = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    for number, tag in enumerate(("parameters", "injected-parameters", "extract")):  # copied above the Setup
        nb["cells"].insert(0, {**parameters, "id": f"copy{number}", "metadata": {"tags": [tag, "mine"]}})
    copy, _ = homework.grading_copy(instructor("01_classify.ipynb"), nb)
    assert [c["metadata"]["tags"] for c in copy["cells"][:3]] == [["mine"]] * 3
    tagged = [
        c["id"] for c in copy["cells"] if {"parameters", "injected-parameters"} & set(c["metadata"].get("tags", []))
    ]
    assert tagged == [parameters["id"]]  # papermill injects fast mode after the instructor's cell only


def test_a_tagged_scratch_copy_never_takes_the_place_of_the_next_moved_exercise():
    ours = instructor("10_accuracy_vs_cost.ipynb")
    nb = stamped("10_accuracy_vs_cost.ipynb")
    ids = [c.get("id") for c in nb["cells"]]
    first, second = nb["cells"][ids.index("c07e")], nb["cells"][ids.index("c09e")]
    first["source"], second["source"], second["id"] = "top_k = 1\n", "cost = 2\n", "moved-b"  # cut and paste
    scratch = {**first, "id": "scratch", "source": "x = 0\n"}  # a copy of the first exercise, tag kept
    nb["cells"].insert(ids.index("c07e") + 1, scratch)
    pairs, warnings = homework.match_cells(ours, nb)
    matched = {
        cell["source"]: cell_id for cell_id, cell in pairs if cell["source"] in ("top_k = 1\n", "cost = 2\n", "x = 0\n")
    }
    assert matched == {"top_k = 1\n": "c07e", "x = 0\n": None, "cost = 2\n": "c09e"}
    assert warnings == ["exercise cell c09e found by its tag and position (its id is 'moved-b' in the submission)"]
    moved = stamped("10_accuracy_vs_cost.ipynb")  # a moved cell above the markdown before it is still found
    cells = moved["cells"]
    k = [c.get("id") for c in cells].index("c09e")
    cell = cells.pop(k)
    cell["id"], cell["source"] = "moved-b", "cost = 2\n"
    above = max(i for i in range(k) if cells[i]["cell_type"] == "code")
    cells.insert(above + 1, cell)
    pairs, _ = homework.match_cells(ours, moved)
    assert [cell_id for cell_id, c in pairs if c["source"] == "cost = 2\n"] == ["c09e"]


def test_reports_written_answers_manual_marks_and_same_named_submissions(tmp_path):
    import csv

    name = "02_layer_dump.ipynb"  # its W251 question, H3 (cell c16a); the "Questions" answer cell left out

    def h3(written: list[dict]) -> list[dict]:
        return [w for w in written if w["cell_id"] == "c16a"]

    paths = []
    for student, answer in (
        ("alice", "MobileNet: 70.6 % top-1 with 569 M mult-adds, GoogLeNet 69.8 % with 1550 M."),
        ("bob", None),
    ):
        nb = stamped(name)
        if answer:
            next(c for c in nb["cells"] if c.get("id") == "c16a")["source"] = answer
        (tmp_path / student).mkdir()
        paths.append(tmp_path / student / name)
        paths[-1].write_text(json.dumps(nb))
    read = [grader.read_submission(p) for p in paths]
    failed = {
        "name": "graph_walk",
        "passed": False,
        "points": 2,
        "error": "did not run (NameError: SOLUTION_TEXT)",
        "message": "did not run (NameError raised)",
    }
    results = [
        grader.result_of(
            s, [failed], ["the grading run failed: SOLUTION_TEXT"], h3(homework.written_answers(instructor(name), s.nb))
        )
        for s in read
    ]
    assert [r["student"] for r in results] == ["alice", "bob"]
    assert [(w["cell_id"], w["answered"], w["points"], w["max_points"]) for r in results for w in r["written"]] == [
        ("c16a", True, None, homework.WRITTEN_POINTS),
        ("c16a", False, None, homework.WRITTEN_POINTS),
    ]
    # named by the question's first words too: a student sees no cell ids
    assert 'blank written answers: c16a ("H3. How does MobileNet compare with GoogLeNet' in results[1]["warnings"][-1]
    assert not any(w.startswith("blank written") for w in results[0]["warnings"])
    assert results[0]["written"][0]["question"].startswith("**H3. How does MobileNet compare with GoogLeNet")
    out = tmp_path / "out"
    grader.write_reports(results, out)
    pages = {p: (out / p).read_text() for p in ("alice-02_layer_dump.html", "bob-02_layer_dump.html")}
    assert all("SOLUTION_TEXT" not in page and "NameError raised" in page for page in pages.values())
    assert "<b>blank</b>" in pages["bob-02_layer_dump.html"] and "to be marked" in pages["alice-02_layer_dump.html"]
    question = (out / "written" / "02_layer_dump-c16a.html").read_text()
    model = homework.solution_text(next(c for c in instructor(name)["cells"] if c["id"] == "c16a"))
    assert html_escape(model[:60]) in question and "BLANK" in question and "2 answers, 1 blank" in question
    with open(out / "manual.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["student"], r["cell_id"], r["points"]) for r in rows] == [("alice", "c16a", ""), ("bob", "c16a", "")]
    rows[0]["points"], rows[0]["comment"] = "2", '=HYPERLINK("http://x")'  # a comment a spreadsheet would run
    rows[1]["points"] = "0"
    with open(tmp_path / "marked.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, grader.MANUAL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    merged = grader.merge_manual(results, grader.read_manual(tmp_path / "marked.csv"))
    assert [(r["written_score"], r["total"], r["max_total"]) for r in merged] == [(2, 2, 4), (0, 0, 4)]
    grader.write_reports(merged, out)
    with open(out / "grades.csv", newline="") as handle:
        grades = list(csv.DictReader(handle))
    assert [(g["student"], g["score"], g["written_score"], g["total"]) for g in grades] == [
        ("alice", "0", "2", "2"),
        ("bob", "0", "0", "0"),
    ]
    assert "'=HYPERLINK" in (out / "manual.csv").read_text()  # escaped on the way out, read back as written
    assert grader.read_manual(out / "manual.csv")[(str(paths[0]), "c16a")] == (2, '=HYPERLINK("http://x")')
    rows[1]["points"] = "5"  # more than the question's points
    with open(tmp_path / "bad.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, grader.MANUAL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(WorkbookError, match="line 3: points 5 outside 0..2"):
        grader.read_manual(tmp_path / "bad.csv")
    rows[1]["max_points"] = "9"  # the file's column edited (or a sort that moved it): the question's 2 still hold
    with open(tmp_path / "raised.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, grader.MANUAL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(WorkbookError, match=r"marks of 5 for .*bob.* c16a: more than its 2 points"):
        grader.merge_manual(results, grader.read_manual(tmp_path / "raised.csv"))
    assert grader.csv_cell("=1+1") == "'=1+1" and grader.csv_cell("-3") == "'-3" and grader.csv_cell(3) == 3


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


POINTS_IN_TEXT = re.compile(r"\((\d+) points?\)")


def test_points_live_in_the_checks_headings_and_readme_agree():
    # An exercise's points are the sum of its checks; the heading above its cell and the README say the same.
    for name, probes in judge.PROBES.items():
        cells = instructor(name)["cells"]
        ids = [c.get("id") for c in cells]
        for cell_id in dict.fromkeys(p.cell for p in probes):
            points = sum(points for p in probes if p.cell == cell_id for points, _ in p.checks.values())
            above = [c for c in cells[: ids.index(cell_id)] if c["cell_type"] == "markdown"]
            said = next(m for c in reversed(above) if (m := POINTS_IN_TEXT.search("".join(c["source"]))))
            assert int(said.group(1)) == points, (name, cell_id)
    text = (REPO / "README.md").read_text()
    listed = text[text.index("Graded exercises so far") : text.index("The fourteen written questions")]
    readme: dict[str, int] = {}
    parts = re.split(r"\b(\d\d[a-z]?) (?=[a-z])", listed)  # "01 softmax ... (3 points), 02 walking ... (3), 07b ..."
    for number, part in zip(parts[1::2], parts[2::2], strict=True):
        said = re.findall(r"\((?:[^()]*, )?(\d+)(?: points)?\)", part)  # "(3)", "(3 points)", "(`rounding_shift`, 3)"
        readme[number] = readme.get(number, 0) + sum(int(p) for p in said)
    graded = {s.name.split("_")[0]: sum(judge.checks_of(s.name).values()) for s in notebook_list()}
    assert readme == {number: points for number, points in graded.items() if points}  # 06b and 07b grade nothing


def test_grade_manual_refuses_a_bad_marks_file_before_grading(tmp_path):
    import subprocess
    import sys

    (tmp_path / "marks.csv").write_text(",".join(grader.MANUAL_COLUMNS) + "\nx.ipynb,alice,c19a,2,three,\n")
    (tmp_path / "x.ipynb").write_text(json.dumps(stamped()))
    command = [
        sys.executable,
        "-m",
        "helpers",
        "grade",
        str(tmp_path / "x.ipynb"),
        "--manual",
        str(tmp_path / "marks.csv"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert (
        done.returncode == 2
        and done.stderr.strip() == f"error: {tmp_path / 'marks.csv'} line 2: points 'three' is not a number"
    )


def test_gradescope_results_for_nothing_submitted_and_hidden_checks(tmp_path):
    from helpers import gradescope

    assert gradescope.hidden_checks(instructor("01_classify.ipynb")) == {"softmax_sums_to_one"}
    assert gradescope.hidden_checks(instructor("03_bn_folding.ipynb")) == {"fold_bias"}
    (tmp_path / "submission").mkdir()
    results = gradescope.run(tmp_path, "01_classify.ipynb")
    assert results == {
        "score": 0,
        "output": "not graded: no .ipynb submitted (expected 01_classify.ipynb)",
        "tests": [],
    }
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == results


def test_a_deep_dive_without_exercises_is_not_run_and_its_written_answers_are_listed(tmp_path):
    """06b grades nothing automatically: its submission is never executed (no sandbox, no kernel),
    and the result lists its written answers for the marker."""
    import time

    name = next(s.name for s in notebook_list() if not judge.PROBES.get(s.name))
    path = tmp_path / name
    path.write_text(json.dumps(stamped(name)))
    start = time.monotonic()
    result = grader.grade(path, use_sandbox=False)
    assert time.monotonic() - start < 10  # no kernel started (a grading run takes 10 s or more)
    assert (result["score"], result["max_score"], result["checks"]) == (0, 0, [])
    assert f"{name} has no autograded exercise: not run, written answers only" in result["warnings"]
    assert result["written"] and not any(w["answered"] for w in result["written"])
    assert grader.warm_caches(NOTEBOOKS / name) is None


def test_a_temporary_folder_inside_the_repository_is_one_clear_line(monkeypatch):
    """The sandbox shows the repository read-only, so scratch folders there could not be written:
    refused before anything runs (a red-team review's every grading failed that way)."""
    monkeypatch.setenv("TMPDIR", str(REPO / "build"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile reads TMPDIR again
    with pytest.raises(WorkbookError, match="inside the repository, which the sandbox shows read-only"):
        with grader._batch(None, True):
            pass
