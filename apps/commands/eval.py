"""``mnet eval TASK``: evaluate pretrained weights with the task's standard metric on a dataset in its
official layout. Task-agnostic: ``task.load_pretrained`` resolves the weights and builds the model, then it calls
``get_task(TASK).evaluate(model, data, split=..., preprocess=<the weights' input recipe>, ...)``."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate weights on a dataset (top-1/top-5, mAP, ...)", description=__doc__)
    p.add_argument("task", help="task name (see `mnet compare --help` for the registered tasks)")
    p.add_argument(
        "--weights",
        required=True,
        metavar="NAME_OR_FILE",
        help="registry entry (fetched and converted on first use), a suite .safetensors file, "
        "or a file written by `mnet export` (.onnx, including int8)",
    )
    p.add_argument("--data", required=True, metavar="DIR", help="dataset root in the task's official layout")
    p.add_argument("--split", help="dataset split (task default when omitted, e.g. val)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0, help="data-loading worker processes")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples (quick checks)")
    p.add_argument("--source", help="where to fetch the weights from if not cached (see `mnet weights fetch`)")
    p.add_argument(
        "--resolution",
        type=int,
        metavar="R",
        help="evaluate at input resolution R instead of the weights' own (the paper's ρ knob)",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnxruntime"),
        default="auto",
        help="inference runtime (default: auto, the fastest available)",
    )
    p.add_argument("--threads", type=int, help="CPU threads for the runtime")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mnet.apps.cli import UserError
    from mnet.tasks import get_task
    from mnet.tasks.runtime import task_runtime
    from mnet.tasks.runtime.predict import load_for_inference

    task = get_task(args.task)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.resolution is not None:
        from mnet.backbone.config import validate_resolution

        validate_resolution(args.resolution)
    if Path(args.weights).suffix in (".onnx", ".pt", ".ts"):  # an exported model: its own runtime and recipe
        m = load_for_inference(args.weights, task=task.name, runtime=args.runtime, threads=args.threads)
        model, preprocess, meta, name = m.model, m.preprocess, {}, args.weights
    else:
        torch_model, w = task.load_pretrained(args.weights, source=args.source)
        preprocess = w.preprocess if args.resolution is None else replace(w.preprocess, resolution=args.resolution)
        model = task_runtime(task, torch_model, args.runtime, resolution=preprocess.resolution, threads=args.threads)
        meta, name = w.meta, w.meta.get("entry", str(w.path))
    extra = {"limit": args.limit} if args.limit is not None else {}
    result = task.evaluate(
        model,
        args.data,
        split=args.split,
        batch_size=args.batch_size,
        num_workers=args.workers,
        progress=True,
        preprocess=preprocess,
        weights_meta={"name": name, **meta},
        **extra,
    )
    report = {
        "task": task.name,
        "weights": name,
        "runtime": model.describe() if hasattr(model, "describe") else "torch",
        "data": str(args.data),
        **result,
    }
    if args.format == "json":
        print(json.dumps(report, indent=2, default=str))
    else:
        for k, v in report.items():
            print(f"{k:<16} {v:.2f}" if isinstance(v, float) else f"{k:<16} {v}")
    return 0
