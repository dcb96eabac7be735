"""Shared fixtures. The offline data pack is required: without it (or internet) tests fail loudly."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The instructor edition runs in strict mode: a failing homework.check raises, so the notebook fails.
os.environ["WORKBOOK_STRICT"] = "1"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Downloads and LiteRT conversions go to a cache of this test session (subprocesses inherit it)."""
    os.environ["WORKBOOK_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return os.environ["WORKBOOK_CACHE"]


@pytest.fixture(scope="session")
def pack():
    """The data pack folder; a clear failure (never a skip) when WORKBOOK_DATA is not set."""
    from helpers import data

    folder = data.pack_dir()
    if folder is None or not (folder / "MANIFEST.sha256").is_file():
        pytest.fail(
            "these tests need the offline data pack: set WORKBOOK_DATA to its folder "
            "(make test and .ci/run do this when ../shared/data exists)"
        )
    return folder


@pytest.fixture(scope="session")
def imagenet_model(pack):
    """The default model (mobilenet_v1_0.25_224) with slim weights, built once."""
    from helpers import models

    return models.load_model()
