"""The trusted side of grading: what each graded check asks of a submission, and its verdict.

:data:`PROBES` is the machine-readable description, per notebook, of every graded fact: a probe
names the exercise cell whose code it re-runs (``rerun``) or whose function it calls, the cell after
which its extract cell goes, the inputs the grader draws afresh for every submission (``inputs``),
code run before and after the student's code inside the sandbox (``setup``, ``collect``), the
values it reads back (``outputs``) and the checks judged on them here, each ``name -> (points,
verdict)``. A verdict sees the inputs and the returned values only, never the student's kernel,
and compares them with a reference computed here by the workbook's tested code; it returns a bool
or a :class:`Result` whose message says what was expected and what came back (:func:`compare`,
with a :class:`Tolerance` that states its reason). ``notes`` says where a check is judged
differently from the notebook's own ``homework.check``; ``wrong`` and ``right`` list likely wrong
answers and correct ones in other styles (tested in-process); ``references`` the workbook functions
a submission may not use for the exercise (:func:`reference_uses`). The check names
and points are those of the instructor notebook's ``homework.check`` calls (tested), so the
instructor edition under ``make test`` and the grader agree on what is graded.

This module (with :mod:`helpers.grader`) is left out of the sandbox's copy of the workbook: the
hidden tests live here, not in anything a submission can read.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Result:
    """A verdict with the words the student sees when it fails (expected and got, or a hint)."""

    passed: bool
    message: str = ""


Verdict = Callable[[Arrays, Arrays], "bool | Result"]


@dataclass(frozen=True)
class Tolerance:
    """How close a numeric answer must be to the reference, and why that close."""

    rtol: float
    atol: float
    reason: str


# float32 keeps 24 bits (relative rounding 6e-8 per operation): a float32 answer of a few hundred
# operations stays within 1e-5 relative of the float64 reference; every likely wrong answer listed
# in Probe.wrong is off by far more (tested).
FLOAT32 = Tolerance(1e-5, 1e-8, "float32 results accepted (1e-5 relative)")


@dataclass(frozen=True)
class Probe:
    """One extraction point of a notebook and the checks judged on what it returns.

    ``wrong`` lists the likely wrong answers of the exercise (description -> the exercise cell's
    code with that bug) and ``right`` correct answers in other styles: tests/test_grader.py runs
    each through the judge (every wrong one loses points, every right one earns them all).
    ``references`` are the workbook functions that compute the exercise (``"module.function"``,
    or ``"name()"`` for a call of an object the notebook made): a submission whose code uses one
    earns 0 for the exercise (:func:`reference_uses`)."""

    name: str
    cell: str  # the exercise cell (its id in the instructor notebook)
    after: str  # the cell after which the extract cell runs
    inputs: Callable[[np.random.Generator], Arrays]
    outputs: tuple[str, ...]
    checks: dict[str, tuple[int, Verdict]]
    rerun: bool = True  # re-run the exercise cell's code on the inputs (else: only setup/collect)
    setup: str = ""
    collect: str = ""
    notes: dict[str, str] = field(default_factory=dict)
    wrong: dict[str, str] = field(default_factory=dict)
    right: dict[str, str] = field(default_factory=dict)
    references: tuple[str, ...] = ()


def _close(a, b, **tolerance) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype.kind in "biuf" and bool(np.allclose(a, b, **tolerance))


def compare(name: str, got: object, expected: object, tolerance: Tolerance) -> Result:
    """``got`` against ``expected`` within ``tolerance``; on failure the message says what was
    expected and what came back (shape, kind, or the worst element)."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.dtype.kind not in "biuf":
        return Result(False, f"{name}: expected numbers, got {got.dtype} values")
    if got.shape != expected.shape:
        return Result(False, f"{name}: expected shape {expected.shape}, got {got.shape}")
    if np.allclose(got, expected, rtol=tolerance.rtol, atol=tolerance.atol):
        return Result(True)
    error = np.abs(got.astype(np.float64) - expected) - tolerance.rtol * np.abs(expected)
    worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(error), np.inf, error))), got.shape or (1,))
    at = f" at index {tuple(int(k) for k in worst)}" if got.ndim else ""
    pick = (lambda a: a[worst]) if got.ndim else (lambda a: a)
    return Result(
        False,
        f"{name}{at}: expected {float(pick(expected)):.6g}, got {float(pick(got)):.6g} "
        f"(tolerance rtol {tolerance.rtol:g}, atol {tolerance.atol:g}: {tolerance.reason})",
    )


def _monotone(p: np.ndarray, logits: np.ndarray) -> bool:
    """Whether each row of ``p`` ranks like ``logits`` (a higher logit never gets less) and is not
    constant: a uniform answer is not a softmax of varied logits."""
    order = np.argsort(logits, axis=-1, kind="stable")
    ranked = np.take_along_axis(np.asarray(p, np.float64), order, -1)
    return bool(np.all(np.diff(ranked, axis=-1) >= 0) and np.all(np.ptp(ranked, axis=-1) > 0))


# 01 softmax and top-5 -----------------------------------------------------------------------------
def _logits(rng):
    return {"logits": (rng.normal(0, 3, 1000)).astype(np.float32)}


def _softmax_ok(i, o):
    from .ranking import softmax

    return compare("probabilities", o["probabilities"], softmax(i["logits"].astype(np.float64)), FLOAT32)


def _top5_ok(i, o):
    from .ranking import softmax, top_k

    expected = [p.index for p in top_k(softmax(i["logits"].astype(np.float64)), 5)]
    got = np.asarray(o["top5_indices"]).tolist()
    return Result(got == expected, f"top5_indices: expected {expected}, got {got}")


def _sums_to_one(i, o):
    """Sums to one and ranks like the logits: a softmax up to its temperature (a uniform answer,
    or exp without the division, earns nothing here)."""
    p = np.asarray(o["probabilities"])
    if p.dtype.kind != "f" or p.shape != i["logits"].shape:
        return Result(False, f"probabilities: expected {i['logits'].shape} floats, got {p.shape} {p.dtype}")
    if abs(float(p.sum()) - 1.0) >= 1e-5:  # float32 sums of 1000 terms: 1e-5 accepted
        return Result(False, f"probabilities: expected a sum of 1, got {float(p.sum()):.6g}")
    return Result(_monotone(p, i["logits"]), "probabilities: a higher logit must get a higher probability")


# 02 Const nodes of a frozen graph -----------------------------------------------------------------
_GRAPH_SETUP = """
graph = tf.compat.v1.GraphDef()
for _name, _op, _shape in zip(graph_names, graph_ops, graph_shapes):
    _node = graph.node.add()
    _node.name, _node.op = str(_name), str(_op)
    if _node.op == "Const":
        _value = np.zeros([int(s) for s in str(_shape).split(",")], np.float32)
        _node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(_value))
first = int(first)
"""
_GRAPH_COLLECT = """
row_names = [str(name) for name, _ in rows]
row_shapes = [",".join(str(int(s)) for s in shape) for _, shape in rows]
"""


def _graph(rng):
    names, ops, shapes = ["input", "global_step"], ["Placeholder", "Const"], ["", "1"]  # a Const outside the layers
    channels = 3
    for layer in range(int(rng.integers(4, 7))):
        scope = f"MobilenetV1/Conv2d_{layer}" + ("" if layer == 0 else rng.choice(["_depthwise", "_pointwise"]))
        out = int(rng.integers(2, 9))
        kernel = "depthwise_weights" if scope.endswith("_depthwise") else "weights"
        side = int(rng.integers(1, 4))
        shape = f"3,3,{channels},1" if kernel == "depthwise_weights" else f"{side},3,{channels},{out}"
        rows = [(f"{scope}/{kernel}", shape)] + [
            (f"{scope}/BatchNorm/{p}", str(out if kernel == "weights" else channels))
            for p in ("gamma", "beta", "moving_mean", "moving_variance")
        ]
        for name, shape_text in rows:
            names += [name, f"{name}/read"]
            ops += ["Const", "Identity"]
            shapes += [shape_text, ""]
        names += [f"{scope}/Relu6", f"Other/{layer}/weights"]
        ops += ["Relu6", "Const"]
        shapes += ["", "2"]
        channels = out if kernel == "weights" else channels
    return {
        "graph_names": np.array(names),
        "graph_ops": np.array(ops),
        "graph_shapes": np.array(shapes),
        "first": np.array(int(rng.integers(1, 4))),
    }


def _graph_rows(i) -> list[tuple[str, str]]:
    """The Const nodes of the first ``first`` ``MobilenetV1/Conv2d_*`` scopes, in graph order."""
    found = [
        (str(n), str(s))
        for n, o, s in zip(i["graph_names"], i["graph_ops"], i["graph_shapes"], strict=True)
        if o == "Const" and str(n).startswith("MobilenetV1/Conv2d_")
    ]
    scopes = list(dict.fromkeys(n.split("/")[1] for n, _ in found))[: int(i["first"])]
    return [(n, s) for n, s in found if n.split("/")[1] in scopes]


