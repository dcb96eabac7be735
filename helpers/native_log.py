"""C++ start-up lines of TensorFlow and LiteRT that are not errors, dropped in one place.

TensorFlow 2.21 and LiteRT write some informational lines straight to file descriptor 2 from C++,
where no logging setting reaches them (TensorFlow's come before ``absl::InitializeLog()``, so
``TF_CPP_MIN_LOG_LEVEL`` does not apply; LiteRT's logger ignores it). In a notebook each becomes
a red stderr box that a student reads as an error. :func:`filtered` runs a block with descriptor 2
captured and passes on every line except the few listed in :data:`INFORMATIONAL`; anything else
(a real error) still appears, unchanged.

Used around ``import tensorflow`` by the workbook's kernel (:mod:`helpers.kernel`), around the
LiteRT interpreter's creation (:mod:`helpers.tflite`) and by the command line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

INFORMATIONAL: tuple[re.Pattern, ...] = (
    # absl's own notice, printed once per shared library before the first log line
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    # TensorFlow's banner: oneDNN's fused CPU kernels are on (they are, and the workbook wants them)
    re.compile(r"^I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\."),
    # TensorFlow's CUDA probe on a machine without a GPU driver (GPU builds only say this on CPU machines)
    re.compile(r"^I\d{4} [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will"),
    # the TFLite converter's calibration summary, printed by every INT8 conversion
    re.compile(r"^fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+$"),
    # LiteRT's banner: the default XNNPACK CPU delegate was applied
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),
)


def is_informational(line: str) -> bool:
    """True for one of the known start-up lines that :func:`filtered` drops."""
    return any(pattern.search(line) for pattern in INFORMATIONAL)


@contextlib.contextmanager
def filtered() -> Iterator[None]:
    """Run a block with file descriptor 2 captured; afterwards write to stderr every captured line
    that is not informational (in order), so errors are never lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not is_informational(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()
