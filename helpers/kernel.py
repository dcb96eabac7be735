"""The workbook's Jupyter kernel, ``mobilenet-workbook``: ipykernel with TensorFlow imported first.

The kernel imports TensorFlow inside :func:`helpers.native_log.filtered` before it starts, so a
notebook's Setup cell shows no start-up banner, and it sets what ``make`` would export when the
environment does not (the data pack's folder found at install time, ``PYTHONHASHSEED``,
``TF_CPP_MIN_LOG_LEVEL``), so the notebooks behave the same however Jupyter was started. A value
the environment already has wins (tests run notebooks without the pack that way). Every notebook
names this kernel in its metadata.

``python -m helpers.kernel install [--user]`` registers it (``make setup`` does, into the venv);
``python -m helpers.kernel -f CONNECTION_FILE`` is what Jupyter runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

NAME = "mobilenet-workbook"
DISPLAY_NAME = "MobileNet workbook (Python 3)"


def spec(data_dir: str | None = None) -> dict:
    """The kernel spec (``kernel.json``) for this Python and, when known, the data pack's folder."""
    data = ["--data", str(Path(data_dir).resolve())] if data_dir else []
    return {
        "argv": [sys.executable, "-m", "helpers.kernel", *data, "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }


def install(user: bool = False, data_dir: str | None = None) -> Path:
    """Write the kernel spec into this environment's Jupyter data folder (or the user's); returns its folder.

    Without ``data_dir`` it records the data pack that :func:`helpers.data.pack_dir` finds now.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    from .data import pack_dir, write_atomic

    if data_dir is None:
        found = pack_dir()
        data_dir = str(found) if found else None
    manager = KernelSpecManager()
    folder = Path(manager.user_kernel_dir if user else Path(sys.prefix) / "share" / "jupyter" / "kernels") / NAME
    target = folder / "kernel.json"
    text = json.dumps(spec(data_dir), indent=1) + "\n"
    if not target.is_file() or target.read_text() != text:
        write_atomic(target, text)
    return folder


def is_installed() -> bool:
    """True when Jupyter finds the ``mobilenet-workbook`` kernel and it runs this Python."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        found = KernelSpecManager().get_kernel_spec(NAME)
    except NoSuchKernel:
        return False
    return Path(found.argv[0]).resolve() == Path(sys.executable).resolve()


def launch(argv: list[str]) -> None:
    """Import TensorFlow with its start-up lines filtered, then run ipykernel with ``argv``.

    ``--data DIR`` first in ``argv`` sets ``WORKBOOK_DATA`` unless the environment has it. A fixed
    ``PYTHONHASHSEED`` only acts at interpreter start, so without one the kernel restarts itself
    with ``PYTHONHASHSEED=0`` (as ``make`` exports).
    """
    if "PYTHONHASHSEED" not in os.environ:
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "helpers.kernel", *argv])
    if argv[:1] == ["--data"]:
        os.environ.setdefault("WORKBOOK_DATA", argv[1])
        argv = argv[2:]
    # ipykernel makes inline figures the default through MPLBACKEND when it starts; importing
    # TensorFlow first imports matplotlib.pyplot, which would fix the backend before that.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # ipykernel forwards what is written to file descriptors 1 and 2 (C++ logs, and TensorFlow's Python
    # logger, whose handler holds the process's stderr from before the kernel started) into the cell's
    # output, except when PYTEST_CURRENT_TEST is set: a kernel started by the tests would then hide
    # exactly the stderr lines that test_no_notebook_shows_stderr must see.
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    from .native_log import filtered

    with filtered():
        import tensorflow  # noqa: F401  (imported for its side effect: loaded once, quietly)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install"]:  # install [--user] [--data DIR]
        data_dir = argv[argv.index("--data") + 1] if "--data" in argv[:-1] else None
        folder = install(user="--user" in argv, data_dir=data_dir)
        print(f"kernel {NAME!r} registered in {folder}")
        return
    launch(argv)


if __name__ == "__main__":
    main()
