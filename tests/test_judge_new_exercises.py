"""The graded exercises of issue 21 (02 multiply-adds, 05 the challenger, 10 the cost model): each
probe passes the model answer and fails every likely wrong answer, judged in process as the grader
judges (the probe's collect code on inputs it drew, then :func:`helpers.judge.verdicts`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import answers, homework, judge
from helpers.paths import NOTEBOOKS


def probe_of(notebook: str, name: str) -> judge.Probe:
    (probe,) = [p for p in judge.PROBES[notebook] if p.name == name]
    return probe


def solution(notebook: str, cell: str) -> str:
    cells = homework.exercise_cells(json.loads((NOTEBOOKS / notebook).read_text()))
    return "".join(cells[cell]["source"])


def judged(probe: judge.Probe, code: str, namespace: dict | None = None, seed: int = 3) -> dict[str, bool]:
    """``check name -> passed`` for an exercise cell's code, as the grader would judge it."""
    inputs = probe.inputs(np.random.default_rng(seed))
    namespace = dict(namespace or {"np": np})
    exec(code, namespace)
    try:
        values = answers.evaluate(judge.task(probe, code), inputs, namespace)
    except Exception as error:  # a crash in the collect code: nothing reported
        return {r["name"]: r["passed"] for r in judge.verdicts(probe, inputs, None, type(error).__name__)}
    return {r["name"]: r["passed"] for r in judge.verdicts(probe, inputs, values, "")}


# 02 multiply-adds of a standard and a depthwise-separable layer ------------------------------------
COSTS = "02_layer_dump.ipynb"
OUT = "out_h, out_w = -(-h // stride), -(-w // stride)\n    "
STANDARD = "def standard_mult_adds(dk, m, n, h, w, stride=1):\n    {out}return {expr}\n"
SEPARABLE = "def separable_mult_adds(dk, m, n, h, w, stride=1):\n    {out}return {expr}\n"
RIGHT_STANDARD = STANDARD.format(out=OUT, expr="dk * dk * m * n * out_h * out_w")
RIGHT_SEPARABLE = SEPARABLE.format(out=OUT, expr="(dk * dk * m + m * n) * out_h * out_w")

WRONG_STANDARD = {
    "ignores the stride": STANDARD.format(out="", expr="dk * dk * m * n * h * w"),
    "floor instead of ceil": STANDARD.format(out="out_h, out_w = h // stride, w // stride\n    ",
                                             expr="dk * dk * m * n * out_h * out_w"),
    "square map (h * h)": STANDARD.format(out=OUT, expr="dk * dk * m * n * out_h * out_h"),
    "forgets the input channels": STANDARD.format(out=OUT, expr="dk * dk * n * out_h * out_w"),
    "dk instead of dk squared": STANDARD.format(out=OUT, expr="dk * m * n * out_h * out_w"),
}
WRONG_SEPARABLE = {
    "forgets the pointwise layer": SEPARABLE.format(out=OUT, expr="dk * dk * m * out_h * out_w"),
    "depthwise mixes channels (times n)": SEPARABLE.format(out=OUT, expr="(dk * dk * m * n + m * n) * out_h * out_w"),
    "pointwise with a dk x dk kernel": SEPARABLE.format(out=OUT, expr="dk * dk * (m + m * n) * out_h * out_w"),
    "ignores the stride": SEPARABLE.format(out="", expr="(dk * dk * m + m * n) * h * w"),
    "floor instead of ceil": SEPARABLE.format(out="out_h, out_w = h // stride, w // stride\n    ",
                                              expr="(dk * dk * m + m * n) * out_h * out_w"),
    "the paper's ratio times a standard conv on the input map": SEPARABLE.format(
        out=OUT, expr="(1 / n + 1 / dk**2) * dk * dk * m * n * h * w"
    ),
}


def test_02_model_answer_passes():
    probe = probe_of(COSTS, "mult_adds")
    assert judged(probe, solution(COSTS, probe.cell)) == {"standard_mult_adds": True, "separable_mult_adds": True}
    assert judged(probe, RIGHT_STANDARD + RIGHT_SEPARABLE) == {"standard_mult_adds": True, "separable_mult_adds": True}


@pytest.mark.parametrize("mistake", list(WRONG_STANDARD))
def test_02_wrong_standard_cost_loses_its_point(mistake):
    got = judged(probe_of(COSTS, "mult_adds"), WRONG_STANDARD[mistake] + RIGHT_SEPARABLE)
    assert got == {"standard_mult_adds": False, "separable_mult_adds": True}, mistake


