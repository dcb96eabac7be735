"""A student's first session, in a real browser: `make lab`, then 01, 04 and 08 run in Chromium.

The workbook's own `make lab` server runs headless with a token and private Jupyter folders
(config, runtime, data, settings, workspaces), autosave off, and each notebook opens with `?reset`
so an old workspace cannot reopen another one. For each notebook, Playwright waits for the
workbook's kernel and the idle indicator, runs all cells from the Run menu, and checks what the
student sees: every code cell executed, no stderr or error output, at least one figure. A
screenshot per notebook goes to `build/browser/`. Nothing may be written into `notebooks/`: not
the notebooks (autosave off) and not the checkpoint JupyterLab writes when it opens a notebook
(`make lab` keeps checkpoints in `build/checkpoints/`).

The browser is Debian's `chromium` (`make test` installs it with apt when it can, else
Playwright's own download when online); `WORKBOOK_CHROMIUM` names another executable. Without
one the test fails with a line saying how to provide it: it is never skipped.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.kernel import DISPLAY_NAME
from helpers.paths import NOTEBOOKS, REPO

NOTEBOOK_NAMES = ["01_classify.ipynb", "04_label_subset.ipynb", "08_mobilenet_v2_tfnn.ipynb"]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
SETTINGS = {  # the private user settings of this server (the venv's overrides.json still applies)
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
RUN_SECONDS = 420  # one notebook, all cells; 08 takes about 30 s on 2 cores


def chromium() -> str:
    """The Chromium executable to drive, or a test failure saying how to provide one."""
    candidates = [os.environ.get("WORKBOOK_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    try:  # Playwright's own browser, when `playwright install chromium` could download it
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            if Path(p.chromium.executable_path).is_file():
                return p.chromium.executable_path
    except Exception:  # noqa: BLE001 - any failure here means "no browser", reported below
        pass
    pytest.fail(
        "no Chromium for the browser test: `apt-get install chromium` (Debian), or "
        "`.venv/bin/python -m playwright install chromium` (online), or set WORKBOOK_CHROMIUM"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def lab_server(pack, tmp_path_factory):
    """`make lab` started headless in its own process group; yields (base URL, token)."""
    home = tmp_path_factory.mktemp("jupyter")
    for relative, values in SETTINGS.items():
        path = home / "settings" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    port, token = free_port(), secrets.token_hex(16)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token} --ServerApp.port_retries=0"
    log = open(home / "lab.log", "w")  # noqa: SIM115 - closed at teardown
    make = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if make.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail(f"`make lab` did not start: {(home / 'lab.log').read_text()[-2000:]}")
        time.sleep(1)
    (server_file,) = (home / "runtime").glob("jpserver-*.json")
    server_pid = json.loads(server_file.read_text())["pid"]
    try:
        yield base, token
    finally:
        os.kill(server_pid, signal.SIGTERM)  # the server by its PID, then whatever make left
        try:
            make.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        log.close()


def run_in_browser(page, base: str, token: str, name: str, shots: Path) -> dict:
    """Open one notebook, run all its cells, return what the page shows."""
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")
    toolbar = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar")
    toolbar.get_by_text(DISPLAY_NAME).wait_for(timeout=120_000)
    indicator = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator")
    page.wait_for_function(
        "el => el.dataset.status === 'idle'", arg=indicator.element_handle(timeout=120_000), timeout=120_000
    )
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
    deadline = time.monotonic() + RUN_SECONDS
    while True:
        prompts = cells.locator(".jp-InputPrompt").all_inner_texts()
        done = all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts)
        if done and indicator.get_attribute("data-status") == "idle":
            break
        if time.monotonic() > deadline:
            break
        page.wait_for_timeout(1000)
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    figures = panel.locator(".jp-OutputArea-output img")
    if figures.count():
        figures.first.scroll_into_view_if_needed()  # the screenshot shows a figure
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{Path(name).stem}.png"), full_page=True)
    return {
        "code_cells": len(prompts),
        "not_executed": [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p.strip())],
        "stderr": panel.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        ).all_inner_texts(),
        "figures": figures.count(),
        "news_popup": page.get_by_text("official Jupyter news").count(),
    }


def test_notebooks_run_clean_in_chromium(lab_server):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    base, token = lab_server
    before = snapshot(NOTEBOOKS)
    shots = REPO / "build" / "browser"
    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for name in NOTEBOOK_NAMES:
                seen[name] = run_in_browser(page, base, token, name, shots)
        finally:
            browser.close()
    for name, shown in seen.items():
        report = f"{name}: {json.dumps(shown)}"
        assert shown["code_cells"] > 5, report
        assert shown["not_executed"] == [], report
        assert shown["stderr"] == [], report
        assert shown["figures"] >= 1, report
        assert shown["news_popup"] == 0, report
    assert snapshot(NOTEBOOKS) == before  # autosave off: nothing written into notebooks/
