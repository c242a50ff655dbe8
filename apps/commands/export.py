"""``mnet export``: write a task model as ONNX (optionally int8) or TorchScript, checked against PyTorch."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from mnet.tasks.runtime.deploy import FORMATS
    from mnet.tasks.runtime.quantize import CALIBRATION_METHODS

    p = sub.add_parser(
        "export",
        help="export a model to ONNX / TorchScript (optionally int8), checked on real images",
        description=__doc__,
    )
    p.add_argument(
        "--weights", required=True, metavar="W", help="weights name (see `mnet weights list`) or .safetensors file"
    )
    p.add_argument("--format", choices=FORMATS, default="onnx")
    p.add_argument("--int8", action="store_true", help="static int8 quantization (ONNX Runtime QDQ, per-channel)")
    p.add_argument(
        "--with-postprocess",
        action="store_true",
        help="put the task's postprocessing in the graph (detection: decode + NMS, batch 1)",
    )
    p.add_argument("--task", help="expected task (default: the weights' own)")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.onnx, .pt)")
    p.add_argument(
        "--check-images",
        nargs="+",
        metavar="PATH",
        help="real images (files or folders) to compare against PyTorch (default: the task's, e.g. "
        "shared/data/samples; detection: 8 of shared/data/coco/val2017)",
    )
    p.add_argument(
        "--calibration-images",
        nargs="+",
        metavar="PATH",
        help="int8 calibration photos (default: the task's, e.g. shared/data/imagenet/val; "
        "detection: shared/data/coco/train2017)",
    )
    p.add_argument("--calibration-count", type=int, default=200, help="calibration photos used (default: %(default)s)")
    p.add_argument("--calibration-method", choices=CALIBRATION_METHODS, default="minmax")
    p.add_argument(
        "--accuracy-data",
        metavar="DIR",
        help="int8: labelled photos to measure the accuracy change on, held out from calibration (default: the "
        "task's, e.g. shared/data/imagenet; detection: shared/data/coco, split val2017)",
    )
    p.add_argument(
        "--accuracy-count",
        type=int,
        default=1000,
        help="int8: held-out photos measured, at most (default: %(default)s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnet.tasks.runtime.deploy import export_weights

    report = export_weights(
        args.weights,
        args.format,
        args.out,
        task=args.task,
        int8=args.int8,
        check_images=args.check_images,
        calibration_images=args.calibration_images,
        calibration_count=args.calibration_count,
        calibration_method=args.calibration_method,
        with_postprocess=args.with_postprocess,
        progress=sys.stderr.isatty(),
        accuracy_data=args.accuracy_data,
        accuracy_count=args.accuracy_count,
    )
    print(report.summary())
    return 0
