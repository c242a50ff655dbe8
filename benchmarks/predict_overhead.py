"""What ``mnet predict`` adds on top of the bare runtime: decode + preprocess + postprocess per image.

For each photo (interleaved, so machine load hits both alike): one end-to-end prediction from the file
(``Predictor.predict_files``) and one bare ``runtime.run`` on the already-preprocessed input of the same
photo. Reports the medians and the overhead ratio, plus the median of the non-model stages (decode +
preprocess + postprocess) over the bare session time: on a loaded machine the two model timings jitter
by more than the overhead itself, and this second ratio does not depend on that jitter.

    python benchmarks/predict_overhead.py --weights mobilenet_v1_1.0_224.tfslim_in1k \\
        --images ../shared/data/imagenet/val --limit 200 --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mnet.tasks.data.images import load_rgb
from mnet.tasks.runtime.predict import STAGES, Predictor, build_predictor, expand_images


def measure(predictor: Predictor, files: list[Path], *, warmup: int = 5) -> dict[str, float]:
    inputs = [
        predictor.task.preprocess(load_rgb(f, draft=predictor.draft_size()), predictor.preprocess)[None] for f in files
    ]
    for f, x in zip(files[:warmup], inputs[:warmup]):
        predictor.predict_files([f])
        predictor.runtime.run(x)
    predictor.timings = {s: [] for s in STAGES}
    e2e, bare = [], []
    for f, x in tqdm(list(zip(files, inputs)), desc="predict overhead", unit="img"):
        t0 = time.perf_counter()
        predictor.predict_files([f])
        t1 = time.perf_counter()
        predictor.runtime.run(x)
        t2 = time.perf_counter()
        e2e.append(t1 - t0)
        bare.append(t2 - t1)
    e2e_ms, bare_ms = float(np.median(e2e)) * 1e3, float(np.median(bare)) * 1e3
    stages = predictor.timing_summary()
    stage_extra = (
        float(
            np.median(
                [
                    d + p + q
                    for d, p, q in zip(
                        predictor.timings["decode"], predictor.timings["preprocess"], predictor.timings["postprocess"]
                    )
                ]
            )
        )
        * 1e3
    )
    return {
        "images": len(files),
        "end_to_end_ms": e2e_ms,
        "bare_session_ms": bare_ms,
        "overhead": e2e_ms / bare_ms - 1.0,
        "non_model_over_bare": stage_extra / bare_ms,
        **{k: v for k, v in stages.items() if k.endswith("_ms")},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="mobilenet_v1_1.0_224.tfslim_in1k")
    p.add_argument("--task")
    p.add_argument("--images", nargs="+", required=True, help="image files or folders")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--runtime", default="onnxruntime", choices=("torch", "onnxruntime"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="also append the result as a markdown line to this file")
    args = p.parse_args(argv)

    predictor = build_predictor(args.task, args.weights, runtime=args.runtime, threads=args.threads)
    r = measure(predictor, expand_images(args.images, limit=args.limit))
    line = (
        f"| {args.weights} | {predictor.runtime.describe()} | {r['images']} | {r['bare_session_ms']:.2f} | "
        f"{r['end_to_end_ms']:.2f} | {100 * r['overhead']:+.1f} % | {100 * r['non_model_over_bare']:+.1f} % | "
        f"{r['decode_ms']:.2f} / "
        f"{r['preprocess_ms']:.2f} / {r['model_ms']:.2f} / {r['postprocess_ms']:.2f} |"
    )
    header = (
        "| weights | runtime | images | bare session p50 (ms) | mnet predict p50 (ms) | overhead | "
        "non-model stages / bare session | decode / preprocess / model / postprocess p50 (ms) |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    print(header + "\n" + line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