@pytest.mark.parametrize("mistake", list(WRONG_SEPARABLE))
def test_02_wrong_separable_cost_loses_its_points(mistake):
    got = judged(probe_of(COSTS, "mult_adds"), RIGHT_STANDARD + WRONG_SEPARABLE[mistake])
    assert got == {"standard_mult_adds": True, "separable_mult_adds": False}, mistake


def test_02_references_are_what_layer_costs_counts():
    """The judge's closed forms equal helpers.costs.layer_costs on real Keras layers (SAME padding,
    odd and unequal sides, strides 1 and 2), so the grader checks against the notebook's counter."""
    import keras

    from helpers import costs

    shapes = judge._cost_shapes(np.random.default_rng(0))["cost_shapes"][:6]
    for dk, m, n, h, w, stride in shapes.tolist():
        stem = [keras.Input((h, w, m))]
        standard = keras.Sequential([*stem, keras.layers.Conv2D(n, dk, strides=stride, padding="same")])
        separable = keras.Sequential(
            [*stem, keras.layers.DepthwiseConv2D(dk, strides=stride, padding="same"), keras.layers.Conv2D(n, 1)]
        )
        shape = [[dk, m, n, h, w, stride]]
        assert sum(r.mult_adds for r in costs.layer_costs(standard)) == judge.standard_reference(shape)[0]
        assert sum(r.mult_adds for r in costs.layer_costs(separable)) == judge.separable_reference(shape)[0]


# 10 the cost model alpha^2 rho^2 -------------------------------------------------------------------
SCALING = "10_accuracy_vs_cost.ipynb"
COST_MODEL = "def scaled_mult_adds(base, alpha, resolution):\n    return {expr}\n"
ALL_THREE = {"cost_model_alpha": True, "cost_model_resolution": True, "cost_model": True}
WRONG_COST_MODELS = {  # the checks each mistake must fail
    "linear in alpha": ("base * alpha * (resolution / 224) ** 2", {"cost_model_alpha", "cost_model"}),
    "linear in rho": ("base * alpha**2 * resolution / 224", {"cost_model_resolution", "cost_model"}),
    "rho not divided by 224": ("base * alpha**2 * resolution**2", set(ALL_THREE)),
    "rho upside down": ("base * alpha**2 * (224 / resolution) ** 2", {"cost_model_resolution", "cost_model"}),
    "rho from 128 pixels": ("base * alpha**2 * (resolution / 128) ** 2", set(ALL_THREE)),
    "ignores the resolution": ("base * alpha**2", {"cost_model_resolution", "cost_model"}),
    "ignores alpha": ("base * (resolution / 224) ** 2", {"cost_model_alpha", "cost_model"}),
    "rounded": ("round(base * alpha**2 * (resolution / 224) ** 2)", set(ALL_THREE)),
    "adds the two factors": ("base * (alpha**2 + (resolution / 224) ** 2) / 2", set(ALL_THREE)),
}


def test_10_model_answer_passes():
    probe = probe_of(SCALING, "cost_model")
    assert judged(probe, solution(SCALING, probe.cell)) == ALL_THREE
    right = COST_MODEL.format(expr="base * alpha**2 * (resolution / 224) ** 2")
    assert all(judged(probe, right, seed=seed) == ALL_THREE for seed in range(5))  # other draws too


@pytest.mark.parametrize("mistake", list(WRONG_COST_MODELS))
def test_10_each_wrong_cost_model_loses_points(mistake):
    expr, failing = WRONG_COST_MODELS[mistake]
    got = judged(probe_of(SCALING, "cost_model"), COST_MODEL.format(expr=expr))
    assert {name for name, passed in got.items() if not passed} == failing, mistake


# 05 the student's CNN challenger, judged by behaviour ----------------------------------------------
MNIST = "05_mnist.ipynb"
CNN = """
def cnn_challenger():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D({filters}, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10{last}),
    ], name="{name}")
"""
DENSE_ONLY = """
def cnn_challenger():
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)],
                            name="cnn_challenger")
"""
OTHER_DESIGN = CNN.format(filters=16, last="", name="cnn_challenger")  # fewer filters: another fine design
WRONG_LAST_LAYER = {  # the output squashed while the loss takes logits: trains, but the outputs are not logits
    "softmax on the last Dense": CNN.format(filters=16, last=', activation="softmax"', name="cnn_challenger"),
    "ReLU on the last Dense": CNN.format(filters=16, last=', activation="relu"', name="cnn_challenger"),
    "sigmoid on the last Dense": CNN.format(filters=16, last=', activation="sigmoid"', name="cnn_challenger"),
    "tanh on the last Dense": CNN.format(filters=16, last=', activation="tanh"', name="cnn_challenger"),
}


