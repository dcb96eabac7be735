"""Flower data folders (bad input included), the bottleneck cache and saved transfer classifiers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import bottlenecks, flowers, labels, transfer
from helpers.errors import WorkbookError
from helpers.paths import REPO


def photo(path: Path, value: int, size: int = 20) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


def test_split_folders_are_listed_in_class_order(tmp_path):
    for split in ("train", "val"):
        for i, name in enumerate(("tulips", "daisy")):
            photo(tmp_path / split / name / f"{split}{i}.png", 10 * i)
    names, found = flowers.list_photos(tmp_path)
    assert names == ["daisy", "tulips"]
    assert [(p.name, label) for p, label in found["val"]] == [("val1.png", 0), ("val0.png", 1)]


def test_flat_folder_split_is_deterministic_and_about_a_fifth():
    names = [f"{i}_photo.jpg" for i in range(5000)]
    share = np.mean([flowers.is_val(n) for n in names])
    assert share == pytest.approx(52 / 256, abs=0.015)  # 20.3 % expected; 5000 draws: sd 0.6 %
    # Pinned: the split is a documented rule, so a change that moves photos between splits must fail.
    assert [i for i in range(60) if flowers.is_val(names[i])] == [6, 10, 15, 16, 21, 35, 40, 50, 54]


def test_folder_without_classes_is_an_error(tmp_path):
    with pytest.raises(WorkbookError, match="no class folders"):
        flowers.list_photos(tmp_path)
    with pytest.raises(WorkbookError, match="not found"):
        flowers.list_photos(tmp_path / "nowhere")


def test_class_without_photos_is_an_error(tmp_path):
    photo(tmp_path / "roses" / "a.png", 1)
    (tmp_path / "tulips").mkdir()
    (tmp_path / "tulips" / "notes.txt").write_text("no photos here")
    with pytest.raises(WorkbookError, match="tulips has no photos"):
        flowers.list_photos(tmp_path)


def test_unreadable_photo_is_skipped_with_a_warning_naming_it(tmp_path):
    for i in range(3):
        photo(tmp_path / "train" / "roses" / f"r{i}.png", i)
        photo(tmp_path / "val" / "roses" / f"v{i}.png", i)
    (tmp_path / "train" / "roses" / "broken.jpg").write_bytes(b"not a jpeg at all")
    names, found = flowers.list_photos(tmp_path)
    with pytest.warns(UserWarning, match="broken.jpg"):
        train = flowers.load_split(found["train"], names, size=8)
    assert len(train) == 3 and train.images.shape == (3, 8, 8, 3)


def test_class_left_without_readable_photos_is_an_error(tmp_path):
    photo(tmp_path / "train" / "roses" / "r.png", 1)
    (tmp_path / "train" / "tulips").mkdir(parents=True)
    (tmp_path / "train" / "tulips" / "t.jpg").write_bytes(b"garbage")
    names, found = flowers.list_photos(tmp_path / "train")
    items = found["train"] + found["val"]
    with pytest.warns(UserWarning), pytest.raises(WorkbookError, match="tulips"):
        flowers.load_split(items, names, size=8)


def test_few_shot_takes_n_per_class():
    split = flowers.FlowerSplit(
        np.zeros((10, 2, 2, 3), np.uint8), np.array([0] * 6 + [1] * 4), [Path(".")] * 10, ["a", "b"]
    )
    few = split.per_class(3)
    assert np.bincount(few.labels).tolist() == [3, 3]
    with pytest.raises(WorkbookError, match="only 4"):
        split.per_class(5)


def tiny_extractor(scale: float = 1.0):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv", kernel_initializer=keras.initializers.Constant(scale))(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="tiny")


def test_bottleneck_cache_is_reused_and_keyed_by_weights_and_pixels(tmp_path):
    rng = np.random.default_rng(0)
    photos = rng.integers(0, 255, (6, 8, 8, 3)).astype(np.float32)
    model = tiny_extractor()
    first, stats1 = bottlenecks.bottlenecks(model, photos, root=tmp_path)
    second, stats2 = bottlenecks.bottlenecks(model, photos, root=tmp_path)
    assert (stats1.misses, stats2.hits, stats2.misses) == (6, 6, 0)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, model.predict(photos, verbose=0), rtol=1e-6)  # same model, other batch

    changed = photos.copy()
    changed[0, 0, 0, 0] += 1  # one pixel: that photo only is recomputed
    assert bottlenecks.bottlenecks(model, changed, root=tmp_path)[1].misses == 1

    other = tiny_extractor(scale=2.0)  # same name, other weights: a different key, nothing reused
    assert bottlenecks.model_key(other) != bottlenecks.model_key(model)
    features, stats = bottlenecks.bottlenecks(other, photos, root=tmp_path)
    assert stats.misses == 6
    np.testing.assert_allclose(features, 2 * first, rtol=1e-5)  # linear in the kernel: float32 rounding only


def test_corrupt_cache_file_is_recomputed(tmp_path):
    photos = np.ones((2, 8, 8, 3), np.float32)
    model = tiny_extractor()
    bottlenecks.bottlenecks(model, photos[:1], root=tmp_path)
    (cached,) = list(tmp_path.rglob("*.npy"))
    cached.write_bytes(b"truncated")
    features, stats = bottlenecks.bottlenecks(model, photos[:1], root=tmp_path)
    assert stats.misses == 1 and features.shape == (1, 4)


def test_labels_path_rule(tmp_path):
    assert labels.labels_path(tmp_path / "flowers.keras") == tmp_path / "flowers_labels.txt"
    (tmp_path / "flowers_labels.txt").write_text("a\n")
    assert labels.labels_path(tmp_path / "flowers_int8.tflite") == tmp_path / "flowers_labels.txt"
    (tmp_path / "flowers_int8_labels.txt").write_text("a\n")
    assert labels.labels_path(tmp_path / "flowers_int8.tflite") == tmp_path / "flowers_int8_labels.txt"


@pytest.fixture
def saved_classifier(tmp_path):
    """A tiny 3-class classifier on 32x32 photos whose scores are the mean of each colour channel."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Rescaling(1 / 10)(x)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(x))
    path, names = transfer.save_classifier(model, ["red", "green", "blue"], tmp_path / "colours.keras")
    assert names.read_text() == "red\ngreen\nblue\n"
    return path


