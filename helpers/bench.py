"""``make bench``: speed and memory ratios, measured side by side in one run.

Absolute times on a shared machine are noise; ratios of interleaved medians are the result.
"""

from __future__ import annotations

import platform
import resource
import subprocess
import sys
import time

import numpy as np

from .paths import REPO


def _machine() -> str:
    import os

    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(repeats: int = 20) -> int:
    """Print Keras vs frozen graph, folded vs unfolded, images/s and the CLI's peak RSS."""
    import tensorflow as tf

    from . import bn_fold, data, images, models, slim, timing

    print(f"machine: {_machine()}; TensorFlow {tf.__version__}; {time.strftime('%Y-%m-%d')}")
    model = models.load_model()
    logits = models.logits_model(model)
    folded = models.logits_model(bn_fold.fold_batchnorm(model))
    graph = slim.FrozenGraph()
    photo = images.preprocess(images.load_image(data.fetch("images/parrot.jpg")), 224)
    keras_fn = tf.function(lambda t: logits(t, training=False))
    folded_fn = tf.function(lambda t: folded(t, training=False))
    for batch_size in (1, 32):
        batch = tf.constant(np.repeat(photo, batch_size, axis=0))
        medians = timing.compare(
            {
                "keras": lambda b=batch: keras_fn(b).numpy(),
                "frozen graph": lambda b=batch: graph.logits(b),
                "keras folded": lambda b=batch: folded_fn(b).numpy(),
            },
            repeats=repeats,
        )
        print(f"\nbatch {batch_size}: median of {repeats} interleaved runs")
        for name, seconds in medians.items():
            print(f"  {name:<13} {seconds * 1000:8.2f} ms   {batch_size / seconds:8.0f} images/s")
        print(f"  keras / frozen graph time   = {medians['keras'] / medians['frozen graph']:.2f}  (aim: <= 1)")
        print(f"  unfolded / folded time      = {medians['keras'] / medians['keras folded']:.2f}")

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    command = [sys.executable, "-m", "helpers", "predict", str(data.fetch("images/parrot.jpg"))]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    note = "" if peak_kib > before else " (an earlier child was larger; this is an upper bound)"
    print(f"\npython -m helpers predict (one image): peak RSS {peak_kib / 1024:.0f} MiB{note}, {elapsed:.1f} s wall")
    print("  (aim: under 1 GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
