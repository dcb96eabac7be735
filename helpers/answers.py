"""The graded facts of a submission, written as plain data inside the grading sandbox.

This is the untrusted side of grading: it runs in the student's kernel. A grading copy of a
notebook has one *extract* cell after each probe point, ``answers.extract("<probe>")``, which
re-runs the probed exercise's code (or calls the student's function) on the inputs the grader chose
(``inputs_<probe>.npz`` in the read-only task folder) and writes the named values to
``answers_<probe>.npz`` in the writable folder (``<probe>.error`` with one line when that fails).
Nothing is judged here: the trusted :mod:`helpers.judge` compares the values with references it
computes itself, outside the sandbox. ``python -m helpers.answers GRADING EXECUTED`` is the
sandbox's command: papermill in fast mode, errors allowed, each cell's output capped.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

TASK_ENV = "WORKBOOK_TASK"  # the read-only folder with task.json and the inputs
ANSWERS_ENV = "WORKBOOK_ANSWERS"  # the writable folder for the answers
PLAIN_KINDS = "biufU"  # bool, int, uint, float, str: what np.load(allow_pickle=False) reads back
OUTPUT_LIMIT = 4 << 20  # characters of output kept per cell (a figure is a few hundred kB); the rest is dropped
TOTAL_OUTPUT_LIMIT = 32 << 20  # characters of output kept in all


def evaluate(task: dict, inputs: dict[str, np.ndarray], namespace: dict) -> dict[str, np.ndarray]:
    """Run one probe (``setup``, the exercise's ``source``, ``collect``) in a copy of ``namespace``
    with ``inputs`` bound over it; its ``outputs`` as plain arrays (a non-numeric one raises)."""
    namespace = dict(namespace)
    namespace.update(aliases(namespace, inputs))
    namespace.update(inputs)
    for part in (task["setup"], python_source(task["source"]), task["collect"]):
        exec(compile(part, "<probe>", "exec"), namespace)
    values = {}
    for name in task["outputs"]:
        value = np.asarray(namespace[name])
        if value.dtype.kind not in PLAIN_KINDS:
            raise TypeError(f"{name} is not an array of numbers ({value.dtype})")
        values[name] = value
    return values


def aliases(namespace: dict, inputs: dict[str, np.ndarray]) -> dict[str, object]:
    """The student's other names for the probe's inputs, rebound to the inputs: a variable that holds
    the same object as an input's name in ``namespace``, or an equal array or list of numbers
    (``photos_logits = all_logits``, or the same logits computed again). Code that reads its own
    name for an input is then re-run on the grader's inputs too."""
    rebound: dict[str, object] = {}
    for name, value in inputs.items():
        original = namespace.get(name)
        if not isinstance(original, np.ndarray | list | tuple) or np.size(original) < 2:
            continue
        try:
            shape, kind = np.shape(original), np.asarray(original).dtype.kind
        except (ValueError, TypeError):
            continue
        if kind not in "biuf":
            continue
        for other, held in namespace.items():
            if other == name or other.startswith("_") or other in inputs:
                continue
            same = held is original
            if not same and isinstance(held, list | tuple) and len(held) != len(original):
                continue  # never convert a long list of other things
            if not same and isinstance(held, np.ndarray | list | tuple):
                try:
                    same = np.shape(held) == shape and bool(np.array_equal(np.asarray(held), np.asarray(original)))
                except (ValueError, TypeError):
                    same = False
            if same:
                rebound[other] = value.tolist() if isinstance(held, list) else value
    return rebound


TIMING_MAGICS = ("%%time", "%%timeit", "%%capture")  # cell magics that only wrap the cell's code


def python_source(cell: str) -> str:
    """A cell's code as plain Python, as IPython would run it: a leading ``%%time``/``%%timeit``/
    ``%%capture`` line dropped (its body is the code), other magics and ``!`` lines turned into
    ``get_ipython()`` calls."""
    from IPython.core.inputtransformer2 import TransformerManager

    lines = cell.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].split(maxsplit=1)[0] in TIMING_MAGICS:
        cell = "".join(lines[:first] + lines[first + 1 :])
    return TransformerManager().transform_cell(cell)


def extract(probe: str) -> None:
    """Evaluate one probe of the task in the notebook's namespace and write its values (see the
    module docstring); a failure is written as one line for the grader, not raised."""
    from IPython import get_ipython

    answers, task_dir = Path(os.environ[ANSWERS_ENV]), Path(os.environ[TASK_ENV])
    try:
        task = json.loads((task_dir / "task.json").read_text())[probe]
        with np.load(task_dir / f"inputs_{probe}.npz", allow_pickle=False) as npz:
            inputs = {name: npz[name] for name in npz.files}
        np.savez(answers / f"answers_{probe}.npz", **evaluate(task, inputs, get_ipython().user_ns))
        print(f"answers for {probe} written")
    except BaseException as error:  # noqa: B036 (SystemExit too: the grader reads the reason)
        line = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        (answers / f"{probe}.error").write_text(line[:300])
        print(f"answers for {probe} not written: {line}"[:300])


def _cap_outputs() -> None:
    """Keep at most :data:`OUTPUT_LIMIT` characters of output per cell and :data:`TOTAL_OUTPUT_LIMIT`
    in all (in papermill's memory and the executed copy, which stays below the sandbox's file-size
    limit); one stderr line says where output was dropped."""
    from nbclient.client import NotebookClient

    original = NotebookClient.output
    sizes: dict[int, int] = {}

    def capped(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {})))
        before, total = sizes.get(cell_index, 0), sum(sizes.values())
        sizes[cell_index] = before + size
        if before + size <= OUTPUT_LIMIT and total + size <= TOTAL_OUTPUT_LIMIT:
            return original(self, outs, msg, display_id, cell_index)
        if before <= OUTPUT_LIMIT and total <= TOTAL_OUTPUT_LIMIT:
            sizes[cell_index] = OUTPUT_LIMIT + 1  # one notice per cell
            header = {**msg["header"], "msg_type": "stream"}
            notice = {"name": "stderr", "text": "[output capped by the grader]\n"}
            return original(
                self, outs, {**msg, "header": header, "msg_type": "stream", "content": notice}, None, cell_index
            )
        return None

    NotebookClient.output = capped


def main(argv: list[str]) -> int:
    """Execute a grading copy (fast mode, errors allowed, capped output)."""
    from .notebooks import execute

    if len(argv) != 2:
        print("usage: python -m helpers.answers GRADING.ipynb EXECUTED.ipynb", file=sys.stderr)
        return 2
    _cap_outputs()
    execute(argv[0], argv[1], {"fast": True}, allow_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