_WALK = """found = [(node.name, tuple(tf.make_ndarray(node.attr["value"].tensor).shape))
         for node in graph.node if node.op == "Const" and node.name.startswith("MobilenetV1/Conv2d_")]
scopes = list(dict.fromkeys(name.split("/")[1] for name, _ in found))
rows = [(name, shape) for name, shape in found if name.split("/")[1] in {scopes}]
"""
_WALK_LOOP = """rows, seen = [], []
for node in graph.node:
    parts = node.name.split("/")
    if node.op != "Const" or parts[0] != "MobilenetV1" or not parts[1].startswith("Conv2d_"):
        continue
    if parts[1] not in seen:
        seen.append(parts[1])
    if len(seen) <= first:
        rows.append((node.name, list(tf.make_ndarray(node.attr["value"].tensor).shape)))
"""


def _graph_walk_ok(i, o):
    got = list(zip(np.asarray(o["row_names"]).tolist(), np.asarray(o["row_shapes"]).tolist(), strict=False))
    expected = _graph_rows(i)
    if len(o["row_names"]) != len(o["row_shapes"]) or len(got) != len(expected):
        return Result(False, f"rows: expected {len(expected)} (name, shape) rows, got {len(got)}")
    wrong = next((k for k, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b), None)
    return Result(
        wrong is None, f"row {wrong}: expected {expected[wrong]}, got {got[wrong]}" if wrong is not None else ""
    )


def _five_per_layer(i, o):
    """Five rows per layer, each a Const node of one of the first layers (any order)."""
    names = np.asarray(o["row_names"]).tolist()
    expected = {name for name, _ in _graph_rows(i)}
    if len(names) != 5 * int(i["first"]):
        return Result(False, f"rows: expected {5 * int(i['first'])} (5 per layer), got {len(names)}")
    return Result(set(names) == expected, "rows: not the Const nodes of the first layers")


# 02 multiply-adds by hand ------------------------------------------------------------------------
_COST_COLLECT = """
_shapes = [[int(v) for v in row] for row in cost_shapes]
standard = [standard_mult_adds(*row) for row in _shapes]
separable = [separable_mult_adds(*row) for row in _shapes]
"""


def _cost_shapes(rng):
    """(dk, m, n, h, w, stride) rows: odd and unequal sides, strides 1 and 2, kernels 1 to 7."""
    n = 12
    return {
        "cost_shapes": np.stack(
            [
                rng.choice([1, 3, 5, 7], n),
                rng.integers(1, 40, n),
                rng.integers(1, 40, n),
                rng.integers(3, 30, n) * 2 + 1,  # odd heights: ceil vs floor differ at stride 2
                rng.integers(3, 30, n) * 2,
                np.resize([1, 2], n),
            ],
            axis=1,
        ).astype(np.int64)
    }


