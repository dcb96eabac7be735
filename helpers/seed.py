"""Seeding and deterministic ops, set up once for every notebook.

What this makes reproducible: running a notebook twice **on the same machine with the same
package versions and thread count** gives the same numbers (weights initialised from the same
seed, the same shuffles and augmentations, and TensorFlow ops that pick deterministic kernels).
What it does not: other CPUs, other TensorFlow/oneDNN builds or other thread counts may round
differently, so a retrained model can differ in the last digits and a borderline photo can flip.

Deterministic ops cost time: training notebook 05's CNN for two epochs on 20,000 digits took
8.3 s and 10.8 s with them against 6.9 s and 8.3 s without (2 CPU cores, interleaved runs), a cost
the workbook accepts (``make workbook`` takes about 9 minutes).

``PYTHONHASHSEED`` only acts when the interpreter starts; the Makefile exports it for notebook
kernels and tests. Nothing in the workbook depends on ``hash()`` order, so it is belt and braces.
"""

from __future__ import annotations

import random

DEFAULT_SEED = 42


def set_seed(seed: int = DEFAULT_SEED, *, deterministic_ops: bool = True) -> None:
    """Seed Python, NumPy, TensorFlow and Keras (``keras.utils.set_random_seed``); with
    ``deterministic_ops`` also ``tf.config.experimental.enable_op_determinism()``. Returns nothing, so a
    notebook cell ending in ``set_seed()`` shows no stray ``Out[...]`` value."""
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
