"""What ``mnet predict`` adds on top of the bare session: decode + preprocess + postprocess per photo.

For each photo (interleaved, so machine load hits both alike): one end-to-end prediction from the file
(``Predictor.predict_file``: decode, the weights' recipe, the session, decoding to a ``Result``) and one
bare session call on the already-preprocessed input of the same photo. Reports the medians, the overhead
ratio, and the median of the non-model stages over the bare session (which does not depend on the jitter
of two model timings). The session is the one ``mnet predict`` uses (``--runtime auto``: the per-machine
choice), so the ratio is the one a user sees; the CPU line is written with the result.

    python -m benchmarks.predict_overhead --task detection --images ../shared/data/coco/val2017 --limit 200
    python -m benchmarks.predict_overhead --task classification --images ../shared/data/imagenet/val
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mnet.tasks.data.images import load_rgb
from mnet.tasks.inference import STAGES, Predictor, expand_images
from mnet.tasks.runtime.load import load_predictor
from mnet.tasks.timing import cpu_line

RESULTS = Path(__file__).resolve().parent / "results" / "predict_overhead.md"


def measure(predictor: Predictor, files: list[Path], *, warmup: int = 5) -> dict[str, float]:
    inputs = [predictor.preprocess.to_array(load_rgb(f, draft=predictor.draft_size()))[None] for f in files]
    for f, x in zip(files[:warmup], inputs[:warmup]):
        predictor.predict_file(f)
        predictor.session(x)
    predictor.timings = {s: [] for s in STAGES}
    e2e, bare = [], []
    for f, x in tqdm(list(zip(files, inputs)), desc="predict overhead", unit="img"):
        t0 = time.perf_counter()
        predictor.predict_file(f)
        t1 = time.perf_counter()
        predictor.session(x)
        t2 = time.perf_counter()
        e2e.append(t1 - t0)
        bare.append(t2 - t1)
    e2e_ms, bare_ms = float(np.median(e2e)) * 1e3, float(np.median(bare)) * 1e3
    extra = [sum(predictor.timings[s][i] for s in ("decode", "preprocess", "postprocess")) for i in range(len(files))]
    return {
        "images": len(files),
        "end_to_end_ms": e2e_ms,
        "bare_session_ms": bare_ms,
        "overhead": e2e_ms / bare_ms - 1.0,
        "non_model_over_bare": float(np.median(extra)) * 1e3 / bare_ms,
        **{k: v for k, v in predictor.timing_summary().items() if k.endswith("_ms")},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="classification")
    p.add_argument("--weights", help="default: the task's pretrained weights")
    p.add_argument("--images", nargs="+", required=True, help="image files or folders")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnxruntime"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS, help="append the result as a markdown row to this file")
    args = p.parse_args(argv)

    predictor = load_predictor(args.task, args.weights, runtime=args.runtime, threads=args.threads)
    r = measure(predictor, expand_images(args.images, limit=args.limit))
    print(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    if not args.out.exists() or "| task |" not in args.out.read_text():
        args.out.write_text(
            "# `mnet predict` overhead over the bare session (median per photo)\n\n"
            "| task | weights | runtime | CPU | photos | session ms | end to end ms | decode | preprocess "
            "| postprocess | overhead | non-model / session |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
    with args.out.open("a") as f:
        f.write(
            f"| {args.task} | {predictor.model} | {predictor.runtime} | {cpu_line()} | {r['images']} | "
            f"{r['bare_session_ms']:.2f} | {r['end_to_end_ms']:.2f} | {r['decode_ms']:.2f} | {r['preprocess_ms']:.2f} "
            f"| {r['postprocess_ms']:.2f} | {r['overhead']:+.1%} | {r['non_model_over_bare']:.1%} |\n"
        )
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
