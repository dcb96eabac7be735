"""The workbook's Jupyter kernel and the filter of C++ start-up lines."""

from __future__ import annotations

import json
import os
import sys

from helpers import kernel, native_log
from helpers.notebooks import notebook_list

BANNER = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795333035.471843   26512 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors.\n"
    "I0000 00:00:1795333035.472336   26512 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.\n"
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
)


def test_filtered_drops_the_known_startup_lines_and_passes_everything_else(capfd):
    real = "E0000 00:00:1795333039.810676   26512 some_op.cc:52] something really went wrong"
    with native_log.filtered():
        os.write(2, BANNER.encode())
        os.write(2, (real + "\n").encode())
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for GPU.\n")  # not the CPU banner
    err = capfd.readouterr().err
    assert err.splitlines() == [real, "INFO: Created TensorFlow Lite XNNPACK delegate for GPU."]


def test_filtered_passes_lines_written_before_an_exception(capfd):
    try:
        with native_log.filtered():
            os.write(2, b"a C++ error line\n")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert capfd.readouterr().err == "a C++ error line\n"


def test_kernel_spec_runs_this_python_and_every_notebook_names_it():
    assert kernel.spec("/pack")["argv"] == [
        sys.executable,
        "-m",
        "helpers.kernel",
        "--data",
        os.path.abspath("/pack"),
        "-f",
        "{connection_file}",
    ]
    assert "--data" not in kernel.spec(None)["argv"]


def test_install_records_the_pack_it_is_given(monkeypatch, capsys):
    """``python -m helpers.kernel install --data DIR``: a lab's shared, read-only pack for every user."""
    calls = []
    monkeypatch.setattr(kernel, "install", lambda user=False, data_dir=None: calls.append((user, data_dir)) or "spec")
    kernel.main(["install", "--user", "--data", "/srv/pack"])
    kernel.main(["install"])
    assert calls == [(True, "/srv/pack"), (False, None)]
    for nb in notebook_list():
        assert json.loads(nb.read_text())["metadata"]["kernelspec"]["name"] == kernel.NAME, nb


def test_kernel_starts_quietly_with_the_workbook_environment(pack, tmp_path):
    """Started by Jupyter without make's environment: TensorFlow is already imported, nothing was
    written to stderr, PYTHONHASHSEED is fixed, the data pack named at install time is found and
    figures are inline."""
    from jupyter_client.manager import start_new_kernel

    if not kernel.is_installed():
        kernel.install()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHASHSEED", "WORKBOOK_DATA", "TF_CPP_MIN_LOG_LEVEL")}
    manager, client = start_new_kernel(kernel_name=kernel.NAME, env=env, cwd=str(tmp_path), startup_timeout=120)
    try:
        code = (
            "import os, sys\n"
            "from helpers import data\n"
            "print('tf' if 'tensorflow' in sys.modules else 'no tf', os.environ['PYTHONHASHSEED'], "
            "data.pack_dir() is not None)\n"
            "import tensorflow as tf\n"
            "print(float(tf.reduce_sum(tf.ones(3))))\n"
            "import matplotlib\n"
            "print(matplotlib.get_backend())\n"
        )
        streams: dict[str, str] = {"stdout": "", "stderr": ""}

        def collect(message):
            if message["msg_type"] == "stream":
                streams[message["content"]["name"]] += message["content"]["text"]

        reply = client.execute_interactive(code, timeout=120, output_hook=collect)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok"
    # inline figures although importing TensorFlow imports matplotlib.pyplot before ipykernel starts
    assert streams == {"stdout": "tf 0 True\n3.0\nmodule://matplotlib_inline.backend_inline\n", "stderr": ""}
