"""Parameter counts and multiply-adds per layer, and the depthwise-separable cost ratio."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer for one image."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    mult_adds: int


def layer_costs(model) -> list[LayerCost]:
    """Parameters and multiply-adds of every layer that has weights (one image)."""
    import keras

    costs = []
    for layer in model.layers:
        if not layer.weights:
            continue
        params = int(sum(w.numpy().size for w in layer.weights))
        out = tuple(int(d) for d in layer.output.shape[1:])
        spatial = out[0] * out[1] if len(out) == 3 else 1
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape  # Keras 3 calls the depthwise weights 'kernel'
            kind, mult_adds = "depthwise", kh * kw * cin * mult * spatial
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            kind = "pointwise" if (kh, kw) == (1, 1) else "conv"
            if layer.name == "conv_preds":  # MobileNet's classifier is a 1x1 conv on a 1x1 map
                kind = "classifier"
            mult_adds = kh * kw * cin * cout * spatial
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            kind, mult_adds = "dense", cin * cout
        elif isinstance(layer, keras.layers.BatchNormalization):
            kind, mult_adds = "batchnorm", 0  # folds away at inference
        else:
            kind, mult_adds = type(layer).__name__, 0
        costs.append(LayerCost(layer.name, kind, out, params, int(mult_adds)))
    return costs


def separable_ratio(kernel: int, in_channels: int, out_channels: int, height: int, width: int) -> float:
    """Cost of depthwise (k x k) + pointwise (1 x 1) divided by a standard k x k conv, counted."""
    standard = kernel * kernel * in_channels * out_channels * height * width
    separable = kernel * kernel * in_channels * height * width + in_channels * out_channels * height * width
    return separable / standard


def paper_ratio(kernel: int, out_channels: int) -> float:
    """The MobileNet paper's closed form of the same ratio: ``1/N + 1/Dk^2``."""
    return 1.0 / out_channels + 1.0 / kernel**2
