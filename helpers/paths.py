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


def notebook_list() -> list[Path]:
    """The workbook's notebooks in teaching order: ``NN_name.ipynb``, each followed by its optional
    deep dives ``NNb_name.ipynb``, ``NNc_name.ipynb`` (``06_...``, ``06b_...``, ``07_...``: "_" sorts
    before "b")."""
    found = set(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) | set(NOTEBOOKS.glob("[0-9][0-9][a-z]_*.ipynb"))
    return sorted(found, key=lambda path: path.name)