def test_saved_classifier_round_trip_and_mismatched_labels(saved_classifier):
    model, names = transfer.load_classifier(saved_classifier)
    assert names == ["red", "green", "blue"]
    saved_classifier.with_name("colours_labels.txt").write_text("red\ngreen\n")
    with pytest.raises(WorkbookError, match="3 outputs but"):
        transfer.load_classifier(saved_classifier)


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("hello")
    with pytest.raises(WorkbookError, match="could not be loaded"):
        transfer.load_classifier(bad)


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "helpers", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_predict_with_a_saved_classifier(saved_classifier, tmp_path):
    blue = tmp_path / "blue.png"
    Image.fromarray(
        np.dstack([np.zeros((50, 40)), np.full((50, 40), 100), np.full((50, 40), 250)]).astype(np.uint8)
    ).save(blue)
    result = cli("predict", "--model", str(saved_classifier), str(blue), "--json", "--top-k", "3")
    assert result.returncode == 0, result.stderr
    (answer,) = json.loads(result.stdout)
    assert [p["label"] for p in answer["predictions"]] == ["blue", "green", "red"]
    assert answer["predictions"][0]["wnid"] is None
    expected = np.exp([25.0, 10.0, 0.0]) / np.exp([25.0, 10.0, 0.0]).sum()  # softmax(channel means / 10)
    assert [p["probability"] for p in answer["predictions"]] == pytest.approx(expected, rel=1e-5)


def test_predict_with_a_saved_classifier_refuses_imagenet_options(saved_classifier, pack):
    result = cli("predict", "--model", str(saved_classifier), "images/coffee.png", "--labels", "daisy", "--top-k", "1")
    assert result.returncode == 2 and "label subsets name ImageNet classes" in result.stderr
    result = cli("predict", "--model", str(saved_classifier), "images/coffee.png", "--top-k", "4")
    assert result.returncode == 2 and "between 1 and the 3 classes of the model" in result.stderr
    result = cli("predict", "--model", "model.tflite", "images/coffee.png")
    assert result.returncode == 2 and result.stderr.startswith("error: TFLite model not found: model.tflite (give")
    result = cli("predict", "--model", "missing.keras", "images/coffee.png")
    assert result.returncode == 2 and result.stderr.strip() == "error: model file not found: missing.keras"


def test_first_per_class_keeps_order_and_counts():
    found = {"train": [(Path(f"t{i}"), i % 2) for i in range(10)], "val": [(Path(f"v{i}"), i % 2) for i in range(4)]}
    small = flowers.first_per_class(found, 2, train=2, val=1)
    assert [p.name for p, _ in small["train"]] == ["t0", "t2", "t1", "t3"]
    assert [p.name for p, _ in small["val"]] == ["v0", "v1"]


def test_dataset_batches_shuffles_and_keeps_pairs():
    labels = np.arange(10) % 5
    split = flowers.FlowerSplit(
        np.repeat(labels[:, None, None, None], 2 * 2 * 3).reshape(10, 2, 2, 3).astype(np.uint8), labels, [], []
    )
    batches = list(split.dataset(4, shuffle=True, seed=1).as_numpy_iterator())
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and sorted(y.tolist()) == sorted(labels.tolist())
    np.testing.assert_array_equal(x[:, 0, 0, 0], y)  # each photo stays with its label after shuffling


