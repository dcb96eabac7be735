"""``make bench``: speed and memory ratios, measured side by side in one run.

Absolute times on a shared machine are noise; ratios of interleaved medians are the result.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time

import numpy as np

from . import bn_fold, costs, data, images, machine, models, slim, tflite, timing, zoo
from .paths import REPO


def peak_multiply_add_rate(size: int = 2048, repeats: int = 5) -> float:
    """Multiply-adds per second of a large float32 matrix product on all cores (the best of a few)."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a  # warm-up: threads started, memory touched
    best = min(_seconds(lambda: a @ a) for _ in range(repeats))
    return size**3 / best


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def litert_section(model, photo: np.ndarray, repeats: int) -> None:
    """LiteRT float32 and INT8 at batch 1 with 1 and 2 threads (invoke() alone), against the floor."""
    pixels = ((photo[0] + 1.0) * 127.5).round().astype(np.uint8)  # back to the photo's resized pixels
    logits = tflite.pixels_model(models.logits_model(model, dense=True), name="imagenet")
    calibration = [images.resize(images.load_image(images.resolve_image(n)), 224) for n in images.reference_photos()]
    representative = lambda: ([c[None].astype(np.float32)] for c in calibration)  # noqa: E731
    files = {
        "float32": tflite.convert(logits, "float32"),
        "int8": tflite.convert(logits, "int8", representative),
        "int8, uint8 in/out": tflite.convert(logits, "int8", representative, io_type="uint8"),
    }
    runners = {}
    for mode, content in files.items():
        for threads in (1, 2):
            runner = tflite.TFLiteClassifier(content, num_threads=threads, name=f"{mode}, {threads} thread(s)")
            runner.set_input(pixels)
            runners[mode, threads] = runner
    samples = timing.measure({key: r.interpreter.invoke for key, r in runners.items()}, repeats=repeats * 5)
    medians = {key: float(np.median(values)) for key, values in samples.items()}
    mult_adds = sum(row.mult_adds for row in costs.layer_costs(model))
    rate = peak_multiply_add_rate()
    floor = mult_adds / rate
    print(f"\nLiteRT, batch 1, invoke() alone, median of {repeats * 5} interleaved runs")
    print(f"  peak float32 matmul rate of this machine: {rate / 1e9:.1f} G multiply-adds/s (2048^3 matmul, all cores)")
    print(f"  physical floor for {mult_adds / 1e6:.1f} M multiply-adds: {floor * 1000:.3f} ms")
    for (mode, threads), seconds in medians.items():
        whole = tflite.whole_graph_delegated(runners[mode, threads].interpreter)
        print(
            f"  {mode:<18} {threads} thread(s) {seconds * 1000:7.3f} ms   floor / time = {floor / seconds:5.1%}"
            f"   whole graph in XNNPACK: {whole}"
        )
    names = {key: f"{key[0]} ({key[1]} thread{'s' if key[1] > 1 else ''})" for key in samples}
    for threads in (1, 2):
        for mode in ("int8", "int8, uint8 in/out"):
            print("  " + timing.speed_sentence(samples, (mode, threads), ("float32", threads), machine.short(), names))


