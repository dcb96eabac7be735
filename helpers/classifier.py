"""The one interface for anything that classifies photos.

A :class:`Classifier` knows its input size and class names and turns RGB ``uint8`` photos into
class probabilities; ranking (top-k, label subsets, JSON rows) is done once, here, for all of them.
Implementations: :class:`KerasClassifier` (the slim-imported MobileNet V1, a saved ``.keras``
classifier, the ``tf.nn`` MobileNet V2) and :class:`helpers.tflite.TFLiteClassifier` (any
``.tflite`` file). :func:`helpers.zoo.load` turns a model name or a file into one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import images, ranking
from .errors import WorkbookError

INPUT_RANGES = ("pm1", "pixels")  # MobileNet's x / 127.5 - 1, or raw pixels 0..255
OUTPUTS = ("logits", "probabilities")


class Classifier:
    """Photos in, class probabilities out.

    Attributes every implementation sets: ``name``, ``input_size`` (square side in pixels),
    ``class_names`` (in output order) and ``wnids`` (WordNet ids, or ``None`` for classes that are
    not ImageNet's).
    """

    name: str
    input_size: int
    class_names: list[str]
    wnids: list[str | None] | None

    def probabilities(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """``[n, classes]`` float64 probabilities for RGB ``uint8`` photos of any size.

        Each model's own probabilities: a model with slim's background class reports the other
        1000 as they are (they may sum to slightly less than 1).
        """
        raise NotImplementedError

    @property
    def is_imagenet(self) -> bool:
        """True when the classes are ImageNet's 1000 (label subsets by ImageNet name apply)."""
        return self.wnids is not None and len(self.class_names) == 1000

    def predict(
        self, photos: Sequence[np.ndarray], k: int = 5, subset: list[int] | None = None
    ) -> list[list[ranking.Prediction]]:
        """The top ``k`` classes of each photo (only the ``subset`` class indices, when given)."""
        if subset is not None and not self.is_imagenet:
            raise WorkbookError(
                f"label subsets name ImageNet classes; {self.name} has {len(self.class_names)} classes of its own"
            )
        return [
            ranking.top_k(row, k, class_names=self.class_names, wnids=self.wnids, subset=subset)
            for row in self.probabilities(photos)
        ]


class KerasClassifier(Classifier):
    """A Keras model on square photos.

    ``input_range``: ``"pm1"`` when the model wants MobileNet's [-1, 1] input, ``"pixels"`` when
    its first layer does the scaling. ``output``: ``"logits"`` (softmax taken here, in float64) or
    ``"probabilities"``. ``background``: the model has slim's 1001 outputs, output 0 dropped.
    """

    def __init__(
        self,
        model,
        *,
        name: str,
        class_names: list[str],
        wnids: list[str | None] | None = None,
        input_range: str = "pm1",
        output: str = "logits",
        background: bool = False,
    ):
        if input_range not in INPUT_RANGES or output not in OUTPUTS:
            raise ValueError(f"input_range in {INPUT_RANGES}, output in {OUTPUTS}")
        n_outputs = int(model.output_shape[-1]) - int(background)
        if n_outputs != len(class_names):
            raise WorkbookError(f"{name} has {n_outputs} outputs but {len(class_names)} class names")
        self.model, self.name = model, name
        self.input_size = int(model.input_shape[1])
        self.class_names, self.wnids = list(class_names), wnids
        self.input_range, self.output, self.background = input_range, output, background

    def inputs(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """The batch the model sees: PIL-bilinear resized, scaled to [-1, 1] when it wants that."""
        resized = np.stack([images.resize(photo, self.input_size) for photo in photos])
        return images.scale(resized) if self.input_range == "pm1" else resized.astype(np.float32)

    def probabilities(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        out = np.asarray(self.model.predict(self.inputs(photos), verbose=0), np.float64)
        if self.background:
            out = out[:, 1:]
        return ranking.softmax(out) if self.output == "logits" else out