def _out_sides(s):
    return -(-s[:, 3] // s[:, 5]), -(-s[:, 4] // s[:, 5])  # SAME padding: ceil(side / stride)


def standard_reference(shapes) -> np.ndarray:
    """Multiply-adds of a standard dk x dk convolution, counted as helpers.costs.layer_costs does."""
    s = np.asarray(shapes, np.int64)
    out_h, out_w = _out_sides(s)
    return s[:, 0] ** 2 * s[:, 1] * s[:, 2] * out_h * out_w


def separable_reference(shapes) -> np.ndarray:
    """Depthwise dk x dk (with the stride) + pointwise 1x1, counted as layer_costs does."""
    s = np.asarray(shapes, np.int64)
    out_h, out_w = _out_sides(s)
    return (s[:, 0] ** 2 * s[:, 1] + s[:, 1] * s[:, 2]) * out_h * out_w


def _counts_ok(reference: Callable[[np.ndarray], np.ndarray], out: str) -> Verdict:
    def verdict(i, o):
        got = np.asarray(o[out])
        return (
            got.dtype.kind in "iuf"
            and got.shape == (len(i["cost_shapes"]),)
            and bool(np.all(np.abs(got - reference(i["cost_shapes"])) < 0.5))
        )

    return verdict


# 03 BatchNorm fold --------------------------------------------------------------------------------
def _batchnorm(rng):
    channels = 8
    return {
        "w": rng.normal(0, 0.3, (3, 3, 3, channels)).astype(np.float32),
        "gamma": rng.uniform(0.2, 3, channels).astype(np.float32),
        "beta": rng.normal(0, 1, channels).astype(np.float32),
        "mean": rng.normal(0, 2, channels).astype(np.float32),
        "variance": rng.uniform(0.01, 5, channels).astype(np.float32),
        "epsilon": np.array(0.001),
    }


def _fold(i):
    from .bn_fold import fold

    return fold(i["w"], i["gamma"], i["beta"], i["mean"], i["variance"], float(i["epsilon"]))


_FOLD = Tolerance(1e-5, 1e-7, FLOAT32.reason + "; no epsilon is off by 1e-4 at the largest variance, 5")
_FOLD_BIAS = Tolerance(1e-5, 1e-6, "float32 accepted: beta - mean x multiplier cancels to about 1e-6 of its terms")
_FOLD_CODE = """multiplier = {multiplier}
folded_kernel = w * multiplier
folded_bias = {bias}
"""


def _fold_on_patches(i, o):
    """Conv + BatchNorm against the folded conv on 64 random 3x3x3 patches (one output pixel each)."""
    kernel, bias = np.asarray(o["folded_kernel"], np.float64), np.asarray(o["folded_bias"], np.float64)
    if kernel.shape != i["w"].shape or bias.shape != i["beta"].shape:
        return Result(False, f"folded_kernel, folded_bias: expected shapes {i['w'].shape}, {i['beta'].shape}")
    patches = np.random.default_rng(1).uniform(-1, 1, (64, *i["w"].shape[:3]))
    z = np.einsum("nhwi,hwio->no", patches, i["w"].astype(np.float64))
    reference = i["gamma"] * (z - i["mean"]) / np.sqrt(i["variance"] + float(i["epsilon"])) + i["beta"]
    folded = np.einsum("nhwi,hwio->no", patches, kernel) + bias
    error, scale = float(np.abs(folded - reference).max()), max(1.0, float(np.abs(reference).max()))
    return Result(
        error < 1e-4 * scale,
        f"folded conv vs conv + BatchNorm: expected a largest difference below {1e-4 * scale:.3g} "
        f"(1e-4 of the outputs: float32 accepted), got {error:.3g}",
    )


# 04 subset softmax --------------------------------------------------------------------------------
def _subset(rng):
    return {
        "all_logits": rng.normal(0, 4, (3, 1000)).astype(np.float32),
        "indices": rng.choice(1000, 10, replace=False),
    }


def _subset_expected(i):
    from .ranking import softmax, top_k

    indices = [int(k) for k in i["indices"]]
    return np.array(
        [
            [
                p.subset_probability
                for p in sorted(top_k(softmax(row), len(indices), subset=indices), key=lambda p: indices.index(p.index))
            ]
            for row in i["all_logits"]
        ]
    )


def _rows_sum_to_one(i, o):
    """Each row sums to one and ranks like that photo's logits of the subset (not uniform)."""
    p = np.asarray(o["subset_probabilities"])
    shape = (len(i["all_logits"]), len(i["indices"]))
    if p.dtype.kind != "f" or p.shape != shape:
        return Result(False, f"subset_probabilities: expected {shape} floats, got {p.shape} {p.dtype}")
    sums = compare("row sums", p.sum(axis=1), np.ones(len(p)), FLOAT32)
    if not sums.passed:
        return sums
    logits = i["all_logits"][:, [int(k) for k in i["indices"]]]
    return Result(_monotone(p, logits), "subset_probabilities: a higher logit must get a higher probability")


# 05 the CNN challenger (the student's design, judged by behaviour) -------------------------------
_CNN_COLLECT = """
candidate = cnn_challenger()
_convolutions = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
n_conv = sum(isinstance(layer, _convolutions) for layer in candidate.layers)
output_shape = [-1 if d is None else int(d) for d in candidate.output_shape]
model_name = str(candidate.name)
"""
_CNN_BEHAVIOUR = """
_chosen = np.asarray(val_digits)[np.asarray(val_digits) < len(x_val)]
val_size = len(x_val)
val_logits = np.asarray(trained["cnn_challenger"](x_val[_chosen], training=False))
"""
MNIST_VAL = {500: 6_000, 5_000: 60_000}  # validation digits -> training digits loaded (fast, full run)
CNN_VAL_ACCURACY = {500: 0.80, 5_000: 0.985}  # fast: 1 epoch on 5,500 digits; full: 6 epochs on 55,000


def _val_digits(rng):
    """Positions in the validation split: 400 of the fast run's 500, and 1,600 more of the full run's 5,000."""
    return {
        "val_digits": np.sort(
            np.concatenate(
                [rng.choice(500, 400, replace=False), rng.choice(np.arange(500, 5_000), 1_600, replace=False)]
            )
        )
    }


def _cnn_shape(i, o):
    return int(o["n_conv"]) >= 1 and str(o["model_name"]) == "cnn_challenger" and o["output_shape"].tolist() == [-1, 10]


def _val_chosen(i, o) -> np.ndarray:
    return i["val_digits"][i["val_digits"] < int(o["val_size"])]


def _outputs_logits(i, o):
    """Unbounded logits: some negative and some beyond +-1 (a softmax, sigmoid, ReLU or tanh last layer fails)."""
    out = np.asarray(o["val_logits"], float)
    return out.shape == (len(_val_chosen(i, o)), 10) and out.min() < 0 and np.abs(out).max() > 1


def _cnn_val_accuracy(i, o):
    from .datasets import load_mnist

    size = int(o["val_size"])
    if size not in MNIST_VAL:
        return False
    (_, y_train), _ = load_mnist()
    truth = y_train[: MNIST_VAL[size]][-size:][_val_chosen(i, o)]
    predicted = np.asarray(o["val_logits"]).argmax(axis=1)
    return predicted.shape == truth.shape and float(np.mean(predicted == truth)) > CNN_VAL_ACCURACY[size]


# 06 the new head ----------------------------------------------------------------------------------
_HEAD_COLLECT = """
probe = new_head(int(n_classes), features)
trainable = sum(int(np.prod(w.shape)) for w in probe.trainable_weights)
output_shape = [-1 if d is None else int(d) for d in probe.output_shape]
probabilities = np.asarray(probe(x, training=False))
dense = [layer for layer in probe.layers if isinstance(layer, keras.layers.Dense)]
n_dense = len(dense)
if n_dense == 1:
    dense[0].set_weights([dense_kernel, dense_bias])
    standardised = np.asarray(probe(x, training=False))
else:
    standardised = np.zeros(0)
"""


def _head_inputs(rng):
    n, d, k = 64, 12, 5
    features = rng.gamma(2.0, 1.5, (n, d)).astype(np.float32)
    features[:, 3] = 0.0  # a dead channel, as MobileNet 0.25 has: the variance floor matters
    return {
        "features": features,
        "n_classes": np.array(k),
        "x": rng.gamma(2.0, 1.5, (8, d)).astype(np.float32),
        "dense_kernel": rng.normal(0, 0.5, (d, k)).astype(np.float32),
        "dense_bias": rng.normal(0, 0.5, k).astype(np.float32),
    }


def _head_shape(i, o):
    d, k = i["features"].shape[1], int(i["n_classes"])
    p = np.asarray(o["probabilities"])
    return (
        np.asarray(o["output_shape"]).tolist() == [-1, k]
        and int(o["trainable"]) == d * k + k
        and p.shape == (len(i["x"]), k)
        and _close(p.sum(axis=1), np.ones(len(p)), atol=1e-5)
    )


def _head_standardises(i, o):
    from .transfer import head

    if int(o["n_dense"]) != 1:
        return False
    reference = head(int(i["n_classes"]), i["features"])
    reference.get_layer("head_dense").set_weights([i["dense_kernel"], i["dense_bias"]])
    return _close(o["standardised"], np.asarray(reference(i["x"], training=False)), atol=1e-5)


# 06 which kernels train when fine-tuning ----------------------------------------------------------
_FINETUNE_COLLECT = """
def _kernels_that_train(first_block):
    base = keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, include_top=False, weights=None)
    base.trainable = False
    unfreeze_top_blocks(base, int(first_block))
    return np.array([str(w.path).split("/")[0] for w in base.trainable_weights], dtype=str)
trainable_first = _kernels_that_train(first_block)
trainable_second = _kernels_that_train(second_block)
"""


def _finetune_inputs(rng):
    # A strided block (2, 4, 6, 12) starts with a conv_pad layer: counting layers from the end goes wrong there.
    return {"first_block": np.array(int(rng.integers(2, 12))), "second_block": np.array(int(rng.choice([2, 4, 6, 12])))}


def _top_kernels(first_block: int) -> list[str]:
    """The layers whose weights train: blocks ``first_block``..13, depthwise and pointwise, no BatchNorm."""
    return [f"conv_{kind}_{block}" for block in range(first_block, 14) for kind in ("dw", "pw")]


def _finetune_ok(block: str, trained: str) -> Verdict:
    return lambda i, o: np.asarray(o[trained]).tolist() == _top_kernels(int(i[block]))


# 07 quantize / dequantize and the rounding shift --------------------------------------------------
def _quantized(rng):
    channels = 8
    q = rng.integers(-127, 128, (channels, 3, 3, 3)).astype(np.int8)
    scale = rng.uniform(0.001, 0.05, channels).astype(np.float32)
    zero = rng.integers(-3, 4, channels)  # not all 0: a zero point added instead of subtracted shows
    noise = rng.uniform(-0.45, 0.45, q.shape) * scale[:, None, None, None]
    w = (((q.astype(np.float64) - zero[:, None, None, None]) * scale[:, None, None, None]) + noise).astype(np.float32)
    return {"q": q, "scale": scale, "zero": zero, "w": w}


_REQUANT = "np.clip(np.round(w / s) + z, -127, 127)"
_DEQUANT = """s, z = scale[:, None, None, None], zero[:, None, None, None]
dequantized = {dequantized}
requantized = ({requantized}).astype(np.int8)
"""


def _dequantized_ok(i, o):
    c = (slice(None), None, None, None)
    expected = (i["q"].astype(np.float64) - i["zero"][c]) * i["scale"][c]
    return compare("dequantized", o["dequantized"], expected, Tolerance(1e-5, 1e-7, FLOAT32.reason))


def _requantized_ok(i, o):
    r = np.asarray(o["requantized"])
    if r.shape != i["q"].shape or r.dtype.kind not in "iu":
        return Result(False, f"requantized: expected integers of shape {i['q'].shape}, got {r.dtype} {r.shape}")
    return compare("requantized", r, i["q"], Tolerance(0, 0, "integers: exact"))


_SHIFT_COLLECT = """
shift_pointwise = np.asarray(rounding_shift(kernel_pointwise, mean_pointwise, False), np.float64)
shift_depthwise = np.asarray(rounding_shift(kernel_depthwise, mean_depthwise, True), np.float64)
"""


_SHIFT = """def rounding_shift(kernel, input_mean, depthwise):
    scale = np.abs(kernel).max(axis={axes}, keepdims=True) / {levels}
    error = {error}
    if depthwise:
        return (error[..., 0] * input_mean).sum(axis=(0, 1))
    return np.einsum("hwio,i->o", error, input_mean)
"""
_SHIFT_RIGHT = "np.round(kernel / scale) * scale - kernel"
_SHIFT_AXES = "(0, 1, 3) if depthwise else (0, 1, 2)"


def _shift_inputs(rng):
    return {
        "kernel_pointwise": rng.normal(0, 0.2, (1, 1, 16, 8)).astype(np.float32),
        "mean_pointwise": rng.uniform(0, 3, 16),
        "kernel_depthwise": rng.normal(0, 0.2, (3, 3, 8, 1)).astype(np.float32),
        "mean_depthwise": rng.uniform(0, 3, 8),
    }


def _shift_ok(kind: str) -> Verdict:
    def verdict(i, o):
        from .quantization import bias_shift

        expected = bias_shift(i[f"kernel_{kind}"], i[f"mean_{kind}"], depthwise=kind == "depthwise")
        tolerance = Tolerance(1e-4, 1e-6, "float32 kernels accepted (1e-4 relative)")
        return compare(f"the shift of a {kind} kernel's output channels", o[f"shift_{kind}"], expected, tolerance)

    return verdict


# 07 the converter call and an activation's scale and zero point ------------------------------------
_CONVERTER_COLLECT = """
import tempfile as _tempfile
_inputs = keras.Input((8, 8, 3))
_x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(_inputs)
_conv = keras.layers.Conv2D(4, 3, activation="relu")
_dense = keras.layers.Dense(3)
_model = keras.Model(_inputs, _dense(keras.layers.GlobalAveragePooling2D()(_conv(_x))))
_conv.set_weights([conv_kernel, conv_bias])
_dense.set_weights([dense_kernel, dense_bias])
with _tempfile.TemporaryDirectory() as _saved:
    _model.export(_saved, verbose=False)
    converted = np.frombuffer(bytes(convert_int8(_saved, photos)), np.uint8)
"""


def _converter_inputs(rng):
    photos = rng.integers(0, 256, (6, 8, 8, 3)).astype(np.uint8)
    photos[0, 0, 0, 0], photos[0, 0, 0, 1] = 0, 255  # the full pixel range: the input's scale is 1
    return {
        "photos": photos,
        "conv_kernel": rng.normal(0, 0.3, (3, 3, 3, 4)).astype(np.float32),
        "conv_bias": rng.normal(0, 0.1, 4).astype(np.float32),
        "dense_kernel": rng.normal(0, 0.5, (4, 3)).astype(np.float32),
        "dense_bias": rng.normal(0, 0.1, 3).astype(np.float32),
    }


def _tensor_params(model: bytes) -> list[tuple]:
    """Every tensor's dtype, shape and quantization (scales, zero points), in the file's order."""
    from .tflite import interpreter

    found = interpreter(model)
    rows = []
    for d in found.get_tensor_details():
        q = d["quantization_parameters"]
        rows.append(
            (np.dtype(d["dtype"]).name, tuple(d["shape"]), tuple(np.round(q["scales"], 9)), tuple(q["zero_points"]))
        )
    return rows


def _converter_io_ok(i, o):
    from .tflite import interpreter

    found = interpreter(np.asarray(o["converted"], np.uint8).tobytes())
    given, returned = found.get_input_details()[0], found.get_output_details()[0]
    return (
        given["dtype"] == np.int8 and returned["dtype"] == np.int8 and np.allclose(given["quantization"], (1.0, -128))
    )


def _converter_same_ok(i, o):
    """The same tensors with the same quantization as helpers.tflite.convert's file of the same model."""
    import keras

    from .tflite import convert

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    conv, dense = keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Dense(3)
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(conv(x))))
    conv.set_weights([i["conv_kernel"], i["conv_bias"]])
    dense.set_weights([i["dense_kernel"], i["dense_bias"]])

    def representative():
        for photo in i["photos"]:
            yield [photo[None].astype(np.float32)]

    reference = convert(model, "int8", representative)
    return _tensor_params(np.asarray(o["converted"], np.uint8).tobytes()) == _tensor_params(reference)


