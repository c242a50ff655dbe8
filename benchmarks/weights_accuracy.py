"""Top-1 / top-5 of every registry entry whose original file is at hand, on an ImageNet-layout folder,
next to the original model's top-1 on the same photos and the published (full val set) top-1.

    PYTHONPATH=. python benchmarks/weights_accuracy.py --source ../shared/weights --data ../shared/data/imagenet \
        [--out benchmarks/results/weights_accuracy.md]

Entries already cached (``mnet weights fetch``) are used as they are; others are converted from a file
found under ``--source``; entries with neither are listed as not evaluated.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from mnet import weights
from mnet.tasks import get_task
from mnet.tasks.runtime.load import load_predictor

#: the originals' top-1 / top-5 on ../shared/data/imagenet (1,300 photos), from ../shared/golden/REFERENCE.md:
#: TensorFlow (TF-slim eval recipe) for the float graph, TFLite built-in kernels (PIL bilinear resize) for uint8
ORIGINAL_ON_SHARED: dict[str, tuple[float, float, str]] = {
    "mobilenet_v1_1.0_224.tfslim_in1k": (78.77, 94.08, "TensorFlow 2.21"),
    "mobilenet_v1_0.25_128.tflite_in1k_quant": (49.54, 75.62, "TFLite built-in kernels"),
    "mobilenet_v1_0.5_160.tflite_in1k_quant": (67.85, 88.77, "TFLite built-in kernels"),
    "mobilenet_v1_0.75_192.tflite_in1k_quant": (74.92, 92.77, "TFLite built-in kernels"),
}


def available(entry: weights.WeightsEntry, source: Path | None) -> bool:
    if weights.cached_path(entry).is_file():
        return True
    if source is None:
        return False
    try:
        weights.fetch_and_convert(entry.name, source=str(source), progress=False)
        return True
    except (FileNotFoundError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="ImageNet-layout folder (val/<wnid>/*.JPEG)")
    p.add_argument("--source", type=Path, help="folder holding original weight files (e.g. ../shared/weights)")
    p.add_argument("--entries", nargs="+", help="only these entries (default: all registered classification entries)")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--out", default="benchmarks/results/weights_accuracy.md")
    args = p.parse_args(argv)

    task = get_task("classification")
    entries = [weights.get_entry(n) for n in args.entries] if args.entries else weights.list_entries("classification")
    lines = [
        f"Top-1 / top-5 (%) of the converted weights on `{args.data}` with each entry's own preprocessing, "
        "against the original model on the same photos and the published top-1 (full 50,000-image val set). "
        f"torch {torch.__version__}, CPU.",
        "",
        "| entry | α | ρ | n | top-1 | top-5 | original on these photos (top-1 / top-5) | Δ top-1 | published top-1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    skipped = []
    for e in entries:
        if not available(e, args.source):
            skipped.append(e.name)
            continue
        print(f"evaluating {e.name}", file=sys.stderr)
        predictor = load_predictor("classification", e.name, notify=None)  # the one inference path (ONNX Runtime)
        r = task.evaluate(predictor, args.data, batch_size=args.batch_size)
        orig = ORIGINAL_ON_SHARED.get(e.name)
        ref = f"{orig[0]:.2f} / {orig[1]:.2f} ({orig[2]})" if orig else "-"
        delta = f"{r['top1'] - orig[0]:+.2f}" if orig else "-"
        lines.append(
            f"| `{e.name}` | {e.alpha} | {e.resolution} | {r['n']} | {r['top1']:.2f} | {r['top5']:.2f} | "
            f"{ref} | {delta} | {e.published.get('top1', '-')} |"
        )
    if skipped:
        lines += [
            "",
            f"Not evaluated (original not at hand; `mnet weights fetch NAME` with internet): "
            f"{', '.join(f'`{n}`' for n in skipped)}.",
        ]
    lines += [
        "",
        "Made by:",
        "",
        "```",
        "PYTHONPATH=. python benchmarks/weights_accuracy.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "```",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
