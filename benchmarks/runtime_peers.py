"""Our backbone at each α × ρ and torchvision's mobile peers, side by side in every CPU runtime.

Runtimes: PyTorch eager (NCHW), eager channels_last, ONNX Runtime fp32 and ONNX Runtime int8 (static
QDQ, per-channel). Batch 1 and batch 8 latency (median, p95) and throughput, plus the machine's
measured fp32 GEMM peak so every result also reads as a fraction of what the CPU can do.

Speed does not depend on the weights, so every model is randomly initialised (no downloads); the int8
models are calibrated on random inputs for the same reason (accuracy: see ``mnet export --int8``).
Runtimes are interleaved in short blocks (with a pause between blocks so one runtime's spinning
threads do not slow the next), so a shared, noisy machine slows all of them alike and the ratios
within one run stay comparable.

    python benchmarks/runtime_peers.py                       # full grid (slow)
    python benchmarks/runtime_peers.py --alphas 1.0 0.5 --resolutions 224 --runs 10   # quick
"""
from __future__ import annotations

import argparse
import itertools
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from backbone import ALPHAS, RESOLUTIONS, count_cost, mobilenet_v1
from tasks.runtime import OnnxRuntime, Runtime, TorchRuntime, to_onnx_model
from tasks.runtime.quantize import quantize_onnx

RUNTIMES = ("eager", "channels_last", "ort_fp32", "ort_int8")


