"""``mnet export [TASK] --out FILE``: a task's whole inference network as one self-contained file.

The ONNX file holds the network *and* the task's decoding (softmax; sigmoids; SSD box decoding and NMS;
face priors and NMS) and carries the task, input recipe and labels in its metadata: any ONNX consumer
(Python, or a web page with onnxruntime-web) needs only resize + normalise before it and drawing after
it. Checked against PyTorch on real photos before it is kept; ``mnet predict FILE.onnx`` runs it.
"""

from __future__ import annotations

import argparse
import sys

from mnet.apps.options import add_source, add_weights, int_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a task's network + decoding to ONNX (optionally int8) or TorchScript, checked",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", nargs="?", help="task (default: the weights' own)")
    add_weights(p, what="weights to export")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", metavar="FILE", help="output file (.onnx, or .pt for TorchScript)")
    target.add_argument(
        "--cache",
        action="store_true",
        help="into the cache beside the model's own export (with --int8: its int8 sibling), where `mnet predict`, "
        "eval and the demo find it and the per-machine choice times it against fp32",
    )
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--int8", action="store_true", help="static int8 quantization of the convolutions (QDQ)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--check-images",
        nargs="+",
        metavar="PATH",
        help="real photos (files or folders) to check against PyTorch (default: the task's, under ../shared/data)",
    )
    p.add_argument(
        "--calibration-images", nargs="+", metavar="PATH", help="int8 calibration photos (default: the task's)"
    )
    p.add_argument("--calibration-count", type=int_range(1, 100_000), default=200, help="calibration photos used")
    p.add_argument("--calibration-method", choices=("minmax", "percentile", "entropy"), default="minmax")
    p.add_argument(
        "--accuracy-data",
        metavar="DIR",
        help="int8: labelled photos to measure the accuracy change on, held out from calibration (default: the "
        "task's, e.g. shared/data/imagenet; detection: shared/data/coco, split val2017)",
    )
    p.add_argument(
        "--accuracy-count", type=int_range(1, 100_000), default=1000, help="int8: held-out photos measured, at most"
    )
    add_source(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnet.tasks.registry import task_spec
    from mnet.tasks.runtime.deploy import export_weights

    if args.task is None and args.weights is None:
        raise ValueError("give a task (to export its pretrained weights), --weights W, or both")
    weights = args.weights or task_spec(args.task).default_weights
    report = export_weights(
        weights,
        args.format,
        None if args.cache else args.out,
        task=args.task,
        int8=args.int8,
        check_images=args.check_images,
        calibration_images=args.calibration_images,
        calibration_count=args.calibration_count,
        calibration_method=args.calibration_method,
        overwrite=args.overwrite,
        progress=sys.stderr.isatty(),
        accuracy_data=args.accuracy_data,
        accuracy_count=args.accuracy_count,
    )
    print(report.summary())
    return 0
