"""One call at the top of every notebook: versions, the data line, the CPU, seeds.

``setup()`` is the workbook's version check and setup in one call (handson-ml3's version check,
fastbook's ``setup_book()``): a notebook's first code cell holds its imports and this call.
"""

from __future__ import annotations

import sys

from . import data, machine
from .seed import DEFAULT_SEED, set_seed


def setup(seed: int = DEFAULT_SEED, *, deterministic_ops: bool = True) -> None:
    """Print the versions, where the data comes from and the CPU; check Keras 3; seed everything
    (:func:`helpers.seed.set_seed`). Returns nothing, so the cell shows no ``Out[...]``."""
    import keras
    import numpy as np
    import tensorflow as tf

    print(
        f"Python {sys.version.split()[0]} | TensorFlow {tf.__version__} | Keras {keras.__version__}"
        f" | NumPy {np.__version__}"
    )
    if not keras.__version__.startswith("3."):
        raise RuntimeError(f"this workbook needs Keras 3 (TensorFlow >= 2.16), not Keras {keras.__version__}")
    print(data.pack_status())
    print(f"CPU: {machine.describe()}")
    set_seed(seed, deterministic_ops=deterministic_ops)
