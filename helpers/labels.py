"""ImageNet class names and WordNet ids, and matching user label names to classes."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import data
from .errors import WorkbookError

# The original homework's label subset (notebook 04's default); "plane" is the carpenter's plane.
HOMEWORK_LABELS = (
    "pickup",
    "pier",
    "piggy bank",
    "pill bottle",
    "pillow",
    "ping-pong ball",
    "pinwheel",
    "pirate",
    "pitcher",
    "plane",
)


@dataclass(frozen=True)
class ImageNetClass:
    """One of the 1000 ImageNet classes, in the Keras (and slim minus background) order."""

    index: int
    wnid: str
    names: tuple[str, ...]  # the comma-separated synonyms of the slim labels, e.g. ("plane", "carpenter's plane", ...)
    keras_name: str  # the single name of imagenet_class_index.json, e.g. "military_uniform"

    @property
    def label(self) -> str:
        """The first synonym, used for display (``"bow tie"``)."""
        return self.names[0]


def read_class_index(path: Path) -> list[tuple[str, str]]:
    """``[(wnid, keras_name), ...]`` in index order from Keras's ``imagenet_class_index.json``."""
    table = json.loads(Path(path).read_text())
    return [tuple(table[str(i)]) for i in range(len(table))]


def read_labels_1001(path: Path) -> list[str]:
    """Lines of the slim 1001-line label file, line 0 = ``background``."""
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if len(lines) != 1001 or lines[0].lower() != "background":
        raise WorkbookError(f"{path} is not a 1001-line ImageNet label file starting with 'background'")
    return lines


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1000 ImageNet classes with WordNet ids, synonyms and Keras names."""
    index = read_class_index(data.fetch("imagenet_class_index.json"))
    slim = read_labels_1001(data.fetch("imagenet_labels_1001.txt"))[1:]
    return tuple(
        ImageNetClass(i, wnid, tuple(n.strip() for n in line.split(",")), keras_name)
        for i, ((wnid, keras_name), line) in enumerate(zip(index, slim, strict=True))
    )


def match_labels(wanted: list[str], classes: tuple[ImageNetClass, ...] | None = None) -> list[ImageNetClass]:
    """The ImageNet class of each label: a label matches a class when it equals (case-insensitive)
    one of the class's comma-separated names. Unknown labels raise, with the closest names;
    a label naming two classes raises too (say which one with a longer name)."""
    classes = classes or imagenet_classes()
    by_name: dict[str, list[ImageNetClass]] = {}
    for cls in classes:
        for name in {n.lower() for n in (*cls.names, cls.keras_name.replace("_", " "))}:
            by_name.setdefault(name, []).append(cls)
    matched, seen = [], set()
    for label in wanted:
        key = label.strip().lower()
        hits = by_name.get(key, [])
        if not hits:
            close = difflib.get_close_matches(key, list(by_name), n=5, cutoff=0.6)
            hint = f"; closest ImageNet names: {', '.join(close)}" if close else ""
            raise WorkbookError(f"unknown label {label!r}{hint}")
        if len(hits) > 1:
            options = "; ".join(", ".join(c.names) for c in hits)
            raise WorkbookError(f"label {label!r} names {len(hits)} ImageNet classes ({options}): use a longer name")
        if hits[0].index in seen:
            raise WorkbookError(f"label {label!r} repeats a class already in the list")
        seen.add(hits[0].index)
        matched.append(hits[0])
    return matched


def read_label_file(path: str | Path) -> list[str]:
    """Label names from a text file, one per line (blank lines and ``#`` comments ignored)."""
    path = Path(path)
    if not path.is_file():
        raise WorkbookError(f"label file not found: {path}")
    return [s for line in path.read_text().splitlines() if (s := line.split("#")[0].strip())]


def labels_path(model_path: str | Path) -> Path:
    """The class-names file of a saved classifier: ``flowers.keras`` -> ``flowers_labels.txt``;
    ``flowers_int8.tflite`` -> the first of ``flowers_int8_labels.txt`` / ``flowers_labels.txt``
    that exists (so every conversion of a model shares its labels file)."""
    path = Path(model_path)
    stem = path.stem
    candidates = [path.with_name(f"{stem}_labels.txt")]
    while "_" in stem:
        stem = stem.rsplit("_", 1)[0]
        candidates.append(path.with_name(f"{stem}_labels.txt"))
    return next((c for c in candidates if c.is_file()), candidates[0])