_ACTIVATION_COLLECT = """
_inside = [activation_qparams(float(low), float(high)) for low, high in zip(lows, highs)]
scales, zero_points = np.array([s for s, _ in _inside], np.float64), np.array([z for _, z in _inside], np.float64)
_outside = [activation_qparams(float(low), float(high)) for low, high in zip(lows_outside, highs_outside)]
scales_outside = np.array([s for s, _ in _outside], np.float64)
zero_points_outside = np.array([z for _, z in _outside], np.float64)
"""


def _activation_inputs(rng):
    lows = np.concatenate([np.zeros(2), -rng.uniform(0.1, 8, 4)])  # ReLU-like ranges and ranges across 0
    highs = np.concatenate([rng.uniform(0.5, 8, 4), np.zeros(1), rng.uniform(0.5, 8, 1)])
    lows_outside = np.concatenate([rng.uniform(0.5, 3, 2), -rng.uniform(5, 9, 2)])  # all positive, all negative
    highs_outside = np.concatenate([rng.uniform(4, 9, 2), -rng.uniform(0.5, 3, 2)])
    return {"lows": lows, "highs": highs, "lows_outside": lows_outside, "highs_outside": highs_outside}


def _activation_reference(low: float, high: float) -> tuple[float, int]:
    """TFLite's asymmetric int8 parameters: the range widened to include 0, 256 levels over it."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255
    return scale, int(np.clip(np.round(-128 - low / scale), -128, 127))


def _activation_ok(suffix: str) -> Verdict:
    def verdict(i, o):
        expected = [
            _activation_reference(lo, hi) for lo, hi in zip(i[f"lows{suffix}"], i[f"highs{suffix}"], strict=True)
        ]
        return _close(o[f"scales{suffix}"], [s for s, _ in expected], rtol=1e-6) and np.asarray(
            o[f"zero_points{suffix}"]
        ).tolist() == [float(z) for _, z in expected]

    return verdict


# 08 the inverted residual block -------------------------------------------------------------------
_BLOCK_SETUP = """
from helpers import mobilenet_v2 as _mobilenet_v2
block = _mobilenet_v2._layers()[2](6, int(block_input.shape[-1]), 1, name="probe_block")
block.build(block_input.shape)
for _conv, _kernel, _bias in zip(block.convs(), (expand_kernel, depthwise_kernel, project_kernel),
                                 (expand_bias, depthwise_bias, project_bias)):
    _conv.kernel.assign(_kernel)
    _conv.bias.assign(_bias)
block_input = tf.constant(block_input)
"""


def _block_inputs(rng):
    c, e = 8, 48
    return {
        "block_input": rng.normal(0, 3, (1, 6, 6, c)).astype(np.float32),  # activations above 6: ReLU6 shows
        "expand_kernel": rng.normal(0, 0.4, (1, 1, c, e)).astype(np.float32),
        "expand_bias": rng.normal(0, 0.5, e).astype(np.float32),
        "depthwise_kernel": rng.normal(0, 0.4, (3, 3, e, 1)).astype(np.float32),
        "depthwise_bias": rng.normal(0, 0.5, e).astype(np.float32),
        "project_kernel": rng.normal(0, 0.3, (1, 1, e, c)).astype(np.float32),
        "project_bias": rng.normal(0, 0.5, c).astype(np.float32),
    }


_BLOCK = """y = {expand}(tf.nn.conv2d(block_input, block.expand.kernel, 1, "SAME") + block.expand.bias)
y = {depthwise}(tf.nn.depthwise_conv2d(y, block.depthwise.kernel, [1, 1, 1, 1], "SAME") + block.depthwise.bias)
y = {project}(tf.nn.conv2d(y, block.project.kernel, 1, "SAME") + block.project.bias)
out = {out}
"""


def _block_ok(i, o):
    from .mobilenet_v2 import _layers

    block = _layers()[2](6, i["block_input"].shape[-1], 1)  # (Conv, DepthwiseConv, InvertedResidual, Logits)
    block.build(i["block_input"].shape)
    for conv, part in zip(block.convs(), ("expand", "depthwise", "project"), strict=True):
        conv.kernel.assign(i[f"{part}_kernel"])
        conv.bias.assign(i[f"{part}_bias"])
    tolerance = Tolerance(0, 1e-3, "the same float32 operations; a missing ReLU6, bias or residual is off by more")
    return compare("out", o["out"], np.asarray(block(i["block_input"])), tolerance)


def _linear_bottleneck(i, o):
    """What the block adds to its input can be negative: no ReLU6 after the projection."""
    out = np.asarray(o["out"])
    if out.shape != i["block_input"].shape or out.dtype.kind != "f":
        return Result(False, f"out: expected shape {i['block_input'].shape} floats, got {out.shape} {out.dtype}")
    added = float((out - i["block_input"]).min())
    return Result(added < 0, f"out - block_input: expected negative values, got a minimum of {added:.4g}")


# 09 imprinted weights -----------------------------------------------------------------------------
_IMPRINT_COLLECT = """
toy = np.asarray(imprint(toy_embeddings, toy_labels, 2), np.float64)
imprinted = np.asarray(imprint(embeddings, embedding_labels, int(n_classes)), np.float64)
"""


def _imprint_inputs(rng):
    labels = np.concatenate([np.arange(5), rng.integers(0, 5, 55)])
    return {
        "toy_embeddings": rng.uniform(0.1, 10, (3, 2)),
        "toy_labels": np.array([0, 0, 1]),
        "embeddings": rng.gamma(2.0, 1.0, (60, 16)),
        "embedding_labels": rng.permutation(labels),
        "n_classes": np.array(5),
    }


_IMPRINT = """def l2_normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def imprint(embeddings, labels, n_classes):
    {body}
"""


def _imprint_ok(e: str, labels: str, n: Callable[[Arrays], int], out: str) -> Verdict:
    def verdict(i, o):
        from .imprinting import imprint_weights

        return compare(out, o[out], imprint_weights(i[e], i[labels], n(i)), FLOAT32)

    return verdict


# 10 top-k with ties -------------------------------------------------------------------------------
_TOPK_COLLECT = """
toy_accuracy = [top_k_accuracy(toy, toy_labels, k) for k in (1, 2)]
coarse_accuracy = [top_k_accuracy(coarse, truth, k) for k in (1, 3, 5)]
"""


def _topk_inputs(rng):
    return {
        "toy": rng.integers(0, 3, (6, 4)).astype(float),
        "toy_labels": rng.integers(0, 4, 6),
        "coarse": rng.integers(0, 4, (50, 10)).astype(float),
        "truth": rng.integers(0, 10, 50),
    }


_TOPK = """def top_k_accuracy(scores, labels, k):
    {body}
