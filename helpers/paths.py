"""Where the workbook reads and writes: repository folders and the build folder."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
BUILD_ENV = "WORKBOOK_BUILD"


def build_dir() -> Path:
    """``$WORKBOOK_BUILD`` or ``<repo>/build``: every output the workbook writes goes below it."""
    return Path(os.environ.get(BUILD_ENV) or REPO / "build")


def figure_path(name: str) -> Path:
    """``build/figures/<name>`` (folder created)."""
    path = build_dir() / "figures" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(figure, name: str, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``build/figures/<name>.png`` and return the path."""
    path = figure_path(f"{name}.png")
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
