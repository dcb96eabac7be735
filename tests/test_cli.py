"""``python -m helpers``: JSON shapes and one-line errors, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.paths import REPO


def run(*args, check_ok=True):
    result = subprocess.run(
        [sys.executable, "-m", "helpers", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    if check_ok:
        assert result.returncode == 0, result.stderr
    return result


def one_line_error(result):
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback, no TensorFlow chatter
    return lines[0]


def test_predict_json(pack):
    out = json.loads(run("predict", "images/chelsea.png", "parrot.jpg", "--json", "--top-k", "3").stdout)
    assert [r["image"] for r in out] == ["images/chelsea.png", "parrot.jpg"]
    assert out[1]["model"] == "mobilenet_v1_0.25_224"
    first = out[1]["predictions"][0]
    assert set(first) == {"rank", "label", "wnid", "index", "probability"}
    assert (first["rank"], first["label"], first["wnid"], first["index"]) == (1, "macaw", "n01818515", 88)
    assert len(out[0]["predictions"]) == 3


def test_predict_with_label_subset(pack):
    from helpers.labels import HOMEWORK_LABELS as labels

    out = json.loads(run("predict", "images/coffee.png", "--json", "--top-k", "10", "--labels", *labels).stdout)
    predictions = out[0]["predictions"]
    assert {p["index"] for p in predictions} == set(range(717, 727))
    # A float64 softmax over 10 values sums to 1 within a few ulps.
    assert sum(p["subset_probability"] for p in predictions) == pytest.approx(1.0, abs=1e-9)
    assert all(p["subset_probability"] > p["probability"] for p in predictions)


def test_layers_and_fold_bn(pack):
    rows = json.loads(run("layers", "--json").stdout)
    assert len(rows) == 15 and rows[0] == {"name": "MobilenetV1/Conv2d_0/weights", "shape": [3, 3, 3, 8]}
    assert rows[-1]["name"] == "MobilenetV1/Conv2d_1_pointwise/BatchNorm/moving_variance"
    keras_rows = json.loads(run("layers", "--json", "--naming", "keras").stdout)
    assert keras_rows[0]["name"] == "conv1/kernel" and len(keras_rows) == 15
    folded = json.loads(run("fold-bn", "--json").stdout)
    assert set(folded) == {"layer", "epsilon", "multiplier", "bias"} and len(folded["multiplier"]) == 8
    plain = json.loads(run("fold-bn", "--json", "--assume-gamma-one").stdout)
    assert plain["multiplier"] != folded["multiplier"]


def test_missing_image_is_one_line(tmp_path):
    line = one_line_error(run("predict", str(tmp_path / "nope.jpg"), check_ok=False))
    assert "nope.jpg" in line


def test_unreadable_image_is_one_line(tmp_path):
    (tmp_path / "fake.png").write_text("not a png")
    assert "fake.png" in one_line_error(run("predict", str(tmp_path / "fake.png"), check_ok=False))


def test_unknown_label_suggests(pack):
    line = one_line_error(run("predict", "images/coffee.png", "--labels", "piggybank", check_ok=False))
    assert "piggy bank" in line


def test_k_larger_than_label_set(pack):
    line = one_line_error(
        run("predict", "images/coffee.png", "--labels", "pier", "pillow", "--top-k", "3", check_ok=False)
    )
    assert "--top-k 3" in line and "2 labels" in line


def test_unknown_model_lists_known():
    line = one_line_error(run("predict", "images/coffee.png", "--model", "resnet50", check_ok=False))
    assert "mobilenet_v1_0.25_224" in line


def test_unknown_fold_layer(pack):
    assert "Conv2d_1_depthwise" in one_line_error(run("fold-bn", "--layer", "conv9", check_ok=False))


def test_missing_data_is_one_line(tmp_path):
    env_args = {"WORKBOOK_DATA": "", "WORKBOOK_OFFLINE": "1", "WORKBOOK_CACHE": str(tmp_path)}
    import os

    result = subprocess.run(
        [sys.executable, "-m", "helpers", "predict", "images/coffee.png"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env=os.environ | env_args,
    )
    line = one_line_error(result)
    assert "WORKBOOK_DATA" in line and "https://" in line