class SSDLiteHeads(nn.Module):
    """torchvision SSDLite's backbone + box/class heads on a tensor (raw outputs, no decode/NMS)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = model.backbone, model.head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(list(self.backbone(x).values()))
        return out["bbox_regression"], out["cls_logits"]


def _peer(name: str) -> Callable[[], nn.Module]:
    import torchvision.models as tvm
    from torchvision.models import detection

    if name == "ssdlite320_mobilenet_v3_large":
        return lambda: SSDLiteHeads(detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None))
    return lambda: getattr(tvm, name)(weights=None)


#: peer name → (builder, input resolution)
PEERS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "mobilenet_v2": (_peer("mobilenet_v2"), 224),
    "mobilenet_v3_large": (_peer("mobilenet_v3_large"), 224),
    "mobilenet_v3_small": (_peer("mobilenet_v3_small"), 224),
    "ssdlite320_mobilenet_v3_large": (_peer("ssdlite320_mobilenet_v3_large"), 320),
}


@dataclass
class Result:
    model: str
    resolution: int
    mult_adds: int
    runtime: str
    batch: int
    p50_ms: float
    p95_ms: float

    @property
    def images_per_s(self) -> float:
        return self.batch * 1e3 / self.p50_ms

    def gflops(self) -> float:
        return 2 * self.mult_adds * self.batch / (self.p50_ms * 1e-3) / 1e9


def gemm_peak_gflops(threads: int, n: int = 2048, runs: int = 10) -> float:
    """Best fp32 GFLOP/s of an n × n × n ``torch.mm`` on ``threads`` threads (the machine's practical peak)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def build_runtimes(model: nn.Module, res: int, threads: int, which: tuple[str, ...], tmp: Path) -> dict[str, Runtime]:
    model = model.eval()
    out: dict[str, Runtime] = {}
    if "eager" in which:
        out["eager"] = TorchRuntime(model, threads=threads)
    if "channels_last" in which:
        import copy

        out["channels_last"] = TorchRuntime(copy.deepcopy(model), threads=threads, channels_last=True)
    if "ort_fp32" in which or "ort_int8" in which:
        fp32 = to_onnx_model(model, torch.zeros(1, 3, res, res)).SerializeToString()
        if "ort_fp32" in which:
            out["ort_fp32"] = OnnxRuntime(fp32, threads=threads)
        if "ort_int8" in which:
            rng = np.random.default_rng(0)
            cal = [rng.standard_normal((4, 3, res, res), dtype=np.float32) for _ in range(2)]
            path = tmp / "int8.onnx"
            quantize_onnx(fp32, path, cal)
            out["ort_int8"] = OnnxRuntime(path, threads=threads)
    return out


def time_interleaved(runtimes: dict[str, Runtime], x: np.ndarray, *, runs: int, warmup: int, block: int,
                     pause: float = 0.02) -> dict[str, list[float]]:
    """Round-robin blocks of ``block`` timed runs per runtime until each has ``runs`` timings (ms)."""
    for rt in runtimes.values():
        for _ in range(warmup):
            rt.run(x)
    times: dict[str, list[float]] = {k: [] for k in runtimes}
    while any(len(v) < runs for v in times.values()):
        for name, rt in runtimes.items():
            n = min(block, runs - len(times[name]))
            if n <= 0:
                continue
            time.sleep(pause)  # let the previous runtime's worker threads go idle
            rt.run(x)
            for _ in range(n):
                t0 = time.perf_counter()
                rt.run(x)
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def bench_model(name: str, model: nn.Module, res: int, args: argparse.Namespace, tmp: Path) -> list[Result]:
    mult_adds = count_cost(model.eval(), res).mult_adds
    runtimes = build_runtimes(model, res, args.threads, tuple(args.runtimes), tmp)
    results = []
    for batch in args.batches:
        x = np.random.default_rng(1).standard_normal((batch, 3, res, res), dtype=np.float32)
        times = time_interleaved(runtimes, x, runs=args.runs, warmup=args.warmup, block=args.block)
        for rt, t in times.items():
            results.append(Result(name, res, mult_adds, rt, batch, float(np.median(t)), float(np.percentile(t, 95))))
    return results


def markdown(results: list[Result], args: argparse.Namespace, peak: float, header: str) -> str:
    lines = [header, "",
             "| model | ρ | Mult-Adds (M) | runtime | batch | p50 (ms) | p95 (ms) | images/s | GFLOP/s | % of peak | × eager |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    eager = {(r.model, r.batch): r.p50_ms for r in results if r.runtime == "eager"}
    for r in results:
        base = eager.get((r.model, r.batch))
        lines.append(f"| {r.model} | {r.resolution} | {r.mult_adds / 1e6:.0f} | {r.runtime} | {r.batch} | "
                     f"{r.p50_ms:.2f} | {r.p95_ms:.2f} | {r.images_per_s:.0f} | {r.gflops():.1f} | "
                     f"{100 * r.gflops() / peak:.0f} % | {base / r.p50_ms if base else float('nan'):.2f} |")
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path, peak: float, threads: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({r.batch for r in results})
    fig, axes = plt.subplots(1, len(batches), figsize=(7 * len(batches), 5.5), squeeze=False)
    colours = dict(zip(RUNTIMES, ("tab:red", "tab:orange", "tab:blue", "tab:green")))
    for ax, batch in zip(axes[0], batches):
        for rt in RUNTIMES:
            ours = sorted((r for r in results if r.runtime == rt and r.batch == batch and r.model.startswith("mobilenet_v1")),
                          key=lambda r: r.mult_adds)
            peers = [r for r in results if r.runtime == rt and r.batch == batch and not r.model.startswith("mobilenet_v1")]
            if ours:
                ax.plot([r.mult_adds / 1e6 for r in ours], [r.p50_ms for r in ours], "o-", color=colours[rt],
                        label=f"MobileNetV1 α×ρ, {rt}", alpha=0.8)
            if peers:
                ax.scatter([r.mult_adds / 1e6 for r in peers], [r.p50_ms for r in peers], marker="s",
                           color=colours[rt], edgecolor="black", label=f"peers, {rt}")
                for r in peers:
                    ax.annotate(r.model.replace("mobilenet_", "mnv").replace("_large", "L").replace("_small", "S"),
                                (r.mult_adds / 1e6, r.p50_ms), fontsize=6, xytext=(3, -8), textcoords="offset points")
        ma = np.logspace(np.log10(5), np.log10(1500), 50)
        ax.plot(ma, 2 * ma * 1e6 * batch / (peak * 1e9) * 1e3, "k--", lw=1, label=f"fp32 GEMM peak ({peak:.0f} GFLOP/s)")
        ax.set(xscale="log", yscale="log", xlabel="Mult-Adds per image (millions)", ylabel="latency p50 (ms)",
               title=f"batch {batch}, {threads} CPU threads")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alphas", nargs="+", type=float, default=list(ALPHAS))
    p.add_argument("--resolutions", nargs="+", type=int, default=list(RESOLUTIONS))
    p.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS))
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=30, help="timed runs per model × runtime × batch")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--block", type=int, default=5, help="consecutive runs of one runtime before switching")
    p.add_argument("--note", default="", help="a line added under the table header (e.g. 'under load')")
    p.add_argument("--out", default="benchmarks/results/runtime_peers.md")
    p.add_argument("--plot", default="benchmarks/results/runtime_peers.png")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    peak = gemm_peak_gflops(args.threads)
    jobs: list[tuple[str, Callable[[], nn.Module], int]] = [
        (f"mobilenet_v1_{a:g}_{r}", (lambda a=a, r=r: mobilenet_v1(alpha=a, resolution=r)), r)
        for a, r in itertools.product(args.alphas, args.resolutions)
    ] + [(name, PEERS[name][0], PEERS[name][1]) for name in args.peers]
    results: list[Result] = []
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name, build, res in tqdm(jobs, desc="runtime_peers", unit="model", file=sys.stderr):
            results += bench_model(name, build(), res, args, Path(tmp))
    import onnxruntime

    header = (f"Latency by runtime: {args.threads} threads, median / p95 of {args.runs} runs (after {args.warmup} warm-up), "
              f"runtimes interleaved in blocks of {args.block}; random-init weights. fp32 GEMM peak (torch.mm 2048³): "
              f"**{peak:.0f} GFLOP/s**. torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
              f"{platform.machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{time.time() - t_start:.0f} s. `× eager` = eager p50 / this p50 (same model, batch, run).")
    if args.note:
        header += f"\n\n{args.note}"
    md = markdown(results, args, peak, header)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(md)
    if args.plot:
        plot(results, Path(args.plot), peak, args.threads)
    print(f"written to {out}" + (f" and {args.plot}" if args.plot else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
