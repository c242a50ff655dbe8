"""The results of ``benchmarks/runtime_peers.py``: one :class:`Cell` per model × runtime × batch, the
markdown report and the latency plot."""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.peaks import Peak, best, cpu_description
from mnet.tasks.timing import INT8_DOT_FLAGS

#: runtime key → table label, in table order
LABELS = {"eager": "eager", "channels_last": "channels_last", "ort_fp32": "ORT fp32", "ort_int8": "ORT int8"}
RUNTIMES = tuple(LABELS)


@dataclass
class Cell:
    """One model × runtime × batch: timings, or the reason it could not be produced."""

    model: str
    resolution: int
    mult_adds: int
    runtime: str
    batch: int
    ours: bool = False
    detection: bool = False
    times_ms: list[float] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.times_ms)

    @property
    def p50_ms(self) -> float:
        return float(np.median(self.times_ms))

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.times_ms, 95))

    @property
    def images_per_s(self) -> float:
        return self.batch * 1e3 / self.p50_ms

    @property
    def gops(self) -> float:
        """GFLOP/s (GOP/s for int8) at the median, 2 operations per multiply-add."""
        return 2 * self.mult_adds * self.batch / (self.p50_ms * 1e-3) / 1e9


def peak_for(runtime: str, peaks: list[Peak]) -> Peak:
    """The peak a runtime's GFLOP/s is read against: int8 → ONNX Runtime's int8 peak, else fp32's."""
    return best(peaks, "int8" if runtime == "ort_int8" else "fp32")


