"""Backbone latency for every α × ρ in PyTorch eager, NCHW and channels_last; writes a markdown table.

python benchmarks/backbone_latency.py [--threads 2] [--runs 30] [--out benchmarks/results/backbone_latency.md]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mnet.backbone import ALPHAS, RESOLUTIONS, count_cost, mobilenet_v1
from mnet.tasks.timing import cpu_line, measure_latency


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--out", default="benchmarks/results/backbone_latency.md")
    args = p.parse_args()

    lines = [
        f"Backbone (1000-class head) latency, batch 1, {args.threads} threads, median / p95 of {args.runs} runs "
        f"after {args.warmup} warm-up; torch {torch.__version__}, {platform.machine()}; CPU: {cpu_line()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| α | ρ | Mult-Adds (M) | params (M) | eager p50 / p95 (ms) | channels_last p50 / p95 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for alpha, res in tqdm(list(itertools.product(ALPHAS, RESOLUTIONS)), desc="benchmark"):
        model = mobilenet_v1(alpha=alpha, resolution=res).eval()
        cost = count_cost(model, res)
        x = torch.randn(1, 3, res, res)
        eager = measure_latency(model, x, warmup=args.warmup, runs=args.runs, threads=args.threads)
        model_cl = model.to(memory_format=torch.channels_last)
        cl = measure_latency(
            model_cl,
            x.contiguous(memory_format=torch.channels_last),
            warmup=args.warmup,
            runs=args.runs,
            threads=args.threads,
        )
        lines.append(
            f"| {alpha:g} | {res} | {cost.mult_adds / 1e6:.0f} | {cost.params / 1e6:.2f} | "
            f"{eager.p50_ms:.2f} / {eager.p95_ms:.2f} | {cl.p50_ms:.2f} / {cl.p95_ms:.2f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