@pytest.fixture(scope="module")
def fast_split():
    """The notebook's fast-mode data: 5,500 training and 500 validation digits."""
    from helpers.datasets import load_mnist

    (x, y), _ = load_mnist()
    x = (x[:6000].astype("float32") / 255.0)[..., None]
    return x[:-500], y[:6000][:-500], x[-500:]


def trained_namespace(code: str, split) -> dict:
    """The notebook's namespace after its training cell, for a cnn_challenger written as ``code``."""
    import keras

    from helpers.seed import set_seed

    x_train, y_train, x_val = split
    namespace = {"np": np, "keras": keras}
    exec(code, namespace)
    set_seed()
    model = namespace["cnn_challenger"]()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    model.fit(x_train, y_train, epochs=1, batch_size=128, verbose=0)  # as fast mode trains
    namespace |= {"trained": {model.name: model}, "x_val": x_val}
    return namespace


def test_05_the_model_answer_and_another_design_pass(fast_split):
    import keras

    for code in (solution(MNIST, "c06e"), OTHER_DESIGN):
        assert judged(probe_of(MNIST, "architecture"), code, {"np": np, "keras": keras}) == {
            "cnn_is_convolutional": True
        }
        got = judged(probe_of(MNIST, "behaviour"), "", trained_namespace(code, fast_split))
        assert got == {"cnn_outputs_logits": True, "cnn_val_accuracy": True}


@pytest.mark.parametrize("mistake", list(WRONG_LAST_LAYER))
def test_05_a_squashed_output_loses_the_logits_point(mistake, fast_split):
    got = judged(probe_of(MNIST, "behaviour"), "", trained_namespace(WRONG_LAST_LAYER[mistake], fast_split))
    assert got["cnn_outputs_logits"] is False, mistake


def test_05_no_convolution_wrong_name_or_outputs_lose_the_architecture_point():
    import keras

    for code in (
        DENSE_ONLY,
        CNN.format(filters=16, last="", name="sequential"),
        CNN.format(filters=16, last="", name="cnn_challenger").replace("Dense(10", "Dense(1"),
    ):
        assert judged(probe_of(MNIST, "architecture"), code, {"np": np, "keras": keras}) == {
            "cnn_is_convolutional": False
        }


def test_05_accuracy_is_judged_on_the_grader_s_digits_and_labels():
    from helpers.datasets import load_mnist

    probe = probe_of(MNIST, "behaviour")
    inputs = probe.inputs(np.random.default_rng(1))
    (_, y), _ = load_mnist()
    for size, total in judge.MNIST_VAL.items():
        chosen = inputs["val_digits"][inputs["val_digits"] < size]
        truth = y[:total][-size:][chosen]
        right = np.eye(10)[truth] * 8 - 4  # logits that pick the true digit
        shifted = np.eye(10)[(truth + 1) % 10] * 8 - 4  # off by one digit: every answer wrong
        rows = judge.verdicts(probe, inputs, {"val_size": np.array(size), "val_logits": right}, "")
        assert all(r["passed"] for r in rows), (size, rows)
        rows = judge.verdicts(probe, inputs, {"val_size": np.array(size), "val_logits": shifted}, "")
        assert [r["passed"] for r in rows] == [True, False], size
    rows = judge.verdicts(probe, inputs, {"val_size": np.array(7), "val_logits": np.zeros((0, 10))}, "")
    assert not any(r["passed"] for r in rows)  # a split of another size is not the notebook's


def test_the_modules_probe_code_uses_are_imported_by_the_notebook():
    """A probe's setup and collect code run in the notebook's namespace: the ``np``, ``tf`` and
    ``keras`` they use must be imported by the notebook's first cell (ruff drops an import no cell
    uses, and the grader would then report "did not run (NameError)" for a right answer)."""
    import re

    imports = {"np": "import numpy as np", "tf": "import tensorflow as tf", "keras": "import keras"}
    for name, probes in judge.PROBES.items():
        cells = json.loads((NOTEBOOKS / name).read_text())["cells"]
        first = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
        for probe in probes:
            for module, line in imports.items():
                if re.search(rf"\b{module}\.", probe.setup + probe.collect):
                    assert line in first.splitlines(), (name, probe.name, module)
