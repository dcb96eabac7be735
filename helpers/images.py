"""Reading photos of any common format into RGB, and MobileNet's input preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import data
from .errors import WorkbookError

REPO_IMAGES = Path(__file__).resolve().parent.parent / "images"
REPO_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")  # committed in images/ (CC0, images/LICENSE.md)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``uint8`` RGB, shape ``[height, width, 3]``.

    Grayscale is replicated to three channels; RGBA, LA and palette images with transparency are
    composited onto white; 16-bit and 32-bit integer images are scaled down to 8 bits; EXIF
    rotation is applied. A missing, unreadable or non-image file raises :class:`WorkbookError`
    naming it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise WorkbookError(f"image not found: {path}")
    if path.is_dir():
        raise WorkbookError(f"{path} is a folder, not an image file")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise WorkbookError(f"{path} is not an image PIL can read (wrong format or not an image)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise WorkbookError(f"{path} could not be read as an image (corrupt or truncated?): {error}") from None
    return to_rgb(image)


def to_rgb(image) -> np.ndarray:
    """Convert a PIL image of any mode to an ``uint8`` RGB array."""
    from PIL import Image

    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        if mode == "I" and values.max() > 65535:
            top = float(2**32 - 1)
        if mode == "F":
            top = max(float(values.max()), 1.0) if values.max() > 1 else 1.0
        gray = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def resize(image: np.ndarray, size: int, *, central_crop: float | None = None) -> np.ndarray:
    """Resize an RGB ``uint8`` image to ``size x size`` with PIL's bilinear filter.

    This equals ``keras.utils.load_img(path, target_size=..., interpolation="bilinear")`` (whose
    default is ``"nearest"``): PIL's bilinear filter widens its kernel when shrinking
    (antialiasing), unlike ``tf.image.resize``'s default. The whole image is resized, so the aspect
    ratio is not kept. ``central_crop=0.875`` first keeps
    the central 87.5 % of each side (the slim ImageNet evaluation protocol).
    """
    from PIL import Image

    if central_crop is not None:
        image = crop_center(image, central_crop)
    resized = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).resize((size, size), Image.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def crop_center(image: np.ndarray, fraction: float) -> np.ndarray:
    """The central ``fraction`` of each side of an image, with ``tf.image.central_crop``'s arithmetic
    (slim's ImageNet evaluation crops 0.875): ``start = int((h - h * fraction) / 2)``, the same margin
    on both sides."""
    if not 0.0 < fraction <= 1.0:
        raise WorkbookError(f"central crop must be in (0, 1], got {fraction}")
    h, w = image.shape[:2]
    top, left = int((h - h * fraction) / 2), int((w - w * fraction) / 2)
    return image[top : h - top, left : w - left]


def scale(images: np.ndarray) -> np.ndarray:
    """``uint8`` [0, 255] -> ``float32`` [-1, 1]: MobileNet's ``x / 127.5 - 1``."""
    return (np.asarray(images, np.float32) / 127.5 - 1.0).astype(np.float32)


def preprocess(images: np.ndarray | list[np.ndarray], size: int, *, central_crop: float | None = None) -> np.ndarray:
    """RGB ``uint8`` image(s) -> MobileNet's input ``float32 [n, size, size, 3]`` in [-1, 1].

    :func:`resize` (PIL bilinear, whole image), then :func:`scale`.
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    return scale(np.stack([resize(image, size, central_crop=central_crop) for image in images]))


def pixel_key(image: np.ndarray) -> str:
    """SHA-256 of an image's shape and pixels: equal keys mean identical arrays."""
    import hashlib

    image = np.ascontiguousarray(image)
    return hashlib.sha256(str(image.shape).encode() + image.tobytes()).hexdigest()


def reference_photos() -> list[str]:
    """The photos every ImageNet notebook checks: the data pack's six, then the three in ``images/``."""
    return list(data.PACK_PHOTOS) + list(REPO_PHOTOS)


def repo_image(name: str) -> Path:
    """Path of a photo committed in ``images/`` (see ``images/LICENSE.md``)."""
    return REPO_IMAGES / name


def resolve_image(name: str | Path) -> Path:
    """Find an image by path, by name in ``images/``, or as a data-pack photo (``images/parrot.jpg``).

    Lets notebooks take ``image="parrot.jpg"`` as a parameter and the command line take any path.
    """
    path = Path(name)
    if path.exists():
        return path
    if (REPO_IMAGES / path.name).exists() and path.parent == Path("."):
        return REPO_IMAGES / path.name
    if path.name in data.PACK_PHOTOS and path.parent in (Path("."), Path("images")):
        return data.fetch(f"images/{path.name}")
    return path  # load_image will report it as missing