def width_section(repeats: int) -> None:
    """Where INT8 pays: float32 / INT8 invoke time at batch 1 for V1 0.25, 0.5 and 0.75 at 224
    pixels (the wider two rebuilt from Google's uint8 files), each INT8-converted here alike."""
    from . import zoo

    calibration = [images.resize(images.load_image(images.resolve_image(n)), 224) for n in images.reference_photos()]
    networks = {
        "0.25": models.logits_model(models.build_mobilenet_v1("0.25", 224), dense=True),
        "0.5": models.logits_model(
            models.dequantized_v1(zoo.tflite_file("mobilenet_v1_0.5_160_quant"), "0.5", 224), dense=True
        ),
        "0.75": models.logits_model(
            models.dequantized_v1(zoo.tflite_file("mobilenet_v1_0.75_192_quant"), "0.75", 224), dense=True
        ),
    }
    runners = {}
    for alpha, network in networks.items():
        wrapped = tflite.pixels_model(network, name=f"v1_{alpha}")
        files = {
            "float32": tflite.convert(wrapped, "float32"),
            "int8": tflite.convert(wrapped, "int8", lambda: ([c[None].astype(np.float32)] for c in calibration)),
        }
        for mode, content in files.items():
            for threads in (1, 2):
                runner = tflite.TFLiteClassifier(content, num_threads=threads, name=f"{alpha} {mode} {threads}")
                runner.set_input(calibration[0])
                runners[alpha, mode, threads] = runner
    medians = timing.compare({key: r.interpreter.invoke for key, r in runners.items()}, repeats=repeats * 3)
    print(f"\nINT8 vs width: V1 at 224 px, batch 1, invoke() alone, median of {repeats * 3} interleaved runs")
    for alpha in networks:
        for threads in (1, 2):
            f, i = medians[alpha, "float32", threads], medians[alpha, "int8", threads]
            print(
                f"  alpha {alpha:<4} {threads} thread(s): float32 {f * 1000:6.2f} ms, INT8 {i * 1000:6.2f} ms, "
                f"float32 / INT8 time = {f / i:.3f}"
            )


_REPORT_PEAK = (
    "import atexit, runpy, sys\n"
    "def report():\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('VmHWM', status.split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
    "atexit.register(report)\n"
    "sys.argv = ['helpers'] + sys.argv[1:]\n"
    "runpy.run_module('helpers', run_name='__main__', alter_sys=True)\n"
)


