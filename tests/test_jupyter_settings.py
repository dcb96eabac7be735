"""The JupyterLab settings `make setup` installs name settings that exist, with allowed values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers.paths import REPO


def test_overrides_match_jupyterlab_schemas():
    overrides = json.loads((REPO / "jupyter" / "overrides.json").read_text())
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    for plugin, settings in overrides.items():
        package, name = plugin.rsplit(":", 1)
        schema = json.loads((schemas / package / f"{name}.json").read_text())
        for key, value in settings.items():
            spec = schema["properties"][key]
            assert isinstance(value, {"boolean": bool, "string": str}[spec["type"]]), key
            assert "enum" not in spec or value in spec["enum"], key
    # the "get notified about official Jupyter news?" pop-up appears while fetchNews is "none"
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
