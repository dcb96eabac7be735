"""Weight imprinting: the reference weights on a toy case, the keep-ImageNet rows, and the
``imprint`` command (bad inputs one line each; a real run read back by the ``tflite`` command)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from helpers import imprinting
from helpers.errors import WorkbookError
from tests.test_cli import one_line_error, run


def test_imprinted_weight_is_the_normalised_mean_of_normalised_embeddings():
    embeddings = np.array([[3.0, 4.0], [10.0, 0.0], [0.0, 2.0]])
    labels = np.array([0, 0, 1])
    w = imprinting.imprint_weights(embeddings, labels, 2)
    # class 0: mean of (0.6, 0.8) and (1, 0) = (0.8, 0.4), normalised; the raw mean (6.5, 2) differs
    np.testing.assert_allclose(w[0], np.array([0.8, 0.4]) / np.hypot(0.8, 0.4))
    np.testing.assert_allclose(w[1], [0.0, 1.0])
    assert not np.allclose(w[0], np.array([6.5, 2.0]) / np.hypot(6.5, 2.0))
    with pytest.raises(WorkbookError, match=r"class\(es\) \[2\]"):
        imprinting.imprint_weights(embeddings, labels, 3)


def test_keep_imagenet_rows_leave_imagenet_unchanged_and_centre_the_new_ones():
    rng = np.random.default_rng(0)
    w_in, b_in = rng.normal(size=(1000, 8)), rng.normal(size=1000)
    new = imprinting.l2_normalize(rng.normal(size=(2, 8)))
    mean = rng.uniform(size=8)
    w, b = imprinting.keep_imagenet_rows(w_in, b_in, new, mean)
    assert np.array_equal(w[:1000], w_in) and np.array_equal(b[:1000], b_in)
    f = rng.uniform(size=8)
    a = np.linalg.norm(w_in, axis=1).mean()
    np.testing.assert_allclose(f @ w[1000:].T + b[1000:], a * new @ (f - mean))


@pytest.fixture(scope="module")
def class_folder(pack, tmp_path_factory):
    """Three flower classes, 6 photos each, plus one unreadable file."""
    root = tmp_path_factory.mktemp("new_classes")
    source = pack / "datasets" / "flower_photos_subset" / "train"
    for name in ("daisy", "roses", "sunflowers"):
        (root / name).mkdir()
        for photo in sorted((source / name).iterdir())[:6]:
            shutil.copy(photo, root / name / photo.name)
    (root / "roses" / "broken.jpg").write_text("not a photo")
    return root


def test_imprint_bad_inputs_one_line_each(class_folder, tmp_path):
    assert "not found" in one_line_error(run("imprint", str(tmp_path / "nothere"), "--out", "x.tflite", check_ok=False))
    assert "no class folders" in one_line_error(run("imprint", str(tmp_path), "--out", "x.tflite", check_ok=False))
    (tmp_path / "empty").mkdir()
    assert "has no photos" in one_line_error(run("imprint", str(tmp_path), "--out", "x.tflite", check_ok=False))
    (tmp_path / "empty" / "bad.jpg").write_text("x")
    assert "no readable photos" in one_line_error(
        run("imprint", str(tmp_path), "--out", "x.tflite", check_ok=False)
    ).replace("\n", "")
    assert ".tflite" in one_line_error(run("imprint", str(class_folder), "--out", "x.onnx", check_ok=False))
    error = one_line_error(run("imprint", str(class_folder), "--out", "x.tflite", "--model", "nope", check_ok=False))
    assert "mobilenet_v1_0.25_224" in error


def test_imprint_writes_a_model_the_tflite_command_reads(class_folder, tmp_path):
    out = tmp_path / "three.tflite"
    result = run("imprint", str(class_folder), "--out", str(out), "--json")
    assert result.stderr.strip().splitlines() == [
        f"warning: skipping unreadable photo: {class_folder / 'roses' / 'broken.jpg'} is not an image PIL can read "
        "(wrong format or not an image)"
    ]
    info = json.loads(result.stdout)
    assert info["classes"] == {"daisy": 6, "roses": 6, "sunflowers": 6} and info["outputs"] == 3
    assert (tmp_path / "three_labels.txt").read_text().split() == ["daisy", "roses", "sunflowers"]
    photo = sorted((class_folder / "sunflowers").iterdir())[0]
    ranked = json.loads(run("tflite", str(photo), "--model", str(out), "--json").stdout)[0]["predictions"]
    assert len(ranked) == 3  # the default top-5 shrinks to the model's 3 classes
    # a photo that was imprinted sits closest to its own class mean (6 photos, well separated here)
    assert ranked[0]["label"] == "sunflowers"


def test_keep_imagenet_int8_leaves_a_known_photo_unchanged(class_folder, tmp_path):
    out = tmp_path / "keep.tflite"
    result = run("imprint", str(class_folder), "--out", str(out), "--keep-imagenet", "--int8", "--json")
    info = json.loads(result.stdout)
    assert info["outputs"] == 1003
    labels = (tmp_path / "keep_labels.txt").read_text().splitlines()
    assert labels[0] == "tench" and labels[-3:] == ["daisy", "roses", "sunflowers"]
    ranked = json.loads(run("tflite", "parrot.jpg", "--model", str(out), "--json").stdout)[0]["predictions"]
    assert ranked[0]["label"] == "macaw"  # the stock model's top-1 (0.94), unchanged by 3 new classes
