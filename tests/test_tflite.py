"""TFLite conversion and the one interpreter helper that runs ours and Google's models alike."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import images, tflite, zoo
from helpers.errors import WorkbookError
from helpers.paths import REPO


def cli(*args):
    command = [sys.executable, "-m", "helpers", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 3-class classifier on 16x16 pixels (input named ``pixels``) in float32 and int8 files."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(0)
    calibration = rng.integers(0, 256, (32, 16, 16, 3)).astype(np.float32)
    folder = tmp_path_factory.mktemp("tiny")
    paths = {}
    for mode in tflite.MODES:
        paths[mode] = folder / f"tiny_{mode}.tflite"
        paths[mode].write_bytes(tflite.convert(model, mode, lambda: ([c[None]] for c in calibration)))
    (folder / "tiny_labels.txt").write_text("a\nb\nc\n")
    return model, paths, calibration


def test_conversions_agree_with_keras(tiny):
    model, paths, calibration = tiny
    photo = calibration[0].astype(np.uint8)
    expected = model.predict(photo[None].astype(np.float32), verbose=0)[0]
    for mode, path in paths.items():
        runner = tflite.TFLiteClassifier(path)
        assert runner.class_names == ["a", "b", "c"]  # from tiny_labels.txt: tiny_int8 -> tiny_labels.txt
        assert (runner.mean, runner.std) == (0.0, 1.0)  # float input named pixels, or int8 with scale 1
        # float32 is exact up to summation order; int8 probabilities are multiples of 1/256 and every
        # activation is rounded: 0.03 is a few quantization steps.
        tolerance = 1e-5 if mode == "float32" else 0.03
        np.testing.assert_allclose(runner.probabilities([photo])[0], expected, atol=tolerance, err_msg=mode)
    assert tflite.TFLiteClassifier(paths["int8"]).input["dtype"] == np.int8  # pixel - 128
    with pytest.raises(WorkbookError, match="representative"):
        tflite.convert(model, "int8")
    with pytest.raises(WorkbookError, match="unknown conversion mode"):
        tflite.convert(model, "int4")


def test_google_uint8_model_conventions(pack):
    runner = zoo.load("mobilenet_v2_1.0_224_quant")
    assert (runner.mean, runner.std) == (127.5, 127.5)  # uint8 input, scale 1/128, zero point 128 -> [-1, 1]
    assert runner.background and len(runner.class_names) == 1000 and runner.softmax_output
    ((top,),) = runner.predict([images.load_image(images.resolve_image("grace_hopper.bmp"))], 1)
    assert (top.label, top.wnid) == ("military uniform", "n03763968")
    # The pack's reference is 0.922 (another resize); ours 0.926: one uint8 probability step is 0.004.
    assert top.probability == pytest.approx(0.922, abs=0.01)


def test_dequantize_per_axis():
    q = np.array([[[[0, 10]]], [[[20, 30]]]], np.int8)  # 2 output channels on axis 0
    detail = {
        "quantization_parameters": {
            "scales": np.array([0.5, 2.0]),
            "zero_points": np.array([0, 10]),
            "quantized_dimension": 0,
        }
    }
    np.testing.assert_allclose(tflite.dequantize(q, detail).reshape(2, 2), [[0.0, 5.0], [20.0, 40.0]])


def test_not_a_model_and_wrong_layout(tmp_path, tiny):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(WorkbookError, match="not a TFLite model"):
        tflite.TFLiteClassifier(bad)
    with pytest.raises(WorkbookError, match=r"input shape \[1, 16, 16, 3\] does not fit"):
        tflite.TFLiteClassifier(tiny[1]["float32"], data_format="channel_first")
    with pytest.raises(WorkbookError, match="not found"):
        tflite.TFLiteClassifier(tmp_path / "missing.tflite")


def test_labels_file_must_match_outputs(tmp_path, tiny):
    labels = tmp_path / "two.txt"
    labels.write_text("x\ny\n")
    with pytest.raises(WorkbookError, match="lists 2 names but"):
        tflite.TFLiteClassifier(tiny[1]["int8"], labels_file=labels)


def test_save_tensors_layout_and_refusal(tmp_path, tiny):
    runner = tflite.TFLiteClassifier(tiny[1]["float32"], preserve_all_tensors=True)
    runner.invoke(tiny[2][0].astype(np.uint8))
    folder = tflite.save_tensors(runner, tmp_path / "dump")
    index = json.loads((folder / "tensors.json").read_text())
    (entry,) = [t for t in index["tensors"] if t["name"].startswith("serving_default_pixels")]
    assert entry["shape"] == [1, 3, 16, 16]  # NCHW by default
    np.testing.assert_array_equal(np.load(folder / entry["file"])[0], tiny[2][0].transpose(2, 0, 1))
    with pytest.raises(WorkbookError, match="not empty"):
        tflite.save_tensors(runner, folder)
    tflite.save_tensors(runner, folder, force=True, layout="nhwc")
    assert json.loads((folder / "tensors.json").read_text())["layout"] == "nhwc"


def test_cli_tflite(tmp_path, tiny, pack):
    photo = tmp_path / "p.png"
    Image.fromarray(tiny[2][1].astype(np.uint8)).save(photo)
    result = cli("tflite", str(photo), "--model", str(tiny[1]["int8"]), "--json", "--top-k", "3")
    assert result.returncode == 0, result.stderr
    (answer,) = json.loads(result.stdout)
    assert sorted(p["label"] for p in answer["predictions"]) == ["a", "b", "c"]
    # predict takes any .tflite file through the same classifier interface: the same answer.
    same = cli("predict", str(photo), "--model", str(tiny[1]["int8"]), "--json", "--top-k", "3")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)[0]["predictions"] == answer["predictions"]

    dump = tmp_path / "dump"
    result = cli(
        "tflite", "parrot.jpg", "--model", "mobilenet_v1_0.25_128_quant", "--save-tensors", str(dump), "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["predictions"][0]["label"] == "macaw"
    assert (dump / "tensors.json").is_file()
    again = cli("tflite", "parrot.jpg", "--model", "mobilenet_v1_0.25_128_quant", "--save-tensors", str(dump))
    assert again.returncode == 2 and again.stderr.strip().endswith("is not empty; choose another or pass --force")

    bad = tmp_path / "bad.tflite"
    bad.write_text("hello")
    result = cli("tflite", "parrot.jpg", "--model", str(bad))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "not a TFLite model" in result.stderr
    result = cli("tflite", "parrot.jpg", "--model", str(bad), "--input-mean", "3")
    assert result.returncode == 2 and "together" in result.stderr


def test_channel_first_model(tmp_path, tiny):
    """An NCHW-input model (a Permute in front of the tiny one) gives the same scores with
    --data-format channel_first as the NHWC model with the default layout."""
    import keras

    model, paths, calibration = tiny
    inputs = keras.Input((3, 16, 16), name="pixels")
    nchw = keras.Model(inputs, model(keras.layers.Permute((2, 3, 1))(inputs)))
    path = tmp_path / "nchw.tflite"
    path.write_bytes(tflite.convert(nchw, "float32"))
    photo = calibration[3].astype(np.uint8)
    runner = tflite.TFLiteClassifier(
        path, data_format="channel_first", labels_file=paths["int8"].with_name("tiny_labels.txt")
    )
    assert runner.input_tensor(photo).shape == (1, 3, 16, 16)
    expected = tflite.TFLiteClassifier(paths["float32"]).probabilities([photo])
    np.testing.assert_allclose(runner.probabilities([photo]), expected, atol=1e-6)  # same graph, transposed input
    with pytest.raises(WorkbookError, match="try --data-format channel_first"):
        tflite.TFLiteClassifier(path, labels_file=paths["int8"].with_name("tiny_labels.txt"))


def test_quantization_bytes_count_what_the_file_stores(tiny):
    """Read the flatbuffer itself: scales are float32 and zero points int64 (the interpreter hands
    zero points back as int32, which would undercount them by half)."""
    from ai_edge_litert import schema_py_generated as schema

    path = tiny[1]["int8"]
    subgraph = schema.Model.GetRootAs(path.read_bytes(), 0).Subgraphs(0)
    stored, per_channel = 0, False
    for t in range(subgraph.TensorsLength()):
        q = subgraph.Tensors(t).Quantization()
        if q is not None and q.ScaleLength():
            assert q.ScaleAsNumpy().dtype == np.float32 and q.ZeroPointAsNumpy().dtype == np.int64
            stored += q.ScaleAsNumpy().nbytes + q.ZeroPointAsNumpy().nbytes
            per_channel |= q.ScaleLength() > 1
    assert per_channel  # the conv's weights have one scale per output channel
    assert tflite.TFLiteClassifier(path).quantization_bytes() == stored
    assert tflite.TFLiteClassifier(tiny[1]["float32"]).quantization_bytes() == 0


def test_activation_indices_and_layer_errors(tiny):
    model, paths, calibration = tiny
    photo = calibration[5].astype(np.uint8)
    runners = {m: tflite.TFLiteClassifier(paths[m], preserve_all_tensors=True) for m in ("float32", "int8")}
    for runner in runners.values():
        runner.invoke(photo)
    details = {d["index"]: d for d in runners["float32"].interpreter.get_tensor_details()}
    computed = tflite.activation_indices(runners["float32"])
    assert runners["float32"].output["index"] in computed
    assert not any(details[i]["name"].endswith("kernel") for i in computed)  # weights are inputs, not computed
    conv = [d for d in details.values() if len(d["shape"]) == 4 and d["index"] in computed]
    assert conv, "the conv's activation is among the computed tensors"

    same = tflite.layer_errors(runners["float32"], runners["float32"])
    assert same and all(row["max_abs_error"] == 0.0 for row in same)  # a model against itself
    rows = tflite.layer_errors(runners["float32"], runners["int8"])
    assert [r["tensor"] for r in rows] == [r["tensor"] for r in same]  # matched by name across the two files
    # One quantized conv on a random photo: input and weight rounding only, well under 5 % (measured ~1 %).
    assert 0 < rows[0]["relative_error"] < 0.05


def test_logits_output_gets_a_softmax(tmp_path, tiny):
    """A model without a final SOFTMAX op is read as logits: probabilities are their softmax."""
    import keras

    model, paths, calibration = tiny
    dense = keras.layers.Dense(3)  # the same weights as the final layer, without its softmax
    logits = keras.Model(model.input, dense(model.layers[-2].output))
    dense.set_weights(model.layers[-1].get_weights())
    path = tmp_path / "tiny_logits.tflite"
    path.write_bytes(tflite.convert(logits, "float32"))
    runner = tflite.TFLiteClassifier(path, labels_file=paths["int8"].with_name("tiny_labels.txt"))
    assert not runner.softmax_output and tflite.TFLiteClassifier(paths["float32"]).softmax_output
    photo = calibration[2].astype(np.uint8)
    expected = model.predict(photo[None].astype(np.float32), verbose=0)
    np.testing.assert_allclose(runner.probabilities([photo]), expected, atol=1e-5)  # float32 rounding only


def test_missing_op_list_is_a_clear_error():
    class FutureInterpreter:  # a LiteRT without the private method
        pass

    with pytest.raises(WorkbookError, match="_get_ops_details"):
        tflite.operators(FutureInterpreter())


def test_int8_input_and_output_keep_the_whole_graph_in_one_xnnpack_partition(tiny):
    import keras

    model, paths, calibration = tiny
    runner = tflite.TFLiteClassifier(paths["int8"])
    assert (runner.input["dtype"], runner.input["quantization"]) == (np.int8, (1.0, -128))
    # The tiny model ends in an INT8 SOFTMAX, which XNNPACK does not run: outside the partition.
    assert not tflite.whole_graph_delegated(runner.interpreter)
    softmax_dense = model.layers[-1]
    linear = keras.layers.Dense(3)  # the same weights, ending in logits
    logits = keras.Model(model.input, linear(softmax_dense.input))
    linear.set_weights(softmax_dense.get_weights())
    representative = lambda: ([c[None]] for c in calibration)  # noqa: E731
    found = tflite.interpreter(tflite.convert(logits, "int8", representative))
    assert found.get_input_details()[0]["dtype"] == np.int8
    assert tflite.whole_graph_delegated(found)
    assert tflite.whole_graph_delegated(tflite.interpreter(tflite.convert(logits, "float32")))
    # uint8 input and output: the converter's uint8 <-> int8 QUANTIZE ops stay outside XNNPACK.
    uint8 = tflite.interpreter(tflite.convert(logits, "int8", representative, io_type="uint8"))
    assert uint8.get_input_details()[0]["dtype"] == np.uint8
    assert not tflite.whole_graph_delegated(uint8)
    with pytest.raises(WorkbookError, match="io_type"):
        tflite.convert(logits, "int8", representative, io_type="float32")


def test_conversion_cache_keys_on_every_input(tmp_path, monkeypatch):
    """A conversion again reads the cached bytes (identical to converting anew); a changed weight,
    calibration photo, option or layer name is converted anew; a damaged cached file is replaced."""
    import keras

    from helpers.paths import BUILD_ENV

    monkeypatch.setenv(BUILD_ENV, str(tmp_path / "build"))
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3), name="pixels")
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(inputs), name="toy")
    photos = np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)

    def representative(values=photos):
        return ([v[None]] for v in values)

    first = tflite.convert(model, "int8", representative)
    cached = sorted(tflite.conversion_cache().glob("*.tflite"))
    assert len(cached) == 1 and cached[0].read_bytes() == first
    assert tflite.convert(model, "int8", representative, cache=False) == first  # the cache holds what converting gives
    assert tflite.convert(model, "int8", representative) == first
    assert len(list(tflite.conversion_cache().glob("*.tflite"))) == 1  # read, not converted again

    changed_photo = photos.copy()
    changed_photo[0, 0, 0, 0] += 1
    tflite.convert(model, "int8", lambda: representative(changed_photo))
    tflite.convert(model, "int8", representative, per_channel=False)
    model.get_layer("conv").bias.assign([0.0, 0.5])
    tflite.convert(model, "int8", representative)
    renamed = keras.Model(inputs, model.get_layer("conv").output, name="toy_renamed")
    tflite.convert(renamed, "int8", representative)
    assert len(list(tflite.conversion_cache().glob("*.tflite"))) == 5  # each change: its own entry

    cached[0].write_bytes(b"not a model")  # damaged: converted anew and stored again
    model.get_layer("conv").bias.assign([0.0, 0.0])  # the first model's weights again (Conv2D starts at zero bias)
    assert tflite.convert(model, "int8", representative) == first
    assert cached[0].read_bytes() == first


def test_short_name_keeps_the_layer_and_the_op():
    name = "imagenet_1/mobilenet_v1_0.25_224_logits_1/conv_dw_1_relu_1/Relu6;imagenet_1/other/BiasAdd"
    assert tflite.short_name(name) == "conv_dw_1_relu_1/Relu6"
    assert tflite.short_name("serving_default_pixels:0") == "serving_default_pixels:0"
