"""Shared code of the MobileNet course workbook: data access, models, preprocessing, records."""

from __future__ import annotations

import os

# Quieter TensorFlow start-up for notebooks and the command line (set before TF is imported).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
