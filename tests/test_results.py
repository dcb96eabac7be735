"""build/results.json, the README's generated results section, the machine description and the
timing sentences: every figure of the README comes from one recorded run."""

from __future__ import annotations

import json

import pytest

from helpers import machine, records, results, timing
from helpers.errors import WorkbookError


def _executed(tmp_path, stem, values):
    outputs = [
        {"output_type": "display_data", "data": {records.MIME: {"name": k, "value": v}}} for k, v in values.items()
    ]
    notebook = {"cells": [{"cell_type": "code", "outputs": outputs}], "metadata": {"papermill": {"duration": 12.5}}}
    (tmp_path / f"{stem}.ipynb").write_text(json.dumps(notebook))


def test_collect_and_render_every_recorded_value(tmp_path):
    _executed(tmp_path, "01_classify", {"top1_label": "Egyptian cat", "max_logit_diff": 2.9e-05, "ok": True})
    layer = {"layer": "conv1", "op": "CONV_2D", "input": [224, 224, 3], "output_channels": 8, "float32_ms": 0.3}
    layer["int8_ms"] = 0.6
    layer |= {"speed_ratio": 0.5, "speed_ratio_se": 0.01}
    _executed(tmp_path, "07_tflite_int8", {"int8_layer_speeds": [layer], "sizes": {"a": 0.303}})
    found = results.collect(tmp_path)
    assert found["run"]["machine"]["cpu"] == machine.cpu_model()
    assert set(found["run"]["machine"]["isa_flags"]) == set(machine.ISA_FLAGS)
    assert found["notebooks"]["01_classify"]["records"]["max_logit_diff"] == 2.9e-05
    text = results.render(found, "results/x.json")
    assert text.startswith(results.BEGIN) and text.endswith(results.END)
    assert "| `top1_label` | Egyptian cat |" in text and "| `max_logit_diff` | 2.9e-05 |" in text
    assert "| conv1 | CONV_2D | 224x224x3 | 8 | 0.3000 | 0.6000 | 0.500 ± 0.010 |" in text  # the per-layer table
    assert "a: 0.303" in text  # enough digits: 0.303 is not shown as 0.30
    assert machine.cpu_model() in text
    with pytest.raises(WorkbookError, match="no executed notebooks"):
        results.collect(tmp_path / "empty")


def test_update_readme_rewrites_only_the_marked_section(tmp_path):
    _executed(tmp_path, "01_classify", {"top1_label": "Egyptian cat"})
    source = tmp_path / "run.json"
    source.write_text(json.dumps(results.collect(tmp_path)))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nprose\n\n{results.BEGIN}\nold\n{results.END}\n\nmore prose\n")
    assert not results.update_readme(source, readme, check=True)  # differs: reported, not written
    assert "old" in readme.read_text()
    assert not results.update_readme(source, readme)
    assert results.update_readme(source, readme, check=True)
    text = readme.read_text()
    assert text.startswith("# title\n\nprose\n\n") and text.endswith("\n\nmore prose\n") and "Egyptian cat" in text


def test_readme_results_section_is_the_rendering_of_the_committed_run():
    """No figure in the README's results section is typed by hand: it is the rendering of the
    newest committed results/*.json (python -m helpers results render rewrites it)."""
    assert results.update_readme(results.latest_committed(), check=True), (
        "README.md's results section differs: run python -m helpers results render"
    )


def test_machine_names_the_cpu_and_its_int8_instructions():
    text = machine.describe()
    assert text.startswith(machine.cpu_model())
    for flag in ("avx512_vnni", "avx_vnni", "amx_int8"):
        assert f"{flag} yes" in text or f"{flag} no" in text
    cpuinfo = open("/proc/cpuinfo").read()
    assert machine.isa_flags()["avx2"] == (" avx2 " in cpuinfo.split("flags", 1)[1].split("\n", 1)[0] + " ")


def test_speed_sentence_says_faster_only_beyond_two_standard_errors():
    steady = {"a": [1.0, 1.01, 0.99, 1.0] * 10, "b": [2.0, 2.02, 1.98, 2.0] * 10, "c": [1.0, 1.3, 0.8, 1.1] * 10}
    ratio, error = timing.speed_ratio(steady["a"], steady["b"])
    assert ratio == pytest.approx(0.5) and error < 0.02
    assert timing.speed_sentence(steady, "b", "a", "this CPU").startswith("b runs at 0.500x the speed of a")
    assert "slower, on this CPU" in timing.speed_sentence(steady, "b", "a", "this CPU")
    assert "faster" in timing.speed_sentence(steady, "a", "b", "this CPU")
    assert timing.verdict(1.02, 0.02) == "not measurably faster or slower"  # 1 standard error from equal


def test_the_table_of_notebooks_gets_each_plan_and_full_run_time(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    plans = {"01_classify": "Plan about 45 minutes to work through it;", "06b_deep": "Plan 45 to\n60 minutes to read."}
    for stem, plan in plans.items():
        cell = {"cell_type": "markdown", "source": [f"# T\n\n## Overview\n\n{plan}\n"]}
        (folder / f"{stem}.ipynb").write_text(json.dumps({"cells": [cell]}))
    (folder / "02_silent.ipynb").write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": ["# T\n"]}]}))
    run = {"notebooks": {"01_classify": {"seconds": 57.4}}}
    table = "| notebook | time | what |\n|---|---|---|\n| `01_classify` | - | a |\n| `06b_deep` | old | b |\n"
    assert results.fill_notebook_table(table, run, folder).splitlines()[2:] == [
        "| `01_classify` | about 45 minutes; full run 57 s | a |",
        "| `06b_deep` | optional; 45 to 60 minutes; not in the committed run | b |",
    ]
    with pytest.raises(WorkbookError, match="02_silent.ipynb: its Overview says no time"):
        results.fill_notebook_table("| `02_silent` | - | c |\n", run, folder)