def test_val_photos_identical_to_train_photos_are_dropped():
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (3, 4, 4, 3)).astype(np.uint8)
    val_images = np.stack([train_images[1], rng.integers(0, 256, (4, 4, 3)).astype(np.uint8), train_images[2]])
    train = flowers.FlowerSplit(train_images, np.array([0, 1, 1]), [Path(f"t{i}") for i in range(3)], ["a", "b"])
    val = flowers.FlowerSplit(val_images, np.array([1, 0, 1]), [Path(f"v{i}") for i in range(3)], ["a", "b"])
    kept, dropped = flowers.drop_duplicates_of(val, train)
    assert dropped == [Path("v0"), Path("v2")] and kept.paths == [Path("v1")] and kept.labels.tolist() == [0]
    np.testing.assert_array_equal(kept.images[0], val_images[1])


def test_fine_tuning_selects_whole_blocks_by_name():
    """On the real MobileNet 0.25 layer list: blocks 10-13 are 4 depthwise + 4 pointwise kernels.
    Counting the last 24 layers (the old selection) misses conv_dw_10, because block 12 has a
    conv_pad_12 layer."""
    import keras

    base = keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=0.25, include_top=False, weights=None)
    base.name = transfer.BASE_NAME
    inputs = keras.Input((224, 224, 3))
    model = keras.Model(inputs, base(inputs))
    trainable = transfer.set_trainable_blocks(model, 10)
    expected = [f"conv_{kind}_{i}/kernel" for i in range(10, 14) for kind in ("dw", "pw")]
    assert sorted(trainable) == sorted(expected)
    assert "conv_dw_10" not in [layer.name for layer in base.layers[-24:]]  # why counting layers was wrong
    assert [transfer.block_of(n) for n in ("conv_pad_12", "conv_dw_10_bn", "conv_pw_13_relu", "conv1")] == [
        12,
        10,
        13,
        None,
    ]
    with pytest.raises(WorkbookError, match="blocks 1-13"):
        transfer.set_trainable_blocks(model, 14)


def test_small_flat_classes_keep_at_least_one_photo_on_each_side(tmp_path):
    """12 photos per class hash to val about a fifth of the time, so some classes get none (or all):
    the photo nearest the threshold moves, so that every class is in both splits."""
    names = [f"p{i}.jpg" for i in range(400)]
    train_only = [n for n in names if not flowers.is_val(n)][:3]
    val_only = [n for n in names if flowers.is_val(n)][:2]
    mixed = [n for n in names if flowers.is_val(n)][2:3] + [n for n in names if not flowers.is_val(n)][3:5]
    for cls, files in (("a", train_only), ("b", val_only), ("c", mixed)):
        (tmp_path / cls).mkdir()
        for name in files:
            (tmp_path / cls / name).write_bytes(b"")
    _, found = flowers.list_photos(tmp_path)
    per = {
        s: {cls: sorted(p.name for p, label in found[s] if label == i) for i, cls in enumerate("abc")} for s in found
    }
    assert all(per["train"][cls] and per["val"][cls] for cls in "abc")
    assert per["val"]["c"] == mixed[:1] and sorted(per["train"]["c"]) == sorted(mixed[1:])  # untouched
    assert len(per["val"]["a"]) == 1 and len(per["train"]["b"]) == 1


def test_head_ensemble_is_the_softmax_of_its_heads_mean_logits(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (60, 6)).astype(np.float32)
    labels_ = (features[:, 0] > 0).astype(int) + (features[:, 1] > 0).astype(int)  # 3 classes
    trainer, ensemble = transfer.head_ensemble(3, features, k=3)
    trainer.compile(optimizer="adam", loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True)] * 3)
    trainer.fit(features, [labels_] * 3, epochs=2, verbose=0)
    logits = [np.asarray(out) for out in trainer(features, training=False)]
    assert len(logits) == 3 and not np.allclose(logits[0], logits[1])  # three heads, three random starts
    mean = np.mean(logits, axis=0)
    expected = np.exp(mean - mean.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(ensemble(features, training=False)), expected, atol=1e-5)
    # It saves and loads in safe mode like any head (standard layers only).
    extractor = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(6)])
    path, _ = transfer.save_classifier(transfer.classifier(extractor, ensemble), ["a", "b", "c"], tmp_path / "e.keras")
    reloaded, _ = transfer.load_classifier(path)
    photos = rng.uniform(0, 255, (5, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(
        reloaded.predict(photos, verbose=0),
        transfer.classifier(extractor, ensemble).predict(photos, verbose=0),
        atol=1e-6,
    )
    with pytest.raises(WorkbookError, match="at least one head"):
        transfer.head_ensemble(3, features, k=0)