def _fmt(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def title_lines(title: str, args: argparse.Namespace, quick_scope: str) -> list[str]:
    """The report's title, the quick-run banner (``args.quick``: ``quick_scope`` says what it ran) and ``args.note``."""
    lines = [title + (" — QUICK SMOKE RUN" if args.quick else ""), ""]
    if args.quick:
        lines += [
            f"**Quick smoke run (`--quick`)**: {quick_scope}. It shows the script works; it is not the benchmark "
            "(the full run is the command without `--quick`).",
            "",
        ]
    return lines + ([args.note, ""] if args.note else [])


def _header(peaks: list[Peak], args: argparse.Namespace, wall_s: float) -> list[str]:
    import onnxruntime
    import torch

    cpu, flags = cpu_description()
    dot = [f for f in flags if f in INT8_DOT_FLAGS]
    lines = title_lines(
        "# Runtimes vs peers: MobileNetV1 α × ρ and torchvision's mobile models on the CPU",
        args,
        "one α × ρ, one peer, a few runs per cell, small peak shapes",
    )
    lines += [
        f"- Machine: {cpu}, {platform.machine()}; CPU flags: {' '.join(flags) or 'unknown'}"
        f" — {'int8 dot product: ' + ', '.join(dot) if dot else '**no AVX-512, no VNNI/AMX**: int8 GEMMs use AVX2 vpmaddubsw'}.",
        f"- {args.threads} threads; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; wall time {wall_s / 60:.1f} min; "
        f"`{args.command}`.",
        f"- Per cell: median / p95 of {args.min_runs}–{args.max_runs} timed runs (as many as fit in ~{args.cell_seconds:g} s), "
        f"after {args.warmup} warm-up; runtimes take turns in blocks of {args.block}. Random-init weights; int8 = static "
        "QDQ per-channel (`tasks/runtime/quantize.py`) calibrated on 2 random batches of 4 (speed does not depend on "
        "the weights; accuracy: docs/deploy.md). Detection models are raw heads (box codes + class logits).",
        f"- GFLOP/s = 2 × Mult-Adds × batch / p50. `% of peak`: fp32 runtimes against the best fp32 GEMM peak "
        f"({best(peaks, 'fp32').gops:.0f} GFLOP/s), int8 against ONNX Runtime's best int8 peak "
        f"({best(peaks, 'int8').gops:.0f} GOP/s). `× eager` = eager p50 / this p50 (same model, batch, run).",
        "",
        "## Measured GEMM peaks",
        "",
        "| kernel | precision | GFLOP/s (int8: GOP/s) |",
        "|---|---|---|",
    ]
    lines += [f"| {p.name} | {p.dtype} | {p.gops:.1f} |" for p in peaks]
    by_shape: dict[str, dict[str, float]] = {}
    for p in peaks:
        if p.name.startswith("ORT"):
            by_shape.setdefault(p.name.split(", ", 1)[1], {})[p.dtype] = p.gops
    ratios = [
        f"{shape}: **{v['int8'] / v['fp32']:.2f}×**" for shape, v in by_shape.items() if {"int8", "fp32"} <= v.keys()
    ]
    lines += [
        "",
        f"Best-case int8 / fp32 speed-up this CPU gives in ONNX Runtime (same shape): {'; '.join(ratios)}.",
        "",
    ]
    return lines


def _compact(cells: list[Cell], peaks: list[Peak]) -> list[str]:
    """Batch 1: our 1.0-224 (else the largest α × ρ run) and every other model, one row each."""
    at = {(c.model, c.runtime): c for c in cells if c.batch == 1}
    if not at:
        return []
    grid = [c for c in cells if c.ours and not c.detection and c.batch == 1]
    models = list(dict.fromkeys(c.model for c in cells if c.batch == 1 and not (c.ours and not c.detection)))
    if grid:
        top = (
            "mobilenet_v1_1.0_224"
            if any(c.model == "mobilenet_v1_1.0_224" for c in grid)
            else max(grid, key=lambda c: c.mult_adds).model
        )
        models.insert(0, top)
    lines = [
        "## Batch 1 at a glance",
        "",
        "| model | Mult-Adds (M) | "
        + " | ".join(f"{LABELS[r]} p50 (ms)" for r in RUNTIMES)
        + " | ORT fp32 vs eager | int8 vs fp32 | ORT fp32 GFLOP/s (% of fp32 peak) |",
        "|---|---|" + "---|" * len(RUNTIMES) + "---|---|---|",
    ]
    for m in models:
        row = {r: at.get((m, r)) for r in RUNTIMES}
        first = next(c for c in row.values() if c is not None)
        name = f"{m} (ours)" if first.ours else m
        if first.detection:
            name += f", {first.resolution}², raw heads"
        vals = [_fmt(c.p50_ms) if c and c.ok else ("n/a" if c else "–") for c in row.values()]
        ok = {r: c for r, c in row.items() if c and c.ok}
        vs_eager = f"{ok['eager'].p50_ms / ok['ort_fp32'].p50_ms:.1f}×" if {"eager", "ort_fp32"} <= ok.keys() else "–"
        int8 = f"{ok['ort_fp32'].p50_ms / ok['ort_int8'].p50_ms:.2f}×" if {"ort_fp32", "ort_int8"} <= ok.keys() else "–"
        fp32 = ok.get("ort_fp32")
        frac = f"{fp32.gops:.0f} ({100 * fp32.gops / best(peaks, 'fp32').gops:.0f} %)" if fp32 else "–"
        lines.append(f"| {name} | {first.mult_adds / 1e6:.0f} | {' | '.join(vals)} | {vs_eager} | {int8} | {frac} |")
    return lines + [""]


def _full(cells: list[Cell], peaks: list[Peak]) -> list[str]:
    lines = [
        "## All cells",
        "",
        "| model | ρ | Mult-Adds (M) | runtime | batch | runs | p50 (ms) | p95 (ms) | images/s | GFLOP/s | % of peak | × eager |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    eager = {(c.model, c.batch): c.p50_ms for c in cells if c.runtime == "eager" and c.ok}
    for c in cells:
        head = f"| {c.model} | {c.resolution} | {c.mult_adds / 1e6:.0f} | {LABELS[c.runtime]} | {c.batch} |"
        if not c.ok:
            lines.append(f"{head} – | n/a: {c.error} | | | | | |")
            continue
        base = eager.get((c.model, c.batch))
        lines.append(
            f"{head} {len(c.times_ms)} | {_fmt(c.p50_ms)} | {_fmt(c.p95_ms)} | {c.images_per_s:.0f} | "
            f"{c.gops:.1f} | {100 * c.gops / peak_for(c.runtime, peaks).gops:.0f} % | "
            f"{f'{base / c.p50_ms:.2f}' if base else '–'} |"
        )
    return lines + [""]


def markdown(
    cells: list[Cell], peaks: list[Peak], notes: dict[str, dict[str, str]], args: argparse.Namespace, *, wall_s: float
) -> str:
    """The whole report: header and peaks, the batch-1 summary, every cell, int8 graphs, missing cells."""
    lines = _header(peaks, args, wall_s) + _compact(cells, peaks) + _full(cells, peaks)
    graphs = [f"- {m}: {n['int8 graph']}" for m, n in notes.items() if "int8 graph" in n]
    if graphs:
        lines += ["## What ONNX Runtime runs in int8 (after fusing the QDQ graph)", ""] + graphs + [""]
    missing = [f"- {c.model}, {LABELS[c.runtime]}, batch {c.batch}: {c.error}" for c in cells if not c.ok]
    lines += ["## Cells not produced", ""] + (missing or ["None: every cell was produced."]) + [""]
    return "\n".join(lines)


def plot(cells: list[Cell], peaks: list[Peak], path: Path, threads: int) -> None:
    """Latency p50 against Mult-Adds (log–log), one panel per batch, one colour per runtime, peak lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({c.batch for c in cells})
    fig, axes = plt.subplots(1, len(batches), figsize=(7.5 * len(batches), 6), squeeze=False)
    colours = dict(zip(RUNTIMES, ("tab:red", "tab:orange", "tab:blue", "tab:green")))
    for ax, batch in zip(axes[0], batches):
        for rt in RUNTIMES:
            mine = [c for c in cells if c.runtime == rt and c.batch == batch and c.ok]
            grid = sorted((c for c in mine if c.ours and not c.detection), key=lambda c: c.mult_adds)
            others = [c for c in mine if not (c.ours and not c.detection)]
            if grid:
                ax.plot(
                    [c.mult_adds / 1e6 for c in grid],
                    [c.p50_ms for c in grid],
                    "o-",
                    color=colours[rt],
                    alpha=0.8,
                    ms=4,
                    label=f"MobileNetV1 α × ρ, {LABELS[rt]}",
                )
            for c in others:
                ax.scatter(
                    c.mult_adds / 1e6,
                    c.p50_ms,
                    marker="^" if c.detection else "s",
                    color=colours[rt],
                    edgecolor="black",
                    zorder=3,
                )
                short = (
                    c.model.replace("mobilenet_", "mnv")
                    .replace("_large", "L")
                    .replace("_small", "S")
                    .replace("ssdlite320_", "ssdlite ")
                )
                ax.annotate(
                    short, (c.mult_adds / 1e6, c.p50_ms), fontsize=6, xytext=(3, -8), textcoords="offset points"
                )
        xs = [c.mult_adds / 1e6 for c in cells]
        if xs:
            ma = np.logspace(np.log10(min(xs) * 0.8), np.log10(max(xs) * 1.2), 50)
            for dtype, style in (("fp32", "k--"), ("int8", "k:")):
                p = best(peaks, dtype)
                ax.plot(
                    ma,
                    2 * ma * 1e6 * batch / (p.gops * 1e9) * 1e3,
                    style,
                    lw=1,
                    label=f"{dtype} GEMM peak ({p.gops:.0f} G{'FLOP' if dtype == 'fp32' else 'OP'}/s)",
                )
        ax.scatter([], [], marker="s", color="grey", edgecolor="black", label="torchvision peers")
        ax.scatter([], [], marker="^", color="grey", edgecolor="black", label="detection (raw heads)")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="Mult-Adds per image (millions)",
            ylabel="latency p50 (ms)" + (f", whole batch of {batch}" if batch > 1 else ""),
            title=f"batch {batch}, {threads} CPU threads",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