"""


def _topk_ok(scores: str, labels: str, ks: tuple[int, ...], out: str) -> Verdict:
    def verdict(i, o):
        from .evaluation import rivals

        expected = [float(np.mean(rivals(i[scores], i[labels]) < k)) for k in ks]
        reason = "float32 accepted (1/3 as 0.33333334); fractions of 6 or 50 photos are 0.02 apart or more"
        return compare(
            f"{out} for k in {ks}", np.asarray(o[out]).astype(np.float64), expected, Tolerance(0, 1e-6, reason)
        )

    return verdict


# 10 the cost model alpha^2 rho^2 ------------------------------------------------------------------
_SCALING_COLLECT = """
_b = [float(v) for v in cost_base]
alpha_only = [scaled_mult_adds(b, float(a), 224) for b, a in zip(_b, cost_alpha)]
resolution_only = [scaled_mult_adds(b, 1.0, int(r)) for b, r in zip(_b, cost_resolution)]
both = [scaled_mult_adds(b, float(a), int(r)) for b, a, r in zip(_b, cost_alpha, cost_resolution)]
"""


def _scaling_inputs(rng):
    n = 8
    return {
        "cost_base": rng.uniform(100, 1000, n),
        "cost_alpha": rng.choice([0.25, 0.35, 0.5, 0.75, 1.3, 1.4], n),
        "cost_resolution": rng.choice([96, 128, 160, 192, 256, 288], n),
    }


def _scaling_ok(out: str) -> Verdict:
    def verdict(i, o):
        alpha = i["cost_alpha"] if out != "resolution_only" else 1.0
        rho = i["cost_resolution"] / 224 if out != "alpha_only" else 1.0
        return _close(o[out], i["cost_base"] * alpha**2 * rho**2, rtol=1e-6, atol=0)

    return verdict


PROBES: dict[str, list[Probe]] = {
    "01_classify.ipynb": [
        Probe(
            "softmax",
            "c10e",
            "c10e",
            _logits,
            ("probabilities", "top5_indices"),
            {"softmax": (1, _softmax_ok), "top5_order": (1, _top5_ok), "softmax_sums_to_one": (1, _sums_to_one)},
            wrong={
                "exp without the division": "probabilities = np.exp(logits - logits.max())\n"
                "top5_indices = np.argsort(-probabilities)[:5]\n",
                "divided by the sum of the logits": "probabilities = logits / logits.sum()\n"
                "top5_indices = np.argsort(-probabilities)[:5]\n",
                "the sign flipped": "e = np.exp(-(logits - logits.min()))\nprobabilities = e / e.sum()\n"
                "top5_indices = np.argsort(-probabilities)[:5]\n",
                "uniform probabilities": "probabilities = np.full(len(logits), 1 / len(logits))\n"
                "top5_indices = np.argsort(-logits)[:5]\n",
                "top-5 in ascending order": "e = np.exp(logits - logits.max())\nprobabilities = e / e.sum()\n"
                "top5_indices = np.argsort(probabilities)[-5:]\n",
                "the five smallest": "e = np.exp(logits - logits.max())\nprobabilities = e / e.sum()\n"
                "top5_indices = np.argsort(probabilities)[:5]\n",
            },
            right={
                "float32 TensorFlow ops": "probabilities = tf.nn.softmax(tf.constant(logits, tf.float32)).numpy()\n"
                "top5_indices = tf.math.top_k(probabilities, 5).indices.numpy()\n",
                "a helper and a loop": "def soft(z):\n    e = [np.exp(v - max(z)) for v in z]\n"
                "    return np.array(e) / sum(e)\n\nprobabilities = soft(logits)\n"
                "top5_indices = sorted(range(len(logits)), key=lambda k: -probabilities[k])[:5]\n",
            },
            references=("ranking.softmax", "ranking.top_k"),
        )
    ],
    "02_layer_dump.ipynb": [
        Probe(
            "const_nodes",
            "c06e",
            "c06e",
            _graph,
            ("row_names", "row_shapes"),
            {"graph_walk": (2, _graph_walk_ok), "five_per_layer": (1, _five_per_layer)},
            setup=_GRAPH_SETUP,
            collect=_GRAPH_COLLECT,
            wrong={
                "every layer, not the first ones": _WALK.format(scopes="scopes"),
                "one layer too many": _WALK.format(scopes="scopes[: first + 1]"),
                "sorted by name, not in graph order": _WALK.format(scopes="scopes[:first]") + "rows = sorted(rows)\n",
                "every Const node of the graph": "rows"
                " = [(n.name, tuple(tf.make_ndarray(n.attr['value'].tensor).shape))"
                " for n in graph.node if n.op == 'Const'][: 5 * first]\n",
            },
            right={"a loop over the nodes": _WALK_LOOP},
            references=("layers.first_layer_variables",),
        ),
        Probe(
            "mult_adds",
            "c09e",
            "c09e",
            _cost_shapes,
            ("standard", "separable"),
            {
                "standard_mult_adds": (1, _counts_ok(standard_reference, "standard")),
                "separable_mult_adds": (2, _counts_ok(separable_reference, "separable")),
            },
            rerun=False,
            collect=_COST_COLLECT,
            notes={
                "standard_mult_adds": "judged on 12 drawn shapes (odd and unequal sides, strides 1 and 2)",
                "separable_mult_adds": "judged on 12 drawn shapes (odd and unequal sides, strides 1 and 2)",
            },
        ),
    ],
    "03_bn_folding.ipynb": [
        Probe(
            "fold",
            "c06e",
            "c06e",
            _batchnorm,
            ("multiplier", "folded_kernel", "folded_bias"),
            {
                "fold_multiplier": (1, lambda i, o: compare("multiplier", o["multiplier"], _fold(i).multiplier, _FOLD)),
                "fold_kernel": (2, lambda i, o: compare("folded_kernel", o["folded_kernel"], _fold(i).kernel, _FOLD)),
                "fold_bias": (1, lambda i, o: compare("folded_bias", o["folded_bias"], _fold(i).bias, _FOLD_BIAS)),
                "fold_on_photos": (1, _fold_on_patches),
            },
            notes={"fold_on_photos": "judged on random patches (one output pixel each), not on the photos"},
            wrong={
                "no epsilon": _FOLD_CODE.format(
                    multiplier="gamma / np.sqrt(variance)", bias="beta - mean * multiplier"
                ),
                "variance, not its square root": _FOLD_CODE.format(
                    multiplier="gamma / (variance + epsilon)", bias="beta - mean * multiplier"
                ),
                "gamma = 1 assumed": _FOLD_CODE.format(
                    multiplier="1 / np.sqrt(variance + epsilon)", bias="beta - mean * multiplier"
                ),
                "the mean added": _FOLD_CODE.format(
                    multiplier="gamma / np.sqrt(variance + epsilon)", bias="beta + mean * multiplier"
                ),
                "beta forgotten": _FOLD_CODE.format(
                    multiplier="gamma / np.sqrt(variance + epsilon)", bias="-mean * multiplier"
                ),
                "the mean not scaled": _FOLD_CODE.format(
                    multiplier="gamma / np.sqrt(variance + epsilon)", bias="beta - mean"
                ),
            },
            right={
                "float64 and a helper": "def scale_of(g, v, e):\n"
                "    return np.asarray(g, np.float64) / np.sqrt(v + e)\n\n"
                "multiplier = scale_of(gamma, variance, epsilon)\nfolded_kernel = w * multiplier[None, None, None, :]\n"
                "folded_bias = beta - multiplier * mean\n",
            },
            references=("bn_fold.fold", "bn_fold.fold_gamma_one", "bn_fold.fold_layer_pair", "bn_fold.fold_batchnorm"),
        )
    ],
    "04_label_subset.ipynb": [
        Probe(
            "subset_softmax",
            "c08e",
            "c08e",
            _subset,
            ("subset_probabilities",),
            {
                "subset_softmax": (2, lambda i, o: _close(o["subset_probabilities"], _subset_expected(i), atol=1e-6)),
                "rows_sum_to_one": (1, _rows_sum_to_one),
            },
            setup="indices = [int(k) for k in indices]\n",
            wrong={
                "softmax over all 1000, not renormalised": "e = np.exp(all_logits"
                " - all_logits.max(axis=1, keepdims=True))"
                "\n"
                "subset_probabilities = (e / e.sum(axis=1, keepdims=True))[:, indices]\n",
                "normalised over the photos": "e = np.exp(all_logits[:, indices])\n"
                "subset_probabilities = e / e.sum(axis=0, keepdims=True)\n",
                "uniform": "subset_probabilities = np.full((len(all_logits), len(indices)), 1 / len(indices))\n",
                "sorted, not in the order of indices": "e = np.exp(all_logits[:, indices])\n"
                "subset_probabilities = -np.sort(-e / e.sum(axis=1, keepdims=True), axis=1)\n",
                "exp without the division": "subset_probabilities = np.exp(all_logits[:, indices])\n",
            },
            right={
                "float32 TensorFlow ops": "subset_probabilities = "
                "tf.nn.softmax(tf.gather(all_logits, indices, axis=1)).numpy()\n",
                "a loop over photos and one shift for all": "rows = []\nfor row in all_logits:\n"
                "    e = [np.exp(row[k] - all_logits.max()) for k in indices]\n"
                "    rows.append([v / sum(e) for v in e])\n"
                "subset_probabilities = np.array(rows)\n",
            },
            references=("ranking.softmax", "ranking.top_k"),
        )
    ],
    "05_mnist.ipynb": [
        Probe(
            "architecture",
            "c06e",
            "c06e",
            lambda rng: {},
            ("n_conv", "output_shape", "model_name"),
            {"cnn_is_convolutional": (1, _cnn_shape)},
            rerun=False,
            collect=_CNN_COLLECT,
        ),
        Probe(
            "behaviour",
            "c06e",
            "c08",
            _val_digits,
            ("val_size", "val_logits"),
            {"cnn_outputs_logits": (1, _outputs_logits), "cnn_val_accuracy": (1, _cnn_val_accuracy)},
            rerun=False,
            collect=_CNN_BEHAVIOUR,
            notes={
                "cnn_outputs_logits": "judged on the validation digits the grader drew, not the first 256",
                "cnn_val_accuracy": "judged on the validation digits the grader drew, not the whole split",
            },
        ),
    ],
    "06_flowers_transfer.ipynb": [
        Probe(
            "head",
            "c15e",
            "c15e",
            _head_inputs,
            ("output_shape", "trainable", "probabilities", "n_dense", "standardised"),
            {"head_shape": (2, _head_shape), "head_standardises": (1, _head_standardises)},
            rerun=False,
            collect=_HEAD_COLLECT,
        ),
        Probe(
            "finetune",
            "c22e",
            "c22e",
            _finetune_inputs,
            ("trainable_first", "trainable_second"),
            {
                "finetune_blocks": (2, _finetune_ok("first_block", "trainable_first")),
                "finetune_other_block": (1, _finetune_ok("second_block", "trainable_second")),
            },
            rerun=False,
            collect=_FINETUNE_COLLECT,
            notes={
                "finetune_blocks": "judged for a random first block (2-11), not only block 10",
                "finetune_other_block": "judged for a random strided block (2, 4, 6 or 12), not only block 12",
            },
        ),
    ],
    "07_tflite_int8.ipynb": [
        Probe(
            "converter",
            "c08e",
            "c08e",
            _converter_inputs,
            ("converted",),
            {"converter_int8_io": (2, _converter_io_ok), "converter_identical": (1, _converter_same_ok)},
            rerun=False,
            collect=_CONVERTER_COLLECT,
            notes={
                "converter_int8_io": "judged on a small conv model and random photos, not the flower model",
                "converter_identical": "every tensor's dtype, shape and quantization equal helpers.tflite.convert's "
                "(tensor names differ between processes, so not byte for byte)",
            },
        ),
        Probe(
            "dequantize",
            "c12e",
            "c12e",
            _quantized,
            ("dequantized", "requantized"),
            {"dequantize": (2, _dequantized_ok), "requantize": (1, _requantized_ok)},
            wrong={
                "the zero point added": _DEQUANT.format(dequantized="(q + z) * s", requantized=_REQUANT),
                "the zero point forgotten": _DEQUANT.format(dequantized="q * s", requantized="np.round(w / s)"),
                "one scale for the tensor": _DEQUANT.format(
                    dequantized="(q - z) * scale.max()", requantized="np.round(w / scale.max()) + z"
                ),
                "floor, not round": _DEQUANT.format(dequantized="(q - z) * s", requantized="np.floor(w / s) + z"),
                "truncated, not rounded": _DEQUANT.format(dequantized="(q - z) * s", requantized="np.trunc(w / s) + z"),
            },
            right={
                "a loop over channels in float64": "dequantized = np.zeros(q.shape)\n"
                "requantized = np.zeros(q.shape, np.int8)\n"
                "for c in range(len(scale)):\n"
                "    dequantized[c] = (q[c].astype(np.float64) - zero[c]) * float(scale[c])\n"
                "    requantized[c] = np.clip(np.rint(w[c] / scale[c]) + zero[c], -128, 127)\n",
            },
        ),
        Probe(
            "activation_qparams",
            "c12p",
            "c12p",
            _activation_inputs,
            ("scales", "zero_points", "scales_outside", "zero_points_outside"),
            {"activation_qparams": (2, _activation_ok("")), "activation_qparams_zero": (1, _activation_ok("_outside"))},
            rerun=False,
            collect=_ACTIVATION_COLLECT,
            notes={"activation_qparams": "judged on random ranges, not on the INT8 file's tensors"},
        ),
    ],
    "07c_tflite_int8_accuracy.ipynb": [
        Probe(
            "rounding_shift",
            "c17e",
            "c17e",
            _shift_inputs,
            ("shift_pointwise", "shift_depthwise"),
            {
                "rounding_shift_pointwise": (2, _shift_ok("pointwise")),
                "rounding_shift_depthwise": (1, _shift_ok("depthwise")),
            },
            rerun=False,
            collect=_SHIFT_COLLECT,
            wrong={
                "one scale for the tensor": _SHIFT.format(axes="None", levels=127, error=_SHIFT_RIGHT),
                "a depthwise kernel scaled over its channels": _SHIFT.format(
                    axes="(0, 1, 2)", levels=127, error=_SHIFT_RIGHT
                ),
                "the sign flipped": _SHIFT.format(
                    axes=_SHIFT_AXES, levels=127, error="kernel - np.round(kernel / scale) * scale"
                ),
                "128 levels a side": _SHIFT.format(axes=_SHIFT_AXES, levels=128, error=_SHIFT_RIGHT),
                "truncated, not rounded": _SHIFT.format(
                    axes=_SHIFT_AXES, levels=127, error="np.trunc(kernel / scale) * scale - kernel"
                ),
                "the input mean left out": "def rounding_shift(kernel, input_mean, depthwise):\n"
                "    axes = (0, 1, 3) if depthwise else (0, 1, 2)\n"
                "    scale = np.abs(kernel).max(axis=axes, keepdims=True) / 127\n"
                "    error = np.round(kernel / scale) * scale - kernel\n"
                "    return error[..., 0].sum(axis=(0, 1)) if depthwise else error.sum(axis=(0, 1, 2))\n",
            },
            right={
                "a loop over output channels in float64": "def rounding_shift(kernel, input_mean, depthwise):\n"
                "    kernel = kernel.astype(np.float64)\n"
                "    out = kernel.shape[2] if depthwise else kernel.shape[3]\n"
                "    shift = np.zeros(out)\n"
                "    for c in range(out):\n"
                "        w = kernel[:, :, c, 0] if depthwise else kernel[:, :, :, c]\n"
                "        step = np.max(np.abs(w)) / 127\n"
                "        error = np.rint(w / step) * step - w\n"
                "        shift[c] = (error * input_mean[c]).sum() if depthwise else (error * input_mean).sum()\n"
                "    return shift\n",
            },
            references=("quantization.bias_shift",),
        ),
    ],
    "08_mobilenet_v2_tfnn.ipynb": [
        Probe(
            "inverted_residual",
            "c11e",
            "c11e",
            _block_inputs,
            ("out",),
            {"inverted_residual": (2, _block_ok), "linear_bottleneck": (1, _linear_bottleneck)},
            setup=_BLOCK_SETUP,
            wrong={
                "no residual": _BLOCK.format(expand="tf.nn.relu6", depthwise="tf.nn.relu6", project="", out="y"),
                "ReLU6 after the projection": _BLOCK.format(
                    expand="tf.nn.relu6", depthwise="tf.nn.relu6", project="tf.nn.relu6", out="block_input + y"
                ),
                "ReLU, not ReLU6": _BLOCK.format(
                    expand="tf.nn.relu", depthwise="tf.nn.relu", project="", out="block_input + y"
                ),
                "no activation after the depthwise": _BLOCK.format(
                    expand="tf.nn.relu6", depthwise="", project="", out="block_input + y"
                ),
                "no biases": _BLOCK.format(
                    expand="tf.nn.relu6", depthwise="tf.nn.relu6", project="", out="block_input + y"
                )
                .replace(" + block.expand.bias", "")
                .replace(" + block.depthwise.bias", "")
                .replace(" + block.project.bias", ""),
                "VALID padding": _BLOCK.format(
                    expand="tf.nn.relu6", depthwise="tf.nn.relu6", project="", out="block_input + y"
                ).replace('"SAME"', '"VALID"'),
            },
            references=("block()", "mobilenet_v2._layers"),
        )
    ],
    "09_weight_imprinting.ipynb": [
        Probe(
            "imprint",
            "c08",
            "c08",
            _imprint_inputs,
            ("toy", "imprinted"),
            {
                "imprint_toy": (2, _imprint_ok("toy_embeddings", "toy_labels", lambda i: 2, "toy")),
                "imprint_flowers": (
                    1,
                    _imprint_ok("embeddings", "embedding_labels", lambda i: int(i["n_classes"]), "imprinted"),
                ),
            },
            rerun=False,
            collect=_IMPRINT_COLLECT,
            wrong={
                "embeddings not normalised first": _IMPRINT.format(
                    body="means = [embeddings[labels == c].mean(axis=0) for c in range(n_classes)]\n"
                    "    return l2_normalize(np.stack(means))"
                ),
                "the means not normalised": _IMPRINT.format(
                    body="e = l2_normalize(embeddings)\n"
                    "    return np.stack([e[labels == c].mean(axis=0) for c in range(n_classes)])"
                ),
                "normalised over the wrong axis": _IMPRINT.format(
                    body="e = embeddings / np.linalg.norm(embeddings, axis=0, keepdims=True)\n"
                    "    m = np.stack([e[labels == c].mean(axis=0) for c in range(n_classes)])\n"
                    "    return m / np.linalg.norm(m, axis=0, keepdims=True)"
                ),
                "the first photo of each class only": _IMPRINT.format(
                    body="e = l2_normalize(embeddings)\n"
                    "    return l2_normalize(np.stack([e[labels == c][0] for c in range(n_classes)]))"
                ),
            },
            right={
                "a loop in float32": _IMPRINT.format(
                    body="rows = []\n    for c in range(n_classes):\n"
                    "        e = [x / np.linalg.norm(x) for x, y in zip(np.float32(embeddings), labels) if y == c]\n"
                    "        m = np.sum(e, axis=0)\n"
                    "        rows.append(m / np.linalg.norm(m))\n    return np.array(rows)"
                ),
            },
            references=("imprinting.imprint_weights",),
        )
    ],
    "10_accuracy_vs_cost.ipynb": [
        Probe(
            "top_k",
            "c07e",
            "c07e",
            _topk_inputs,
            ("toy_accuracy", "coarse_accuracy"),
            {
                "top_k_ties": (2, _topk_ok("toy", "toy_labels", (1, 2), "toy_accuracy")),
                "top_k_matches_evaluate": (1, _topk_ok("coarse", "truth", (1, 3, 5), "coarse_accuracy")),
            },
            rerun=False,
            collect=_TOPK_COLLECT,
            wrong={
                "ties broken by index": _TOPK.format(
                    body="top = np.argsort(-scores, axis=1, kind='stable')[:, :k]\n"
                    "    return float(np.mean([label in row for label, row in zip(labels, top)]))"
                ),
                "ties counted for the model": _TOPK.format(
                    body="truth = scores[np.arange(len(labels)), labels][:, None]\n"
                    "    return float(np.mean((scores > truth).sum(axis=1) < k))"
                ),
                "one rank too many": _TOPK.format(
                    body="truth = scores[np.arange(len(labels)), labels][:, None]\n"
                    "    return float(np.mean((scores >= truth).sum(axis=1) - 1 <= k))"
                ),
                "a count, not a fraction": _TOPK.format(
                    body="truth = scores[np.arange(len(labels)), labels][:, None]\n"
                    "    return float(np.sum((scores >= truth).sum(axis=1) - 1 < k))"
                ),
            },
            right={
                "float32 TensorFlow ops": _TOPK.format(
                    body="s = tf.constant(scores, tf.float32)\n"
                    "    truth = tf.gather(s, labels, axis=1, batch_dims=1)[:, None]\n"
                    "    rivals = tf.reduce_sum(tf.cast(s >= truth, tf.int32), axis=1) - 1\n"
                    "    return tf.reduce_mean(tf.cast(rivals < k, tf.float32)).numpy()"
                ),
            },
            references=("evaluation.rivals", "evaluation.evaluate"),
        ),
        Probe(
            "cost_model",
            "c09e",
            "c09e",
            _scaling_inputs,
            ("alpha_only", "resolution_only", "both"),
            {
                "cost_model_alpha": (1, _scaling_ok("alpha_only")),
                "cost_model_resolution": (1, _scaling_ok("resolution_only")),
                "cost_model": (1, _scaling_ok("both")),
            },
            rerun=False,
            collect=_SCALING_COLLECT,
            notes={
                name: "judged on 8 drawn bases, widths and resolutions"
                for name in ("cost_model_alpha", "cost_model_resolution", "cost_model")
            },
        ),
    ],
}


def task(probe: Probe, source: str) -> dict:
    """What the sandbox runs for ``probe`` (:func:`helpers.answers.evaluate`), given the exercise
    cell's code as the grading copy has it."""
    return {
        "setup": probe.setup,
        "source": source if probe.rerun else "",
        "collect": probe.collect,
        "outputs": list(probe.outputs),
    }


