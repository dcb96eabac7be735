"""The recording helper: values round-trip through a notebook's outputs, shown as one short line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import records
from helpers.errors import WorkbookError


def test_record_shows_one_short_line_and_keeps_the_value(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda bundle, **kwargs: shown.append(bundle))
    records.record("top1", np.float32(0.5))
    records.record("per_photo", {f"photo{i}.jpg": ["a long label name", 0.123456] for i in range(20)})
    records.record("max_diff", 2.9087066650390625e-05)
    assert shown[0]["text/plain"] == "recorded top1 = 0.5"
    assert shown[1]["text/plain"] == "recorded per_photo (dict of 20)"
    assert shown[1][records.MIME]["value"]["photo3.jpg"] == ["a long label name", 0.123456]
    assert shown[2]["text/plain"] == "recorded max_diff = 2.90871e-05"  # shown short, kept whole:
    assert shown[2][records.MIME]["value"] == 2.9087066650390625e-05


def test_read_records_last_value_wins_and_bad_files(tmp_path):
    def output(name, value):
        return {"output_type": "display_data", "data": {records.MIME: {"name": name, "value": value}}}

    cells = [
        {"cell_type": "code", "outputs": [output("a", 1), output("b", 2)]},
        {"cell_type": "code", "outputs": [output("a", 3)]},
    ]
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": cells}))
    assert records.read_records(tmp_path / "nb.ipynb") == {"a": 3, "b": 2}
    (tmp_path / "bad.ipynb").write_text("not json")
    with pytest.raises(WorkbookError, match="is not a notebook"):
        records.read_records(tmp_path / "bad.ipynb")
    with pytest.raises(WorkbookError, match="not found"):
        records.read_records(tmp_path / "missing.ipynb")
