"""Recording a notebook's key figures into its executed output, and reading them back.

``record("top1_probability", 0.94)`` displays the value and stores it in the cell output under the
MIME type :data:`MIME` (and the output metadata), the way papermill's old ``glue`` did. Tests and
``python -m helpers records NOTEBOOK.ipynb`` read the values back with :func:`read_records`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import WorkbookError

MIME = "application/vnd.mobilenet-workbook.record+json"


def _plain(value):
    """Numpy scalars/arrays and tuples -> JSON-ready Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record(name: str, value) -> None:
    """Show ``recorded name = value`` (one short line, a float to 6 significant digits) and store the
    whole value in this cell's output for tests to read back."""
    from IPython.display import display

    value = _plain(value)
    json.dumps(value)  # fail here, in the notebook, if the value is not JSON-serialisable
    shown = f"recorded {name} = {value:.6g}" if isinstance(value, float) else f"recorded {name} = {value!r}"
    if len(shown) > 100:  # one short line under the cell; the whole value is in the output's data
        shown = f"recorded {name} ({type(value).__name__} of {len(value)})"
    display(
        {MIME: {"name": name, "value": value}, "text/plain": shown},
        raw=True,
        metadata={"mobilenet_workbook": {"record": name}},
    )


def read_records(notebook: str | Path) -> dict:
    """``name -> value`` of everything a notebook recorded (the last value wins)."""
    path = Path(notebook)
    if not path.is_file():
        raise WorkbookError(f"notebook not found: {path}")
    try:
        cells = json.loads(path.read_text())["cells"]
    except (ValueError, KeyError) as error:
        raise WorkbookError(f"{path} is not a notebook: {error}") from None
    found = {}
    for cell in cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME)
            if payload is not None:
                found[payload["name"]] = payload["value"]
    return found
