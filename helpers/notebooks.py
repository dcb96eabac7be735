"""Executing the workbook's notebooks with papermill, checking parameter names first.

``python -m helpers.notebooks`` (what ``make workbook`` runs) executes every notebook of
``notebooks/`` in order into ``build/notebooks/`` and renders each to ``build/html/``, printing one
line per notebook; the source notebooks are never written.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

from .errors import WorkbookError
from .paths import NOTEBOOKS, build_dir, notebook_list


def parameters_of(notebook: str | Path) -> dict:
    """``name -> default`` of the notebook's cell tagged ``parameters`` (literal values only)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            values = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    values[node.targets[0].id] = ast.literal_eval(node.value)
            return values
    raise WorkbookError(f"{notebook} has no cell tagged 'parameters'")


def _kernel_manager_class():
    """A kernel manager whose kernels talk over Unix sockets in Jupyter's runtime folder (``ipc``)
    rather than TCP ports on 127.0.0.1, where ipykernel warns at every start that the traffic is
    unencrypted; TCP where that folder's path is too long for a socket name (104 bytes)."""
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets import default

    prefix = Path(jupyter_runtime_dir()) / f"kernel-{uuid.uuid4()}"  # never the working folder (notebooks/)
    local = len(f"{prefix}-ipc-5".encode()) < 104

    class LocalKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc" if local else "tcp"

        @default("ip")
        def _default_ip(self) -> str:
            if not local:
                return "127.0.0.1"
            prefix.parent.mkdir(parents=True, exist_ok=True)
            return str(prefix)

    return LocalKernelManager


def execute(
    notebook: str | Path,
    output: str | Path,
    parameters: dict | None = None,
    *,
    timeout: int = 1800,
    allow_errors: bool = False,
) -> Path:
    """Run ``notebook`` with papermill into ``output``; unknown parameter names are an error.

    The kernel is the workbook's own (:mod:`helpers.kernel`, registered here if missing) and runs
    in ``notebooks/`` (so relative paths behave as in JupyterLab) with the same Python as this
    process. ``allow_errors``: every cell runs even after one fails (grading), and
    the executed notebook is written with the errors in it instead of raising.
    """
    import papermill

    from . import kernel

    if not kernel.is_installed():
        kernel.install()
    parameters = dict(parameters or {})
    known = parameters_of(notebook)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise WorkbookError(f"{Path(notebook).name} has no parameter(s) {unknown}; it takes {sorted(known)}")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=kernel.NAME,
            cwd=str(NOTEBOOKS),
            progress_bar=False,
            execution_timeout=timeout,
            allow_errors=allow_errors,
            kernel_manager_class=_kernel_manager_class(),
        )
    except papermill.PapermillExecutionError:
        if not allow_errors:
            raise
    return output


def render_html(notebook: Path, html_dir: Path) -> Path:
    """Render an executed notebook to ``html_dir/<name>.html``."""
    from nbconvert import HTMLExporter

    html_dir.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_filename(str(notebook))
    target = html_dir / (notebook.stem + ".html")
    target.write_text(body, encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    """Execute and render every notebook (or those named); one line each; non-zero if one failed."""
    parser = argparse.ArgumentParser(prog="python -m helpers.notebooks", description=main.__doc__)
    parser.add_argument("names", nargs="*", help="notebook names or prefixes (default: all)")
    parser.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="parameter for every notebook run (VALUE as a Python literal)",
    )
    args = parser.parse_args(argv)
    parameters = {}
    for item in args.parameter:
        name, _, value = item.partition("=")
        try:
            parameters[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parameters[name] = value
    chosen = [nb for nb in notebook_list() if not args.names or any(nb.name.startswith(n) for n in args.names)]
    if not chosen:
        print("no notebooks matched", file=sys.stderr)
        return 2
    from . import results

    out_dir, html_dir = build_dir() / "notebooks", build_dir() / "html"
    info = results.run_info() | {"parameters": parameters}  # taken before the run: the commit that ran
    failed, seconds = 0, {}
    width = max(len(nb.name) for nb in chosen)
    for nb in chosen:
        start = time.perf_counter()
        try:
            executed = execute(nb, out_dir / nb.name, {k: v for k, v in parameters.items() if k in parameters_of(nb)})
            render_html(executed, html_dir)
            status = "ok"
        except Exception as error:  # report every notebook, then fail
            failed += 1
            status = f"FAILED: {str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__}"
            try:
                render_html(out_dir / nb.name, html_dir)
            except Exception:
                pass
        seconds[nb.stem] = round(time.perf_counter() - start, 1)
        print(f"{nb.name:<{width}} {seconds[nb.stem]:7.1f} s  {status}", flush=True)
    print(f"executed notebooks: {out_dir}   HTML: {html_dir}")
    if not args.names:  # a whole run: every recorded value, with the machine it ran on
        info["failed"] = failed
        print(f"every recorded value: {results.write(results.collect(out_dir, info, seconds))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
