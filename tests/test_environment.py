"""requirements.txt and environment.yml must pin the same packages at the same versions."""

from __future__ import annotations

import re

from helpers.paths import REPO

PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-]+)==([^\s#]+)")


def pins(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for line in text.splitlines() if (m := PIN.match(line))}


def test_pins_agree():
    requirements = pins((REPO / "requirements.txt").read_text())
    environment = pins((REPO / "environment.yml").read_text())
    assert "tensorflow" in requirements and requirements == environment


def test_every_requirement_is_pinned():
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        assert not line or "==" in line, line
