"""``mnet predict [TASK] IMAGE...``: run a task on photos and print what it finds.

Without ``--weights`` the task's pretrained weights are used (fetched, converted and cached on first
use; the command says which). ``face_attributes`` finds every face and gives each its box, age, gender
and named CelebA attributes. A file that cannot be read is reported and skipped; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mnet.apps.options import add_runtime, add_source, add_weights, float_range, int_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="run a task on photos (pretrained by default)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", nargs="?", help="task (optional with --weights): classification, dogs, detection, ...")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    add_weights(p)
    p.add_argument("--random-weights", action="store_true", help="untrained weights (speed checks only)")
    add_runtime(p)
    add_source(p)
    p.add_argument("--top-k", type=int_range(1, 1000), default=5, help="classes/attributes per image or face")
    p.add_argument(
        "--score", type=float_range(0.0, 1.0), default=0.0, help="hide boxes/faces scoring below this (default: none)"
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--timing", action="store_true", help="print per-stage median times and the runtime to stderr")
    p.set_defaults(func=run)


def add_face_options(p: argparse.ArgumentParser) -> None:
    from mnet.tasks.face_attributes.pipeline import FACE_DETECTORS

    p.add_argument("--detector", choices=sorted(FACE_DETECTORS), default="ssd", help="face detector")
    p.add_argument("--age-gender", metavar="W", help="age/gender weights (default: faceres-deep)")
    p.add_argument("--no-attributes", action="store_true", help="age and gender only")


def format_text(result: dict) -> str:
    lines = [f"{result.get('image', '')}  ({result['size'][0]}×{result['size'][1]}, {result['model']})"]
    for c in result.get("classes", []):
        lines.append(f"  {c['score']:7.2%}  {c['label']}")
    for b in result.get("boxes", []):
        lines.append(f"  {b['score']:7.2%}  {b['label']:<16} box {[round(v) for v in b['box']]}")
    if "faces" in result:
        lines.append(f"  {len(result['faces'])} face(s)")
    for f in result.get("faces", []):
        who = f"age {f['age']:.0f}  {f['gender']} ({f['gender_score']:.2f})" if "age" in f else ""
        attrs = ", ".join(f"{a['label']} {a['score']:.2f}" for a in f["attributes"])
        lines.append(f"  face {f['score']:.2f}  box {[round(v) for v in f['box']]}  {who}  {attrs}".rstrip())
    return "\n".join(lines)


def resolve_task(task: str | None, images: list[str], weights: str | None) -> tuple[str | None, list[str]]:
    """``mnet predict IMAGE... --weights W`` has no task: the first positional is then an image. A
    misspelled task is reported as such, not as a missing file."""
    from pathlib import Path

    from mnet.tasks.registry import TASK_SPECS, task_spec

    if task is None or task in TASK_SPECS:
        return task, images
    if Path(task).exists() or (weights and "." in task):
        return None, [task, *images]
    task_spec(task)  # raises "unknown task ... (did you mean ...)"
    return task, images


def check_photos(files: Sequence, n: int = 2) -> list:
    """The first ``n`` readable photos among ``files``: what a new export is checked on (the user's own)."""
    from mnet.tasks.data.images import load_rgb

    photos = []
    for f in files:
        try:
            photos.append(load_rgb(f, draft=(640, 640)))
        except (ValueError, OSError):
            continue
        if len(photos) == n:
            break
    return photos


def predict_paths(predictor, files: Sequence, *, args: argparse.Namespace) -> int:
    """Predict each file (bad files reported and skipped), print the results; the exit code."""
    from mnet.tasks.inference import predict_files

    results, errors = predict_files(lambda f: predictor.predict_file(f, score_threshold=args.score), files)
    dicts = [r.to_dict() for r in results]
    if args.format == "json":
        print(json.dumps(dicts, indent=2))
    else:
        print("\n".join(map(format_text, dicts)))
    for path, msg in errors:
        print(f"mnet {args.command}: error: {msg if path in msg else f'{path}: {msg}'}", file=sys.stderr)
    if args.timing:
        s = predictor.timing_summary()
        print(
            f"{predictor.runtime}: "
            + ", ".join(f"{k} {v:.2f}" if k.endswith("_ms") else f"{k} {v:+.1%}" for k, v in s.items()),
            file=sys.stderr,
        )
        reason = getattr(predictor, "runtime_reason", "")
        if reason:
            print(f"why this runtime: {reason}", file=sys.stderr)
    if errors:
        print(f"mnet {args.command}: {len(errors)} of {len(files)} file(s) failed", file=sys.stderr)
    return 1 if errors else 0


def run(args: argparse.Namespace) -> int:
    from mnet.tasks.face_attributes.pipeline import ATTRIBUTE_WEIGHTS
    from mnet.tasks.inference import expand_images
    from mnet.tasks.runtime.load import FACE_TASKS, load_face_pipeline, load_predictor

    task, images = resolve_task(args.task, args.images, args.weights)
    files = expand_images(images)
    common = dict(runtime=args.runtime, threads=args.threads, check_photos=check_photos(files))
    if task in FACE_TASKS and not args.random_weights:
        predictor = load_face_pipeline(attributes=args.weights or ATTRIBUTE_WEIGHTS, top_k=args.top_k, **common)
    else:
        predictor = load_predictor(task, args.weights, random_weights=args.random_weights, **common)
        predictor.top_k = args.top_k
    return predict_paths(predictor, files, args=args)
