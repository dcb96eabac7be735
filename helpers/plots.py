"""Figures and printed tables: the notebooks' presentation code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from . import stats
from .evaluation import Scores


def table(headers: Sequence[str], rows: Iterable[Sequence], formats: Sequence[str]) -> str:
    """A fixed-width text table: each cell formatted with its column's format spec (``""``: as is),
    the first column left-aligned and the others right-aligned."""
    cells = [[format(value, spec) for value, spec in zip(row, formats, strict=True)] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        first, *rest = values
        return "  ".join([first.ljust(widths[0]), *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True))])

    return "\n".join(line(row).rstrip() for row in [list(headers), *cells])


def score_table(scored: Mapping[str, Scores], *, reference: str | None = None) -> str:
    """One row per model: top-1 with its standard error (points), top-1 with ties won, top-5 and the
    photos tied at the top; with ``reference``, McNemar's p of each model against that one."""
    headers = ["model", "top-1", "± s.e.", "top-1, ties won", "top-5", "ties"]
    formats = ["", ".1%", "", ".1%", ".1%", "d", ""]
    if reference is not None:
        headers.append(f"McNemar p vs {reference}")
    rows = []
    for name, s in scored.items():
        row = [name, s.top1, f"{100 * s.standard_error:.1f}p", s.top1_ties_won, s.top5, s.ties]
        if reference is not None:
            test = stats.mcnemar(scored[reference].correct_top1, s.correct_top1)
            row.append("" if name == reference else f"{test.p_value:.2g}")
        rows.append(row)
    return table(headers, rows, formats[: len(headers)])


def confusion(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``counts[i, j]``: photos of class ``i`` predicted as ``j``."""
    counts = np.zeros((n_classes, n_classes), int)
    np.add.at(counts, (np.asarray(true), np.asarray(predicted)), 1)
    return counts


def confusion_matrix(
    ax, true: np.ndarray, predicted: np.ndarray, class_names: list[str], *, title: str = ""
) -> np.ndarray:
    """Draw the confusion matrix (log-scaled colours, counts written in) on ``ax``; return the counts."""
    counts = confusion(true, predicted, len(class_names))
    ax.imshow(np.log1p(counts), cmap="Blues")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if max(len(n) for n in class_names) > 2 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return counts
