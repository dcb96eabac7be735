"""``python -m helpers``: the notebooks' code on the command line.

Every user error exits with status 2 and one line on stderr saying what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from . import native_log
from .errors import WorkbookError


def _results(model: str, photos: list, ranked: list) -> list[dict]:
    """``predict``'s and ``tflite``'s JSON: one object per photo with its ranked predictions."""
    return [
        {"image": name, "model": model, "predictions": [p.as_dict() for p in rows]}
        for (name, _), rows in zip(photos, ranked, strict=True)
    ]


def _format_predictions(results: list[dict]) -> str:
    lines = []
    for result in results:
        lines.append(f"{result['image']}  ({result['model']})")
        for p in result["predictions"]:
            extra = f"  (within labels: {p['subset_probability']:.3f})" if "subset_probability" in p else ""
            lines.append(f"  {p['rank']}. {p['label']:<28} {p['wnid'] or '':<9}  {p['probability']:.3f}{extra}")
    return "\n".join(lines)


def _predict(args) -> object:
    from . import images, labels, zoo

    zoo.check(args.model)  # an unknown model fails before any slow work
    photos = [(str(p), images.load_image(images.resolve_image(p))) for p in args.images]
    subset = None
    if args.labels or args.labels_file:
        wanted = list(args.labels or []) + (labels.read_label_file(args.labels_file) if args.labels_file else [])
        subset = [cls.index for cls in labels.match_labels(wanted)]
        if not 1 <= args.top_k <= len(subset):
            raise WorkbookError(f"--top-k {args.top_k} must be between 1 and the {len(subset)} labels to rank")
    with native_log.filtered():
        classifier = zoo.load(args.model, backend=args.backend)
        ranked = classifier.predict([image for _, image in photos], args.top_k, subset)
    results = _results(args.model, photos, ranked)
    return results if args.json else _format_predictions(results)


def _layers(args) -> object:
    from .layers import first_layer_variables, format_rows

    if args.first < 1:
        raise WorkbookError("--first must be at least 1")
    with native_log.filtered():
        rows = first_layer_variables(args.first, args.naming)
    return rows if args.json else format_rows(rows)


def _fold_bn(args) -> object:
    from . import bn_fold, slim

    with native_log.filtered():
        weights = slim.slim_weights()
        epsilon = slim.batchnorm_epsilon()
    scope = f"MobilenetV1/{args.layer}"
    kernel_name = next((n for n in weights if n in (f"{scope}/weights", f"{scope}/depthwise_weights")), None)
    if kernel_name is None or f"{scope}/BatchNorm/gamma" not in weights:
        from .layers import slim_scopes

        known = [s for s in slim_scopes(weights) if s != "Logits"]
        raise WorkbookError(f"no conv layer with BatchNorm named {args.layer!r}; choose one of {', '.join(known)}")
    bn = {p: weights[f"{scope}/BatchNorm/{p}"] for p in ("gamma", "beta", "moving_mean", "moving_variance")}
    if args.assume_gamma_one:
        folded = bn_fold.fold_gamma_one(
            weights[kernel_name], bn["beta"], bn["moving_mean"], bn["moving_variance"], epsilon
        )
    else:
        folded = bn_fold.fold(
            weights[kernel_name],
            bn["gamma"],
            bn["beta"],
            bn["moving_mean"],
            bn["moving_variance"],
            epsilon,
            depthwise=kernel_name.endswith("depthwise_weights"),
        )
    out = {
        "layer": args.layer,
        "epsilon": epsilon,
        "multiplier": [float(v) for v in folded.multiplier],
        "bias": [float(v) for v in folded.bias],
    }
    if args.json:
        return out
    rows = [f"{args.layer}: epsilon {epsilon:g}" + ("  (gamma assumed 1)" if args.assume_gamma_one else "")]
    rows += [
        f"  channel {i:3d}  multiplier {m: .6f}  bias {b: .6f}"
        for i, (m, b) in enumerate(zip(out["multiplier"], out["bias"], strict=True))
    ]
    return "\n".join(rows)


def _tflite(args) -> object:
    from . import images, tflite, zoo

    if (args.input_mean is None) != (args.input_std is None):
        raise WorkbookError("give --input-mean and --input-std together")
    photos = [(str(p), images.load_image(images.resolve_image(p))) for p in args.images]
    if args.save_tensors:  # refuse a bad dump request before running anything
        if len(photos) != 1:
            raise WorkbookError("--save-tensors dumps the tensors of one image; give exactly one IMAGE")
        tflite.check_dump_folder(args.save_tensors, force=args.force)
    with native_log.filtered():
        classifier = tflite.TFLiteClassifier(
            zoo.tflite_file(args.model),
            name=args.model,
            labels_file=args.labels_file,
            input_mean=args.input_mean,
            input_std=args.input_std,
            data_format=args.data_format,
            preserve_all_tensors=bool(args.save_tensors),
        )
        k = args.top_k if args.top_k is not None else min(5, len(classifier.class_names))
        results = _results(args.model, photos, classifier.predict([image for _, image in photos], k))
        if args.save_tensors:
            tflite.save_tensors(classifier, args.save_tensors, layout=args.tensor_layout, force=args.force)
    return results if args.json else _format_predictions(results)


def _evaluate(args) -> object:
    from . import datasets, evaluation, zoo

    zoo.check(args.model)
    items = datasets.labelled_photos(args.folder)  # bad names fail before the model loads
    with native_log.filtered():  # TensorFlow's start-up lines, not the progress bar below
        classifier = zoo.load(args.model)
    result = evaluation.evaluate(classifier, items, central_crop=args.central_crop, progress=sys.stderr.isatty())
    if args.json:
        return result.as_dict()
    return (
        f"{result.model}: top-1 {result.top1:.1%}, top-5 {result.top5:.1%} on {result.n} photos "
        f"({result.preprocessing})\n"
        f"  time: classifying {result.classify_seconds:.1f} s, "
        f"waiting for decoded photos {result.waiting_seconds:.1f} s"
    )


def _imprint(args) -> object:
    from . import data, flowers, imprinting

    out = Path(args.out)
    if out.suffix != ".tflite":
        raise WorkbookError(f"--out must name a .tflite file, not {args.out}")
    alpha, size = imprinting.check_backbone(args.model)
    if args.scale <= 0:
        raise WorkbookError("--scale must be positive")
    class_names, found = flowers.list_photos(Path(args.folder))
    with warnings.catch_warnings(record=True) as skipped:  # one line per unreadable photo, below
        warnings.simplefilter("always")
        photos = flowers.load_split(found["train"] + found["val"], class_names, size)  # every readable photo
    for warning in skipped:
        print(f"warning: {warning.message}", file=sys.stderr)
    with native_log.filtered():
        from . import bottlenecks, datasets, images, tflite, transfer

        extractor = transfer.feature_extractor(alpha, size)
        embeddings, _ = bottlenecks.bottlenecks(extractor, photos.images)
        names = list(class_names)
        if args.keep_imagenet:
            from .labels import imagenet_classes

            sample = [images.resize(images.load_image(p), size) for p, _ in datasets.imagenet_sample()]
            mean = bottlenecks.bottlenecks(extractor, np.stack(sample))[0].mean(axis=0)
            centred = imprinting.imprint_weights(embeddings - mean, photos.labels, len(class_names))
            w, b = imprinting.keep_imagenet_rows(*imprinting.imagenet_classifier(args.model), centred, mean)
            model = imprinting.keep_imagenet_model(extractor, w, b)
            names = [c.label for c in imagenet_classes()] + names
        else:
            weights = imprinting.imprint_weights(embeddings, photos.labels, len(class_names))
            model = imprinting.cosine_model(extractor, weights, args.scale)
        if args.int8:

            def representative():
                for image in photos.images[:: max(1, len(photos.images) // 100)]:
                    yield [image[None].astype(np.float32)]

            content = tflite.convert(model, "int8", representative)
        else:
            content = tflite.convert(model, "float32")
    data.write_atomic(out, content)
    labels_file = imprinting.write_labels(out.with_name(out.stem + "_labels.txt"), names)
    counts = {name: int((photos.labels == i).sum()) for i, name in enumerate(class_names)}
    result = {
        "model": str(out),
        "labels": str(labels_file),
        "backbone": args.model,
        "classes": counts,
        "outputs": len(names),
        "int8": bool(args.int8),
        "keep_imagenet": bool(args.keep_imagenet),
    }
    if args.json:
        return result
    rows = [f"wrote {out} ({len(content) / 1e6:.1f} MB, {len(names)} outputs) and {labels_file}"]
    rows += [f"  {name}: {n} photos" for name, n in counts.items()]
    rows.append(f"try: python -m helpers tflite PHOTO --model {out}")
    return "\n".join(rows)


def _student(args) -> object:
    from . import homework
    from .notebooks import notebook_list

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in notebook_list():
        nb = json.loads(source.read_text(encoding="utf-8"))
        edition = homework.student_edition(nb, source.name, homework.fingerprint(source))
        (out / source.name).write_text(json.dumps(edition, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(str(out / source.name))
    return written if args.json else "\n".join(written)


def _grade(args) -> object:
    import signal

    from . import grader

    # A batch system stops a job with SIGTERM: leave as an exception does, so every batch folder is removed.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.jobs < 1:
        raise WorkbookError("--jobs must be at least 1")
    if args.timeout < 1:
        raise WorkbookError("--timeout must be at least 1 second")
    marks = grader.read_manual(args.manual) if args.manual else None  # a bad file stops before any grading
    results = grader.grade_all(
        [str(s) for s in args.submissions],
        jobs=args.jobs,
        timeout=args.timeout,
        use_sandbox=not args.no_sandbox,
        student=args.student or "",
    )
    if marks is not None:
        results = grader.merge_manual(results, marks)
    errors = [r["error"] for r in results if r.get("error")]
    for error in errors[:-1] if len(errors) == len(results) else errors:  # one stderr line per bad file
        print(f"error: {error}", file=sys.stderr)
    if len(errors) == len(results):  # nothing graded: exit status 2, the last line below
        raise WorkbookError(errors[-1])
    if args.out:
        grader.write_reports(results, args.out)
    if args.no_sandbox:
        print(f"warning: {grader.NO_SANDBOX_WARNING}", file=sys.stderr)
    if args.json:  # JSON lines: one compact object per submission, to concatenate across calls
        return JsonLines("\n".join(json.dumps(r, ensure_ascii=False) for r in results))
    lines = []
    for r in results:
        if r.get("error"):
            lines.append(f"{r['submission']}: not graded: {r['error']}")
            continue
        lines.append(f"{r['submission']}  ({r['student']}, {r['notebook']}): {r['score']} / {r['max_score']}")
        lines += [
            f"  {'ok  ' if c['passed'] else 'FAIL'} {c['name']} ({c['points']}) {c['error']}" for c in r["checks"]
        ]
        for w in r["written"]:
            mark = "to be marked" if w["points"] is None else w["points"]
            lines.append(
                f"  written {grader.question_name(w)}: {'answered' if w['answered'] else 'BLANK'}, {mark} / "
                f"{w['max_points']}"
            )
        lines += [f"  warning: {w}" for w in r["warnings"]]
    return "\n".join(lines)


class JsonLines(str):
    """Output already in JSON lines: printed as it is, even under --json."""


def _pack(args) -> object:
    from . import pack

    folder = Path(args.folder)
    if args.verify:
        good, bad, absent = pack.verify_pack(folder)
        for line in bad:  # one line per bad file, then the summary as the error
            print(f"bad: {line}", file=sys.stderr)
        summary = f"{folder}: {good} files verified, {len(bad)} bad"
        if absent:
            summary += f"; {len(absent)} registered files not in it (downloaded when needed), e.g. {absent[0]}"
        if bad:
            raise WorkbookError(summary)
        return {"verified": good, "bad": bad, "absent": absent} if args.json else summary
    result = pack.build_pack(folder, args.only)
    return result if args.json else pack.describe(result, folder)


def _records(args) -> object:
    from .records import read_records

    return read_records(args.notebook)


def _results_command(args) -> object:
    from . import results

    if args.action == "collect":
        return f"wrote {results.write(results.collect())}"
    if args.action == "save":
        return f"wrote {results.save(Path(args.file) if args.file else None)}"
    source = Path(args.file) if args.file else results.latest_committed()
    matched = results.update_readme(source, check=args.check)
    if args.check and not matched:
        raise WorkbookError(
            f"README.md's results section differs from the rendering of {source}: "
            f"run python -m helpers results render {source}"
        )
    return f"README.md's results section {'already matches' if matched else 'rendered from'} {source}"


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m helpers`` argument parser."""
    from .models import DEFAULT_MODEL

    parser = argparse.ArgumentParser(prog="python -m helpers", description="MobileNet workbook command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="classify photos with a registered model or a .keras/.tflite file")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--model", default=DEFAULT_MODEL, help="a registered model name, or a FILE.keras / FILE.tflite")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--labels", nargs="+", metavar="NAME", help="rank only these ImageNet names")
    group.add_argument("--labels-file", metavar="FILE", help="rank only the names in FILE (one per line)")
    p.add_argument(
        "--backend",
        choices=("litert", "keras"),
        default="litert",
        help="run registered models from a cached float32 .tflite (default; no TensorFlow after the first use) "
        "or in Keras",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_predict)

    p = sub.add_parser("layers", help="variables of the first layers, 'name (shape)'")
    p.add_argument("--first", type=int, default=3)
    p.add_argument("--naming", choices=("slim", "keras"), default="slim")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_layers)

    p = sub.add_parser("fold-bn", help="fold one layer's BatchNorm: per-channel multiplier and bias")
    p.add_argument("--layer", default="Conv2d_0")
    p.add_argument("--assume-gamma-one", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_fold_bn)

    p = sub.add_parser("tflite", help="classify photos with a .tflite model (ai-edge-litert interpreter)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--model", required=True, help="a .tflite file, or e.g. mobilenet_v2_1.0_224_quant")
    p.add_argument("--top-k", type=int, default=None, help="default: 5, or every class of a smaller model")
    p.add_argument("--input-mean", type=float, help="input = (pixel - mean) / std (default: read from the model)")
    p.add_argument("--input-std", type=float)
    p.add_argument("--data-format", choices=("channel_last", "channel_first"), default="channel_last")
    p.add_argument(
        "--labels-file",
        metavar="FILE",
        help="class names, one per line (default: *_labels.txt beside the model, else ImageNet)",
    )
    p.add_argument("--save-tensors", metavar="DIR", help="dump every tensor of the run as .npy files into DIR")
    p.add_argument("--tensor-layout", choices=("nchw", "nhwc"), default="nchw", help="layout of dumped 4-D tensors")
    p.add_argument("--force", action="store_true", help="write into a non-empty --save-tensors folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_tflite)

    p = sub.add_parser("evaluate", help="ImageNet top-1/top-5 over a folder of photos named <wnid>_*.JPEG")
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument("--model", default=DEFAULT_MODEL, help="a registered model name, or a FILE.keras / FILE.tflite")
    p.add_argument(
        "--central-crop", type=float, metavar="F", help="keep the central F of each side first (slim: 0.875)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("imprint", help="new classes from a folder of class folders, by weight imprinting, as .tflite")
    p.add_argument("folder", metavar="DIR", help="one sub-folder of photos per new class")
    p.add_argument("--out", required=True, metavar="FILE.tflite", help="also writes FILE_labels.txt beside it")
    p.add_argument("--model", default="mobilenet_v1_0.25_224", help="backbone (MobileNet V1 0.25 at 128-224)")
    p.add_argument("--keep-imagenet", action="store_true", help="keep the 1000 ImageNet classes (first)")
    p.add_argument("--int8", action="store_true", help="full-integer INT8, calibrated on the given photos")
    p.add_argument("--scale", type=float, default=10.0, help="cosine classifier scale s (confidence, not ranking)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_imprint)

    p = sub.add_parser("student", help="write the student edition of every notebook (solutions and hidden tests out)")
    p.add_argument("--out", default=str(Path("build") / "student"), metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_student)

    p = sub.add_parser("grade", help="grade submitted notebooks, each in its own sandbox with a time limit")
    p.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION.ipynb")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="also write grades.csv, one HTML feedback page per submission, written/ (one page per written "
        "question, model answer included: for the marker) and manual.csv (the written answers' marks to fill in)",
    )
    p.add_argument("--manual", metavar="MANUAL.csv", help="a filled-in manual.csv: merged into totals and reports")
    p.add_argument("--student", help="the student's name in the reports (default: the submission's folder name)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--timeout", type=int, default=900, help="seconds one submission may run")
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run submissions without bubblewrap (no user namespaces here): untrusted code runs as you",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_grade)

    p = sub.add_parser("pack", help="build an offline data pack in DIR (resumable), or check one with --verify")
    p.add_argument("folder", metavar="DIR")
    p.add_argument(
        "--only", nargs="+", metavar="NAME", help="just these registered files (online-only ones without a hash too)"
    )
    p.add_argument("--verify", action="store_true", help="check DIR file by file and name each bad file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_pack)

    p = sub.add_parser("records", help="the values an executed notebook recorded, as JSON")
    p.add_argument("notebook", type=Path)
    p.set_defaults(run=_records, json=True)

    p = sub.add_parser("results", help="build/results.json, its copy in results/, README's results section")
    p.add_argument("action", choices=("collect", "save", "render"))
    p.add_argument(
        "file", nargs="?", help="save: a run's JSON (default build/results.json); render: default newest results/*.json"
    )
    p.add_argument("--check", action="store_true", help="render: only check that README.md matches")
    p.set_defaults(run=_results_command, json=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; user errors -> one stderr line and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args)
    except WorkbookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2) if args.json and not isinstance(result, JsonLines) else result)
    return 0