def checks_of(notebook: str) -> dict[str, int]:
    """``check name -> points`` the grader judges for a notebook (file name)."""
    return {name: points for probe in PROBES.get(notebook, []) for name, (points, _) in probe.checks.items()}


def _safe_reason(reason: str) -> str:
    """What a student's page may say about why a probe did not run: the exception's class, or the
    time limit; never the text (it can quote the grading copy)."""
    if reason.startswith("stopped after the time limit"):
        return reason
    match = re.match(r"([A-Za-z_][A-Za-z0-9_.]*)(?::|$)", reason)
    return f"{match.group(1)} raised" if match else "the grading run failed"


def verdicts(probe: Probe, inputs: Arrays, answers: Arrays | None, reason: str) -> list[dict]:
    """One row per check of ``probe``: passed or not, its points, why not for the instructor
    (``error``: ``reason`` when the probe returned nothing) and for the student (``message``:
    expected and got, never raw exception text). A verdict may return a bool or a
    :class:`Result`; one that raises on malformed values is a failed check."""
    rows = []
    for name, (points, verdict) in probe.checks.items():
        if answers is None:
            why, message = f"did not run ({reason})", f"did not run ({_safe_reason(reason)})"
            rows.append({"name": name, "passed": False, "points": points, "error": why, "message": message})
            continue
        try:
            outcome = verdict(inputs, answers)
            passed = bool(outcome.passed if isinstance(outcome, Result) else outcome)
            told = outcome.message if isinstance(outcome, Result) else ""
            why = message = "" if passed else (told or "check failed")
        except Exception as error:  # a missing or malformed value: failed, with the reason
            passed, why = False, f"check failed ({type(error).__name__}: {error})"[:300]
            message = f"check failed: the values could not be judged ({type(error).__name__})"
        rows.append({"name": name, "passed": passed, "points": points, "error": why, "message": message})
    return rows


