"""TensorFlow's flower photos for transfer learning: finding them, splitting them, loading them.

By default the 1,000-photo subset is used as it is (``train/`` and ``val/``, 160 + 40 photos per
class): from the data pack's ``datasets/flower_photos_subset``, or downloaded file by file from its
public repository, so online and offline runs see the same photos. ``flowers_root(full=True)``
gives TensorFlow's full ``flower_photos.tgz`` (3,670 photos), downloaded, extracted into the cache
and split deterministically: a photo goes to ``val`` when the first byte
of the SHA-1 of its *file name* is below 52 (52/256 = 20.3 %), so the split never depends on file
order, on the machine, or on a random seed, and adding photos never moves existing ones.

Bad files: a photo PIL cannot read is **skipped with a warning that names it** (one bad download
should not stop a training run); a dataset folder without class folders, or a class without a
single readable photo, is an error (training on four classes by accident is worse than stopping).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data, images
from .errors import WorkbookError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
VAL_THRESHOLD = 52  # first SHA-1 byte of the file name below this -> val (about 20 %)


@dataclass
class FlowerSplit:
    """One split as arrays: ``images`` uint8 ``[n, size, size, 3]``, ``labels`` int ``[n]``."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def dataset(self, batch_size: int = 32, *, shuffle: bool = False, seed: int = 0):
        """A ``tf.data`` pipeline of ``(float32 pixels in [0, 255], label)`` batches: shuffled
        (reshuffled each epoch) when asked, cast per batch, prefetched. Scaling to [-1, 1] is the
        model's first layer, so it is not done here."""
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices((self.images, self.labels))
        if shuffle:
            data = data.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        data = data.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
        return data.prefetch(tf.data.AUTOTUNE)

    def per_class(self, n: int, seed: int = 0) -> FlowerSplit:
        """The first ``n`` photos of each class after a seeded shuffle (for few-shot training)."""
        rng = np.random.default_rng(seed)
        keep: list[int] = []
        for label in range(len(self.class_names)):
            where = np.flatnonzero(self.labels == label)
            if len(where) < n:
                raise WorkbookError(f"class {self.class_names[label]!r} has only {len(where)} photos, {n} asked")
            keep.extend(sorted(rng.permutation(where)[:n]))
        index = np.array(keep)
        return FlowerSplit(self.images[index], self.labels[index], [self.paths[i] for i in keep], self.class_names)


def is_val(file_name: str) -> bool:
    """The documented online split: SHA-1 of the file name, first byte < :data:`VAL_THRESHOLD`."""
    return hashlib.sha1(file_name.encode()).digest()[0] < VAL_THRESHOLD


def flowers_root(full: bool = False) -> Path:
    """The flower photos: the 1,000-photo subset (``train/<class>/`` and ``val/<class>/``, from the
    data pack or downloaded file by file), or with ``full`` TensorFlow's 3,670 photos
    (``flower_photos.tgz``, online only, extracted safely into the cache; one folder of class
    folders, split by :func:`is_val`)."""
    if not full:
        return data.fetch("flower_photos_subset")
    archive = data.fetch("flower_photos.tgz")
    target = data.cache_dir() / "flower_photos"
    if not target.is_dir():
        data.safe_extract(archive, target)
    inner = target / "flower_photos"
    return inner if inner.is_dir() else target


