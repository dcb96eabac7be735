"""Reading every kind of image file into RGB, and preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers import images
from helpers.errors import WorkbookError


@pytest.fixture
def photo():
    return images.load_image(images.repo_image("chelsea.png"))


def test_repo_photo_is_rgb(photo):
    assert photo.shape == (300, 451, 3) and photo.dtype == np.uint8


def test_grayscale_becomes_three_equal_channels(tmp_path, photo):
    Image.fromarray(photo).convert("L").save(tmp_path / "gray.png")
    out = images.load_image(tmp_path / "gray.png")
    assert out.shape == photo.shape and (out[..., 0] == out[..., 2]).all()


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red, fully transparent on the left half, opaque on the right
    rgba[:, 2:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = images.load_image(tmp_path / "rgba.png")
    assert (out[:, :2] == 255).all() and (out[:, 2:] == [200, 0, 0]).all()


def test_palette_image(tmp_path, photo):
    Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    out = images.load_image(tmp_path / "p.png")
    assert out.shape == photo.shape
    assert np.abs(out.astype(int) - photo).mean() < 12  # 256-colour palette: small average error


def test_16_bit_png_is_scaled_to_8_bits(tmp_path):
    ramp = np.arange(16, dtype=np.uint16).reshape(4, 4) * 4369  # 0 .. 65535
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = images.load_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8 and out[0, 0, 0] == 0 and out[3, 3, 0] == 255 and out[1, 3, 1] == 119


def test_bmp(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "a.bmp")
    assert (images.load_image(tmp_path / "a.bmp") == photo).all()


def test_missing_image_names_it(tmp_path):
    with pytest.raises(WorkbookError, match="image not found: .*nope.jpg"):
        images.load_image(tmp_path / "nope.jpg")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(WorkbookError, match="notes.jpg is not an image"):
        images.load_image(tmp_path / "notes.jpg")


def test_truncated_jpeg(tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:2000])
    with pytest.raises(WorkbookError, match="cut.jpg could not be read"):
        images.load_image(tmp_path / "cut.jpg")


def test_preprocess_shape_and_range(photo):
    x = images.preprocess([photo, photo], 160)
    assert x.shape == (2, 160, 160, 3) and x.dtype == np.float32
    flat = np.zeros((50, 80, 3), np.uint8)
    flat[:, 40:] = 255
    y = images.preprocess(flat, 16)
    assert y[0, :, 0].min() == -1.0 and y[0, :, -1].max() == 1.0  # 0 -> -1 and 255 -> +1 exactly


def test_central_crop_keeps_the_middle():
    image = np.zeros((100, 100, 3), np.uint8)
    image[25:75, 25:75] = 255
    assert images.resize(image, 10, central_crop=0.5).min() == 255
    with pytest.raises(WorkbookError):
        images.resize(image, 10, central_crop=1.5)


def test_resize_equals_keras_load_img_bilinear_not_its_default(tmp_path, photo):
    """The workbook's preprocessing is load_img with interpolation="bilinear"; load_img's own
    default is "nearest", which gives other pixels."""
    import keras

    Image.fromarray(photo).save(tmp_path / "p.png")
    bilinear = np.asarray(keras.utils.load_img(tmp_path / "p.png", target_size=(96, 96), interpolation="bilinear"))
    default = np.asarray(keras.utils.load_img(tmp_path / "p.png", target_size=(96, 96)))
    np.testing.assert_array_equal(images.resize(photo, 96), bilinear)
    assert np.abs(default.astype(int) - bilinear).mean() > 1  # nearest neighbour differs visibly


@pytest.mark.parametrize("shape", [(375, 500), (333, 500), (500, 353), (7, 9)])
def test_central_crop_is_tensorflows(shape):
    """slim's evaluation crops with tf.image.central_crop; ours is the same pixels."""
    import tensorflow as tf

    image = np.random.default_rng(0).integers(0, 255, (*shape, 3)).astype(np.uint8)
    np.testing.assert_array_equal(images.crop_center(image, 0.875), tf.image.central_crop(image, 0.875).numpy())
