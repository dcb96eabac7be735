"""Shared code of the MobileNet course workbook: data access, models, preprocessing, records."""

from __future__ import annotations

import os

# TensorFlow's C++ log off for notebooks and the command line (set before TF is imported): on a
# CPU machine it prints only CUDA probes ("failed call to cuInit") and, in TF 2.21, a spurious
# "NodeDef mentions attribute use_unbounded_threadpool" at level ERROR; real failures still raise
# Python exceptions. Set TF_CPP_MIN_LOG_LEVEL=0 to see the log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