def refused(rows: list[dict], uses: list[str]) -> list[dict]:
    """``rows`` with every check at 0 because the code used the exercise's references ``uses``."""
    why = f"0 points: the code uses the workbook's own {', '.join(uses)}, which this exercise asks you to write"
    return [{**row, "passed": False, "error": why, "message": why} for row in rows]


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _targets(node) -> set[str]:
    """The plain names an assignment target binds."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} if node is not None else set()


def _locals_of(scope) -> set[str]:
    """The names a function or lambda binds itself (its arguments and every name it assigns, which
    Python makes local for the whole body), less those it declares ``global``/``nonlocal``."""
    args = scope.args
    found = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a}
    declared: set[str] = set()
    todo = list(scope.body) if isinstance(scope.body, list) else [scope.body]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Global | ast.Nonlocal):
            declared |= set(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, _SCOPES):
            found.add(getattr(node, "name", ""))
            continue  # a nested scope's names are its own
        elif isinstance(node, ast.alias):
            found.add(node.asname or node.name.split(".")[0])
        todo += ast.iter_child_nodes(node)
    return found - declared


def _loads(node, local: frozenset[str]) -> set[str]:
    """The names ``node`` reads from outside: every loaded name except those bound by an enclosing
    function (its locals), loop (``for`` target, in its body), ``with ... as``, ``except ... as`` or
    comprehension (its targets, past its first iterable); ``x += 1`` reads ``x``."""
    found: set[str] = set()

    def walk(n, bound: frozenset[str]) -> None:
        if isinstance(n, ast.Name):
            if n.id not in bound and not isinstance(n.ctx, ast.Store):
                found.add(n.id)
        elif isinstance(n, ast.AugAssign):
            if isinstance(n.target, ast.Name) and n.target.id not in bound:
                found.add(n.target.id)
            walk(n.target, bound), walk(n.value, bound)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for part in [*n.args.defaults, *[d for d in n.args.kw_defaults if d], *getattr(n, "decorator_list", [])]:
                walk(part, bound)
            inner = bound | _locals_of(n)
            for part in n.body if isinstance(n.body, list) else [n.body]:
                walk(part, inner)
        elif isinstance(n, _COMPREHENSIONS):
            names = frozenset(set().union(*(_targets(g.target) for g in n.generators)))
            walk(n.generators[0].iter, bound)
            for child in ast.iter_child_nodes(n):
                if child is not n.generators[0]:
                    walk(child, bound | names)
            for cond in n.generators[0].ifs:
                walk(cond, bound | names)
        elif isinstance(n, ast.For | ast.AsyncFor):
            walk(n.iter, bound)
            for part in [*n.body, *n.orelse]:
                walk(part, bound | _targets(n.target))
        elif isinstance(n, ast.With | ast.AsyncWith):
            names = frozenset(set().union(*(_targets(item.optional_vars) for item in n.items)))
            for item in n.items:
                walk(item.context_expr, bound)
            for part in n.body:
                walk(part, bound | names)
        elif isinstance(n, ast.ExceptHandler):
            if n.type is not None:
                walk(n.type, bound)
            for part in n.body:
                walk(part, bound | ({n.name} if n.name else set()))
        else:
            for child in ast.iter_child_nodes(n):
                walk(child, bound)

    walk(node, local)
    return found


def _free(tree) -> set[str]:
    """The names a cell reads that it has not bound itself before (in an unconditional top-level
    assignment, import or definition of an earlier statement): what another cell can supply."""
    bound: set[str] = set()
    free: set[str] = set()
    for statement in tree.body:
        free |= _loads(statement, frozenset(bound))
        if isinstance(statement, ast.Assign):
            bound |= set().union(*(_targets(t) for t in statement.targets if isinstance(t, ast.Name | ast.Tuple)))
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            bound |= _targets(statement.target)
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(statement.name)
    return free


def _supplies(tree) -> tuple[set[str], bool]:
    """The names a cell binds for other cells (imports from outside ``helpers`` excluded: numpy
    carries no reference), and whether it changes a shared object (an attribute or item stored on a
    name it did not bind itself, ``setattr`` or ``exec``), which can hand any cell anything."""
    names: set[str] = set()
    changed: set[str] = set()  # the names whose objects get an attribute or item stored
    mutates = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] == "helpers"}
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "helpers"):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Attribute | ast.Subscript) and isinstance(node.ctx, ast.Store):
            root = node.value
            while isinstance(root, ast.Attribute | ast.Subscript | ast.Call):
                root = root.func if isinstance(root, ast.Call) else root.value
            changed.add(root.id if isinstance(root, ast.Name) else "")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "exec"):
            mutates = True
    return names, mutates or bool(changed - names)


def _feeding(trees: list) -> list:
    """``trees[0]`` and those of ``trees[1:]`` that supply a name it reads from outside (bound in an
    earlier statement of its own, a loop variable or a function's local is its own), directly or
    through another, or that change shared objects."""
    if not trees:
        return []
    kept, used, rest = [trees[0]], _free(trees[0]), list(trees[1:])
    grew = True
    while grew:
        grew = False
        for tree in list(rest):
            names, mutates = _supplies(tree)
            if mutates or names & used:
                kept.append(tree)
                used |= _free(tree)
                rest.remove(tree)
                grew = True
    return kept


@functools.cache
def _bindings(module: str) -> dict[str, str]:
    """What ``helpers.<module>`` binds by importing it from the workbook: ``{"ranking": "ranking"}``
    for ``from . import ranking``, ``{"softmax": "ranking.softmax"}`` for ``from .ranking import
    softmax`` (read from its code, not imported)."""
    from .paths import REPO

    try:
        tree = ast.parse((REPO / "helpers" / f"{module}.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "helpers"):
            inner = (node.module or "").split(".")
            inner = inner[1:] if inner[0] == "helpers" else inner
            for a in node.names:
                bound[a.asname or a.name] = f"{inner[0]}.{a.name}" if inner and inner[0] else a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("helpers.") and a.asname:
                    bound[a.asname] = a.name.split(".")[1]
    return bound


def reference_uses(probe: Probe, sources: list[str]) -> list[str]:
    """The entries of ``probe.references`` that the student's code uses: ``sources[0]`` is the
    exercise cell, the others are the student's other cells (added ones, other exercises), scanned
    when they supply a name the exercise reads from outside (a helper; a cell that only compares
    with the reference is theirs, and so is one that binds a loop variable or ``np`` the exercise
    binds or imports itself) or change shared objects. Found: the function as an attribute of its
    module however reached (``ranking.softmax``, ``helpers.ranking.softmax``, an import alias,
    ``from helpers.ranking import softmax``, through another workbook module that imports it:
    ``helpers.tflite.ranking.softmax``), the module itself used other than through an attribute
    (``r = ranking``, ``getattr(ranking, ...)``, ``vars(ranking)``) or its ``__dict__``, the package
    ``helpers`` used bare; for ``"name()"``, the notebook's object ``name`` used other than through
    its attributes (``block.expand`` is fine)."""
    from .answers import python_source

    wanted = [tuple(r.split(".", 1)) for r in probe.references if not r.endswith("()")]
    objects = {r[:-2] for r in probe.references if r.endswith("()")}
    modules = {m for m, _ in wanted}
    bare = {f: f"{m}.{f}" for m, f in wanted}
    trees = []
    for source in sources:
        try:
            trees.append(ast.parse(python_source(source)))
        except (SyntaxError, ValueError):
            continue
    trees = _feeding(trees)
    defined = {  # the student's own functions and variables of those names are theirs
        getattr(node, "name", None) or getattr(node, "id", None)
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
        or (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store))
    }
    found: set[str] = set()

    def reached(origin: str) -> None:
        """A workbook name reached: a wanted module (``"ranking"``) or function (``"ranking.softmax"``)."""
        if "." in origin:
            found.update({origin} & set(probe.references))
        elif origin in modules:
            found.update(f"{m}.{f}" for m, f in wanted if m == origin)

    for tree in trees:
        aliases = {module: module for module in modules if module not in defined}  # `from helpers import ranking`
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {
                    a.asname: a.name.split(".")[1] for a in node.names if a.name.startswith("helpers.") and a.asname
                }
            elif isinstance(node, ast.ImportFrom) and (node.module or "helpers").split(".")[0] == "helpers":
                inner = (node.module or "helpers").split(".")[1:2]
                for a in node.names:
                    if not inner:
                        aliases[a.asname or a.name] = a.name
                    elif a.name == "*":
                        found |= {f"{m}.{f}" for m, f in wanted if inner == [m]}
                        for origin in _bindings(inner[0]).values():
                            reached(origin)
                    else:
                        origin = f"{inner[0]}.{a.name}" if inner[0] in modules else _bindings(inner[0]).get(a.name, "")
                        if origin in modules or origin.split(".")[0] in modules:
                            aliases[a.asname or a.name] = origin
                            if "." in origin:
                                reached(origin)

        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

        def denotes(node, aliases: dict[str, str] = aliases) -> str | None:
            """The workbook module (or ``"helpers"``) a name or attribute chain stands for, if any."""
            if isinstance(node, ast.Name):
                if node.id == "helpers" and "helpers" not in defined:
                    return "helpers"
                return aliases.get(node.id) if "." not in aliases.get(node.id, ".") else None
            if isinstance(node, ast.Attribute):
                inner = denotes(node.value, aliases)
                if inner == "helpers":
                    return node.attr
                if inner is not None:
                    origin = _bindings(inner).get(node.attr, "")
                    return origin if origin and "." not in origin else None
            return None

        for node in ast.walk(tree):
            parent = parents.get(node)
            module = denotes(node) if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)) else None
            if module is not None:
                attribute = parent.attr if isinstance(parent, ast.Attribute) and parent.value is node else None
                if attribute is None:  # the module itself used: handed, assigned, put in a list, ...
                    if module == "helpers":
                        found |= {f"{m}.{f}" for m, f in wanted}
                    else:
                        reached(module)
                        for origin in _bindings(module).values():
                            reached(origin)
                elif attribute == "__dict__" or module in modules:
                    if attribute == "__dict__":
                        reached(module)
                    else:
                        reached(f"{module}.{attribute}")
                elif module != "helpers":
                    origin = _bindings(module).get(attribute, "")
                    if "." in origin:
                        reached(origin)
            if isinstance(node, ast.Name) and node.id in aliases and "." in aliases[node.id] and node.id not in defined:
                reached(aliases[node.id])
            if isinstance(node, ast.Name) and node.id in bare and node.id not in defined:
                found.add(bare[node.id])  # the notebook's `from helpers.layers import first_layer_variables`
            if isinstance(node, ast.Name) and node.id in objects and not isinstance(node.ctx, ast.Store):
                if not (isinstance(parent, ast.Attribute) and parent.attr not in ("call", "__call__")):
                    found.add(f"{node.id}()")
    return sorted(found)
