"""``mnet predict``: run a task on image files (decode → preprocess → model → postprocess)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from mnet.tasks.runtime import RUNTIME_CHOICES

    p = sub.add_parser("predict", help="run a task on images and print its results", description=__doc__)
    p.add_argument("task", nargs="?", help="task name (optional when --weights names one)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--weights", metavar="W", help="weights name, .safetensors, or an exported .onnx / .pt file")
    p.add_argument("--runtime", choices=RUNTIME_CHOICES, default="auto", help="default: the fastest available")
    p.add_argument("--threads", type=int, help="CPU threads (default: the runtime's default)")
    p.add_argument("--top-k", type=int, default=5, help="classes shown per image (default: %(default)s)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--timing", action="store_true", help="print per-stage median times to stderr")
    p.set_defaults(func=run)


def _text(result: dict) -> str:
    lines = [result["image"]]
    for item in result.get("top_k", []) + result.get("attributes", []):  # classes / multi-label attributes
        lines.append(f"  {item['prob']:7.2%}  {item['label']}")
    for det in result.get("detections", []):
        lines.append(f"  {det['score']:7.2%}  {det['label']:<16} box {[round(v) for v in det['box']]}")
    extra = {k: v for k, v in result.items() if k not in ("image", "top_k", "attributes", "detections")}
    if extra:
        lines.append("  " + json.dumps(extra))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mnet.tasks import TASKS
    from mnet.tasks.runtime.predict import build_predictor, expand_images

    if args.task and args.task not in TASKS:  # `mnet predict IMAGE --weights W`: no task given
        args.images, args.task = [args.task, *args.images], None
    predictor = build_predictor(args.task, args.weights, runtime=args.runtime, threads=args.threads)
    results = predictor.predict_files(expand_images(args.images), top_k=args.top_k)
    if args.format == "json":
        print(json.dumps(results, indent=2))
    else:
        print("\n".join(map(_text, results)))
    if args.timing:
        s = predictor.timing_summary()
        print(
            f"{predictor.runtime.describe()}: "
            + ", ".join(f"{k} {v:.2f}" if k.endswith("_ms") else f"{k} {v:+.1%}" for k, v in s.items()),
            file=sys.stderr,
        )
    return 0
