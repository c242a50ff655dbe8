"""``mnet eval TASK --data DIR``: the task's standard metric on a dataset in its official layout,
through the same inference path as ``mnet predict`` (top-1/top-5; COCO AP via pycocotools; per-attribute
AP and mean AP). Without ``--weights`` the task's pretrained weights are evaluated."""

from __future__ import annotations

import argparse
import json

from mnet.apps.options import MAX_RESOLUTION, add_runtime, add_source, add_weights, int_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate weights on a dataset (top-1/top-5, COCO AP, mean AP)", description=__doc__
    )
    p.add_argument("task", help="task name (classification, dogs, detection, face_attributes)")
    add_weights(p, what="weights to evaluate")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset root in the task's official layout")
    p.add_argument("--split", help="dataset split (default: the task's, e.g. val)")
    p.add_argument("--batch-size", type=int_range(1, 4096), default=32)
    p.add_argument("--workers", type=int_range(0, 64), default=0, help="data-loading worker processes")
    p.add_argument("--limit", type=int_range(1), help="evaluate only the first N samples (quick checks)")
    p.add_argument(
        "--resolution",
        type=int_range(32, MAX_RESOLUTION),
        metavar="R",
        help="evaluate at input resolution R instead of the weights' own (the paper's ρ knob)",
    )
    p.add_argument("--results-json", metavar="FILE", help="detection: also write the detections (COCO results format)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_runtime(p)
    add_source(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mnet.tasks import get_task
    from mnet.tasks.runtime.load import load_predictor

    task = get_task(args.task)
    if args.results_json and Path(args.results_json).exists():
        raise ValueError(f"{args.results_json} exists; choose another --results-json file")
    predictor = load_predictor(
        task.name, args.weights, runtime=args.runtime, threads=args.threads, resolution=args.resolution
    )
    extra = {"limit": args.limit} if args.limit is not None else {}
    if args.results_json:
        extra["results_json"] = args.results_json
    result = task.evaluate(
        predictor, args.data, split=args.split, batch_size=args.batch_size, num_workers=args.workers, **extra
    )
    report = {"task": task.name, "weights": predictor.model, "runtime": predictor.runtime, "data": str(args.data)}
    report.update(result)
    if args.format == "json":
        print(json.dumps(report, indent=2, default=str))
    else:
        for k, v in report.items():
            if k != "per_attribute":
                print(f"{k:<16} {v:.2f}" if isinstance(v, float) else f"{k:<16} {v}")
    return 0
