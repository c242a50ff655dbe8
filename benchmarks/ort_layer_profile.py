"""Where ONNX Runtime spends its time, layer by layer, in fp32 and int8 (ORT's own profiler).

For one MobileNetV1 α × ρ: export (BN folded, pads merged, as ``mnet export`` does), quantize to int8
QDQ (as ``mnet export --int8`` does; random calibration batches, since speed does not depend on the
weights), run each session with ORT's profiler on, and report per layer (stem, each depthwise and
pointwise conv, the classifier) the median kernel time, the Mult-Adds (paper convention), the rate in
GMAC/s and the int8 / fp32 speed-up. It shows which layers int8 speeds up on this CPU and how close
each fp32 layer runs to the machine's GEMM peak.

    python -m benchmarks.ort_layer_profile --alpha 1.0 --resolution 224 --threads 2 \\
        --out benchmarks/results/ort_layer_profile.md
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from benchmarks.peaks import cpu_description
from mnet.backbone import count_cost, mobilenet_v1
from mnet.tasks.runtime.export import to_onnx_model
from mnet.tasks.runtime.quantize import quantize_onnx

#: ORT node names carry the exporter's module path: "/layers.3/pw/...", "/head/fc/Gemm"
_LAYER = re.compile(r"layers\.(\d+)/(dw|pw)|layers\.(0)/|head/fc")


def layer_key(node_name: str) -> str | None:
    """Our module name (``layers.3.pw``, ``layers.0``, ``head.fc``) for an ORT node name, else None."""
    m = _LAYER.search(node_name)
    if m is None:
        return None
    if m.group(1):
        return f"layers.{m.group(1)}.{m.group(2)}"
    return "layers.0" if m.group(3) else "head.fc"


def profile(path: Path, x: np.ndarray, threads: int, runs: int) -> tuple[dict[str, float], float]:
    """Kernel milliseconds per layer (each node's median over the runs, summed over the layer's nodes)
    and the median session time."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.enable_profiling = True
    so.profile_file_prefix = str(path.with_suffix(""))
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(5):
        sess.run(None, feed)
    wall = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feed)
        wall.append(time.perf_counter() - t)
    events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[str, list[float]] = defaultdict(list)
    op_of: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[e["name"]].append(e["dur"] / 1e3)
            op_of[e["name"]] = e["args"].get("op_name", "other")
    per_layer: dict[str, float] = defaultdict(float)
    for node, durations in per_node.items():  # a layer may be several nodes (e.g. a Transpose beside it)
        per_layer[layer_key(node) or op_of[node]] += float(np.median(durations))
    return dict(per_layer), float(np.median(wall)) * 1e3


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--out", help="also write the markdown table to this file")
    args = p.parse_args(argv)

    model = mobilenet_v1(alpha=args.alpha, resolution=args.resolution).eval()
    cost = {c.name: c for c in count_cost(model, args.resolution).layers}
    x = np.random.default_rng(0).standard_normal((1, 3, args.resolution, args.resolution)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        fp32.write_bytes(to_onnx_model(model, torch.from_numpy(x)).SerializeToString())
        quantize_onnx(
            fp32, int8, [np.random.default_rng(i).standard_normal(x.shape).astype(np.float32) for i in range(4)]
        )
        (t32, wall32), (t8, wall8) = (profile(f, x, args.threads, args.runs) for f in (fp32, int8))

    rows, kinds = [], defaultdict(lambda: np.zeros(3))
    for name, c in cost.items():
        key = name.removesuffix(".conv")
        a, b = t32.get(key, float("nan")), t8.get(key, float("nan"))
        rows.append(
            f"| {key} | {c.kind} | {c.mult_adds / 1e6:.1f} | {a:.3f} | {b:.3f} | "
            f"{c.mult_adds / a / 1e6:.1f} | {c.mult_adds / b / 1e6:.1f} | {a / b:.2f} |"
        )
        kinds[c.kind] += (c.mult_adds, a, b)
    by_kind = [
        f"| {k} | {v[0] / 1e6:.1f} | {v[1]:.2f} | {v[2]:.2f} | {v[0] / v[1] / 1e6:.1f} | "
        f"{v[0] / v[2] / 1e6:.1f} | {v[1] / v[2]:.2f} |"
        for k, v in kinds.items()
    ]
    cpu, flags = cpu_description()
    text = "\n".join(
        [
            f"ONNX Runtime per-layer kernel time, MobileNetV1 {args.alpha:g}-{args.resolution}, batch 1, "
            f"{args.threads} threads, {args.runs} runs (per-node medians); onnxruntime {ort.__version__}, "
            f"{cpu}, {platform.machine()} ({' '.join(flags) or 'no flags read'}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
            f"Session time p50: fp32 {wall32:.2f} ms, int8 {wall8:.2f} ms ({wall32 / wall8:.2f}×).",
            "",
            "| layer kind | Mult-Adds (M) | fp32 (ms) | int8 (ms) | fp32 GMAC/s | int8 GMAC/s | int8 speed-up |",
            "|---|---|---|---|---|---|---|",
            *by_kind,
            "",
            "| layer | kind | Mult-Adds (M) | fp32 (ms) | int8 (ms) | fp32 GMAC/s | int8 GMAC/s | int8 speed-up |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