def _run_cli(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``python -m helpers ...`` run.

    The child reports its own ``VmHWM`` (the high-water mark of its memory after ``exec``): the
    rusage of a child also counts the parent's memory it was forked from, which would charge this
    benchmark's TensorFlow to the command being measured.
    """
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _REPORT_PEAK, *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"python -m helpers {' '.join(args)} failed: {result.stderr[-500:]}")
    peak_kib = int(result.stderr.rsplit("VmHWM", 1)[1].split()[0])
    return elapsed, peak_kib / 1024


def cli_section(runs: int = 3) -> None:
    """Start-to-answer wall time and peak RSS of ``python -m helpers predict`` for both backends."""
    photo = str(data.fetch("images/parrot.jpg"))
    zoo.load("mobilenet_v1_0.25_224", backend="litert")  # the conversion is cached before timing
    results = {}
    for backend in ("litert", "keras"):
        measured = [_run_cli(["predict", photo, "--backend", backend]) for _ in range(runs)]
        results[backend] = (min(m[0] for m in measured), max(m[1] for m in measured))
    print(f"\npython -m helpers predict, one photo, cached model (best wall of {runs}, largest peak RSS):")
    for backend, (wall, rss) in results.items():
        print(f"  --backend {backend:<7} {wall:5.2f} s wall, peak RSS {rss:5.0f} MiB")
    print(
        f"  keras / litert wall time = {results['keras'][0] / results['litert'][0]:.1f}  "
        f"(aim: litert <= 0.3 s and <= 100 MiB, >= 15x faster than keras)"
    )


def grading_section(jobs: int = 2) -> dict[str, float]:
    """Seconds to grade one solved submission of each notebook in the sandbox (the instructor's
    solutions put into the student edition): first the once-per-version warm-up of the caches
    (:func:`helpers.grader.warm_caches`), then each submission alone, then all of them ``jobs`` at a
    time, and the sandbox's own cost (01 with and without it, interleaved)."""
    import json
    import tempfile
    from pathlib import Path

    from . import grader
    from .notebooks import notebook_list

    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for source in notebook_list():
            paths.append(Path(folder) / source.name)
            paths[-1].write_text(json.dumps(grader.solved_submission(source)), encoding="utf-8")
        n = len(paths)
        print("\nwarming the grading caches (once per version of a notebook and of the helpers):")
        for source in notebook_list():
            begin = time.perf_counter()
            done = grader.warm_caches(source, timeout=900)
            state = "already warm" if done is None else f"{done['score']} / {done['max_score']}"
            print(f"  {source.name:<28} {time.perf_counter() - begin:6.1f} s  {state}")
        print("grading one solved submission of each notebook, sandboxed, one at a time:")
        for path in paths:
            begin = time.perf_counter()
            (result,) = grader.grade_all([str(path)], timeout=900)
            seconds[path.name] = time.perf_counter() - begin
            print(f"  {path.name:<28} {seconds[path.name]:6.1f} s  {result['score']} / {result['max_score']}")
        seconds["one at a time"] = sum(seconds[p.name] for p in paths)
        begin = time.perf_counter()
        results = grader.grade_all([str(p) for p in paths], jobs=jobs, timeout=900)
        seconds[f"jobs {jobs}"] = time.perf_counter() - begin
        marks = ", ".join(f"{r['notebook'][:3].rstrip('_')} {r['score']}/{r['max_score']}" for r in results)
        print(f"all {n} in one batch, --jobs {jobs}: {seconds[f'jobs {jobs}']:.0f} s ({marks})")
        print(f"all {n} one at a time: {seconds['one at a time']:.0f} s  (aim: a student's notebooks in <= 120 s)")
        runs: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(3):
            for sandboxed in (True, False):
                begin = time.perf_counter()
                grader.grade_all([str(paths[0])], timeout=900, use_sandbox=sandboxed)
                runs[sandboxed].append(time.perf_counter() - begin)
        added = float(np.median(runs[True]) - np.median(runs[False]))
        seconds["sandbox adds"] = added
        print(
            f"the sandbox adds {added:+.2f} s to grading {paths[0].name} (median of 3 interleaved runs each: "
            f"{np.median(runs[True]):.1f} s vs {np.median(runs[False]):.1f} s; aim: <= 1 s)"
        )
    print(f"measured on {machine.describe()}")
    return seconds


def main(repeats: int = 20) -> int:
    """Print Keras vs frozen graph, folded vs unfolded, LiteRT vs the floor, both CLI backends and
    the grading times (``python -m helpers.bench grading [JOBS]``: the grading times only)."""
    if sys.argv[1:2] == ["grading"]:
        grading_section(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
        return 0
    from .native_log import filtered

    with filtered():  # TensorFlow's start-up banner (oneDNN, CUDA probe) is not part of the report
        import tensorflow as tf

    print(f"machine: {machine.describe()}")
    print(f"Python {platform.python_version()}, TensorFlow {tf.__version__}; {time.strftime('%Y-%m-%d')}")
    model = models.load_model()
    logits = models.logits_model(model)
    folded = models.logits_model(bn_fold.fold_batchnorm(model))
    graph = slim.FrozenGraph()
    photo = images.preprocess(images.load_image(data.fetch("images/parrot.jpg")), 224)
    keras_fn = tf.function(lambda t: logits(t, training=False))
    folded_fn = tf.function(lambda t: folded(t, training=False))
    for batch_size in (1, 32):
        batch = tf.constant(np.repeat(photo, batch_size, axis=0))
        medians = timing.compare(
            {
                "keras": lambda b=batch: keras_fn(b).numpy(),
                "frozen graph": lambda b=batch: graph.logits(b),
                "keras folded": lambda b=batch: folded_fn(b).numpy(),
            },
            repeats=repeats,
        )
        print(f"\nbatch {batch_size}: median of {repeats} interleaved runs")
        for name, seconds in medians.items():
            print(f"  {name:<13} {seconds * 1000:8.2f} ms   {batch_size / seconds:8.0f} images/s")
        print(f"  keras / frozen graph time   = {medians['keras'] / medians['frozen graph']:.2f}  (aim: <= 1)")
        print(f"  unfolded / folded time      = {medians['keras'] / medians['keras folded']:.2f}")

    litert_section(model, photo, repeats)
    width_section(repeats)
    cli_section()
    grading_section()
    return 0


if __name__ == "__main__":
    sys.exit(main())