def list_photos(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Class names and ``{"train": [(path, label)], "val": [...]}`` for a flowers folder.

    ``root`` is either split already (``train/`` and ``val/`` with the same class folders) or one
    folder of class folders, split with :func:`is_val`; in a class with at least two photos, at
    least one goes to each side (small folders of your own photos would otherwise lose a class).
    Only files with image suffixes count; whether they decode is checked when they are loaded.
    """
    root = Path(root)
    if not root.is_dir():
        raise WorkbookError(f"dataset folder not found: {root}")
    if (root / "train").is_dir() and (root / "val").is_dir():
        splits = {"train": root / "train", "val": root / "val"}
        class_names = sorted(p.name for p in splits["train"].iterdir() if p.is_dir())
        val_names = sorted(p.name for p in splits["val"].iterdir() if p.is_dir())
        if class_names != val_names:
            raise WorkbookError(f"{root}: train classes {class_names} differ from val classes {val_names}")
    else:
        splits = {"all": root}
        class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not class_names:
        raise WorkbookError(f"{root} has no class folders (expected one sub-folder of photos per class)")
    found: dict[str, list[tuple[Path, int]]] = {"train": [], "val": []}
    for split, folder in splits.items():
        for label, name in enumerate(class_names):
            files = sorted(p for p in (folder / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise WorkbookError(f"class folder {folder / name} has no photos ({', '.join(IMAGE_SUFFIXES)})")
            if split == "all":
                val_files = [p for p in files if is_val(p.name)]
                if not val_files and len(files) > 1:  # a small class: its photo nearest the threshold goes to val
                    val_files = [min(files, key=lambda p: hashlib.sha1(p.name.encode()).digest())]
                if len(val_files) == len(files) and len(files) > 1:  # ... and at least one stays in train
                    val_files.remove(max(val_files, key=lambda p: hashlib.sha1(p.name.encode()).digest()))
                found["val"] += [(p, label) for p in files if p in val_files]
                found["train"] += [(p, label) for p in files if p not in val_files]
            else:
                found[split] += [(path, label) for path in files]
    return class_names, found


def first_per_class(
    found: dict[str, list[tuple[Path, int]]], n_classes: int, *, train: int, val: int
) -> dict[str, list[tuple[Path, int]]]:
    """The first ``train`` / ``val`` photos of each class of a :func:`list_photos` listing (fast modes)."""
    keep = {"train": train, "val": val}
    return {
        split: [item for label in range(n_classes) for item in [i for i in items if i[1] == label][: keep[split]]]
        for split, items in found.items()
    }


def load_split(items: list[tuple[Path, int]], class_names: list[str], size: int = 224) -> FlowerSplit:
    """Decode and resize (PIL bilinear, as everywhere in the workbook) to ``uint8``.

    Unreadable files are skipped with a ``UserWarning`` naming each; a class left without photos
    is an error.
    """
    arrays, labels, paths = [], [], []
    for path, label in items:
        try:
            image = images.load_image(path)
        except WorkbookError as error:
            warnings.warn(f"skipping unreadable photo: {error}", UserWarning, stacklevel=2)
            continue
        arrays.append(images.resize(image, size))
        labels.append(label)
        paths.append(path)
    counts = np.bincount(np.array(labels, dtype=np.int64), minlength=len(class_names))
    empty = [class_names[i] for i, c in enumerate(counts) if c == 0]
    if empty:
        raise WorkbookError(f"no readable photos for class(es) {empty}")
    return FlowerSplit(np.stack(arrays), np.array(labels, dtype=np.int64), paths, list(class_names))


def drop_duplicates_of(val: FlowerSplit, train: FlowerSplit) -> tuple[FlowerSplit, list[Path]]:
    """``val`` without the photos whose pixels (after resizing) equal a train photo's, and the paths
    dropped: a photo the head was trained on says nothing about photos it has not seen."""
    seen = {images.pixel_key(image) for image in train.images}
    keep = [i for i, image in enumerate(val.images) if images.pixel_key(image) not in seen]
    dropped = [path for i, path in enumerate(val.paths) if i not in set(keep)]
    index = np.array(keep, dtype=np.int64)
    kept = FlowerSplit(val.images[index], val.labels[index], [val.paths[i] for i in keep], val.class_names)
    return kept, dropped


def load_train_val(
    found: dict[str, list[tuple[Path, int]]], class_names: list[str], size: int = 224
) -> tuple[FlowerSplit, FlowerSplit, list[Path]]:
    """``(train, val, dropped)`` from a :func:`list_photos` listing: both splits decoded and
    resized, and val photos identical to a train photo dropped (their paths returned), for the
    pack subset and the online split alike."""
    train = load_split(found["train"], class_names, size)
    val, dropped = drop_duplicates_of(load_split(found["val"], class_names, size), train)
    return train, val, dropped
