"""Listing a MobileNet's variables by layer, in TF-slim or Keras naming."""

from __future__ import annotations

from .models import SLIM_TO_KERAS
from .slim import slim_weights


def slim_scopes(names) -> list[str]:
    """Layer scopes in graph order: ``Conv2d_0``, ``Conv2d_1_depthwise``, ``Conv2d_1_pointwise``, ..."""
    scopes: list[str] = []
    for name in names:
        scope = name.split("/")[1] if not name.startswith("MobilenetV1/Logits") else "Logits"
        if scope not in scopes:
            scopes.append(scope)
    return scopes


def first_layer_variables(first: int = 3, naming: str = "slim", alpha: str = "0.25", size: int = 224) -> list[dict]:
    """``[{"name", "shape"}, ...]`` of every variable (BatchNorm included) of the first layers.

    ``naming="slim"`` gives graph order and slim names (``MobilenetV1/Conv2d_0/weights``);
    ``naming="keras"`` gives the same variables under Keras 3 paths (``conv1/kernel``), in the
    same order, so the two lists line up row by row.
    """
    if naming not in ("slim", "keras"):
        from .errors import WorkbookError

        raise WorkbookError(f"naming must be 'slim' or 'keras', got {naming!r}")
    weights = slim_weights(alpha, size)
    keep = set(slim_scopes(weights)[:first])
    rows = []
    for name, value in weights.items():
        scope = name.split("/")[1] if not name.startswith("MobilenetV1/Logits") else "Logits"
        if scope not in keep:
            continue
        if naming == "keras":
            layer, index = SLIM_TO_KERAS[name]
            name = f"{layer}/{_keras_weight_name(layer, index)}"
        rows.append({"name": name, "shape": list(value.shape)})
    return rows


def _keras_weight_name(layer: str, index: int) -> str:
    if layer.endswith("_bn"):
        return ("gamma", "beta", "moving_mean", "moving_variance")[index]
    return ("kernel", "bias")[index]


def format_rows(rows: list[dict]) -> str:
    """The original homework's format: one ``name (shape)`` per line."""
    return "\n".join(f"{row['name']} {tuple(row['shape'])}" for row in rows)
