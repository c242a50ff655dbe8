"""Our backbone at each α × ρ and torchvision's mobile peers, side by side in every CPU runtime.

Runtimes: PyTorch eager (NCHW), eager channels_last, ONNX Runtime fp32 and ONNX Runtime int8 (static
QDQ, per-channel, as ``mnet export --int8`` makes it). Models: MobileNetV1 at every α × ρ (1000-class
head), torchvision mobilenet_v2 / v3_large / v3_small (224), and the detection pair — our
SSD-MobileNetV1 (300 × 300) beside torchvision ssdlite320_mobilenet_v3_large, both as raw heads (box
codes + class logits; decoding and NMS are not the network). Batch 1 and 8: latency median and p95,
throughput, GFLOP/s and the fraction of the CPU's measured GEMM peak (fp32 for the fp32 runtimes, ONNX
Runtime's int8 GEMM peak for int8; ``benchmarks/peaks.py``).

Speed does not depend on the weights, so every model is randomly initialised (no downloads) and the int8
models are calibrated on two random batches of 4 (accuracy after real calibration: ``mnet export --int8``,
docs/deploy.md). Runtimes take turns in short blocks (with a pause so one runtime's spinning threads do
not slow the next), so load from elsewhere slows all of them alike and ratios within one run compare.
Each cell runs until it has ``--cell-seconds`` of timings, at least ``--min-runs`` and at most
``--max-runs`` runs. A cell that cannot be produced (an export or quantization failure) is written as
"n/a" with the reason.

    python -m benchmarks.runtime_peers           # full grid: 16 α × ρ + 5 others, batch 1 and 8 (~11 min quiet)
    python -m benchmarks.runtime_peers --quick   # smoke run: 0.25-128 and v3_small (~1 min)

(from the repository root; ``PYTHONPATH=. python benchmarks/runtime_peers.py`` works too).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import shlex
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from benchmarks.peaks import measure_peaks
from benchmarks.peers_report import RUNTIMES, Cell, markdown, plot
from mnet.backbone import ALPHAS, RESOLUTIONS, count_cost, mobilenet_v1
from mnet.tasks.runtime.export import to_onnx_model
from mnet.tasks.runtime.quantize import quantize_onnx
from mnet.tasks.runtime.session import OnnxRuntime, Runtime, TorchRuntime


class SSDLiteHeads(nn.Module):
    """torchvision SSDLite's backbone + box/class heads on a tensor (raw outputs, no decode/NMS)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = model.backbone, model.head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(list(self.backbone(x).values()))
        return out["bbox_regression"], out["cls_logits"]


class SSDHeads(nn.Module):
    """Our SSD-MobileNetV1's feature maps + box/class heads (raw outputs, no anchors, decode or NMS)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.head(self.model.features(x))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[[], nn.Module]
    resolution: int
    ours: bool = False
    detection: bool = False


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models as tvm
        from torchvision.models import detection

        if name.startswith("ssdlite"):
            return SSDLiteHeads(getattr(detection, name)(weights=None, weights_backbone=None))
        return getattr(tvm, name)(weights=None)

    return build


def _ssd_mobilenet_v1() -> nn.Module:
    from mnet.tasks.detection.model import ssd_mobilenet_v1

    return SSDHeads(ssd_mobilenet_v1(alpha=1.0, resolution=300))


#: the models beside our α × ρ grid, by ``--peers`` name (the detection pair last)
PEERS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("mobilenet_v2", _torchvision("mobilenet_v2"), 224),
        ModelSpec("mobilenet_v3_large", _torchvision("mobilenet_v3_large"), 224),
        ModelSpec("mobilenet_v3_small", _torchvision("mobilenet_v3_small"), 224),
        ModelSpec("ssd_mobilenet_v1", _ssd_mobilenet_v1, 300, ours=True, detection=True),
        ModelSpec("ssdlite320_mobilenet_v3_large", _torchvision("ssdlite320_mobilenet_v3_large"), 320, detection=True),
    )
}


def backbone_specs(alphas: list[float], resolutions: list[int]) -> list[ModelSpec]:
    return [
        ModelSpec(f"mobilenet_v1_{a}_{r}", (lambda a=a, r=r: mobilenet_v1(alpha=a, resolution=r)), r, ours=True)
        for a, r in itertools.product(alphas, resolutions)
    ]


class CellError(Exception):
    """Why a cell could not be produced (the message goes into the table as is)."""


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"


def int8_graph_summary(path: Path) -> str:
    """What ONNX Runtime runs in int8 after fusing the QDQ graph: quantized vs float convs/GEMMs, and the
    float ops left between quantize/dequantize pairs (e.g. v3's HardSigmoid)."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # QDQ fusions, no NCHWc
    so.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        ops = Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
    int8 = sum(
        v for k, v in ops.items() if k in ("QLinearConv", "ConvInteger", "QGemm", "QLinearMatMul", "MatMulInteger")
    )
    fp32 = sum(v for k, v in ops.items() if k in ("Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm"))
    plumbing = {
        "QuantizeLinear",
        "DequantizeLinear",
        "Transpose",
        "Reshape",
        "Flatten",
        "Concat",
        "Squeeze",
        "Unsqueeze",
        "Shape",
        "Gather",
        "Slice",
        "Cast",
    }  # layout and shape arithmetic, no float math
    left = [
        f"{k} ×{v}"
        for k, v in sorted(ops.items())
        if k not in plumbing
        and not k.startswith("Q")
        and k not in ("Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm", "ConvInteger", "MatMulInteger")
    ]
    return (
        f"{int8}/{int8 + fp32} convs/GEMMs int8; {ops['QuantizeLinear']} quantize + "
        f"{ops['DequantizeLinear']} dequantize nodes" + (f"; float ops between them: {', '.join(left)}" if left else "")
    )


def build_runtimes(
    model: nn.Module, res: int, threads: int, which: list[str], tmp: Path, notes: dict[str, str]
) -> dict[str, Runtime | BaseException]:
    """Each requested runtime, or the exception that kept it from being built (a cell then says why)."""
    out: dict[str, Runtime | BaseException] = {}
    onnx_bytes: bytes | BaseException | None = None

    def fp32_onnx() -> bytes:
        nonlocal onnx_bytes
        if onnx_bytes is None:
            try:
                onnx_bytes = to_onnx_model(model, torch.zeros(1, 3, res, res)).SerializeToString()
            except Exception as e:  # noqa: BLE001 - reported in the table
                onnx_bytes = CellError(f"ONNX export failed: {_error(e)}")
        if isinstance(onnx_bytes, BaseException):
            raise onnx_bytes
        return onnx_bytes

    def int8() -> Runtime:
        rng = np.random.default_rng(0)
        cal = [rng.standard_normal((4, 3, res, res), dtype=np.float32) for _ in range(2)]
        path, fp32 = tmp / "int8.onnx", fp32_onnx()
        try:
            quantize_onnx(fp32, path, cal)
        except Exception as e:  # noqa: BLE001
            raise CellError(f"int8 quantization failed: {_error(e)}") from e
        session = OnnxRuntime(path, threads=threads)
        try:
            notes["int8 graph"] = int8_graph_summary(path)
        except Exception as e:  # noqa: BLE001 - the cell still runs; only its description is missing
            notes["int8 graph"] = f"graph summary unavailable ({_error(e)})"
        return session

    builders: dict[str, Callable[[], Runtime]] = {
        "eager": lambda: TorchRuntime(model, threads=threads),
        "channels_last": lambda: TorchRuntime(copy.deepcopy(model), threads=threads, channels_last=True),
        "ort_fp32": lambda: OnnxRuntime(fp32_onnx(), threads=threads),
        "ort_int8": int8,
    }
    for name in which:
        try:
            out[name] = builders[name]()
        except Exception as e:  # noqa: BLE001 - a cell that cannot be produced is reported, not fatal
            out[name] = e
    return out


def time_interleaved(
    runtimes: dict[str, Runtime],
    x: np.ndarray,
    *,
    warmup: int,
    min_runs: int,
    max_runs: int,
    cell_seconds: float,
    block: int,
    pause: float = 0.02,
) -> dict[str, list[float] | BaseException]:
    """Round-robin blocks of ``block`` timed runs per runtime; each runtime gets enough runs for about
    ``cell_seconds`` (between ``min_runs`` and ``max_runs``, judged from its fastest warm-up run)."""
    target: dict[str, int] = {}
    times: dict[str, list[float] | BaseException] = {}
    for name, rt in runtimes.items():
        try:
            fastest = float("inf")
            for _ in range(max(warmup, 1)):
                t0 = time.perf_counter()
                rt.run(x)
                fastest = min(fastest, time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - e.g. a session that loads but cannot run this batch
            times[name] = CellError(f"run failed: {_error(e)}")
            continue
        target[name] = int(np.clip(cell_seconds / fastest, min_runs, max_runs))
        times[name] = []
    while any(len(times[k]) < n for k, n in target.items()):
        for name, n_target in target.items():
            n = min(block, n_target - len(times[name]))
            if n <= 0:
                continue
            time.sleep(pause)  # let the previous runtime's worker threads go idle
            rt = runtimes[name]
            rt.run(x)
            for _ in range(n):
                t0 = time.perf_counter()
                rt.run(x)
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def bench_model(spec: ModelSpec, args: argparse.Namespace, tmp: Path, bar: tqdm) -> tuple[list[Cell], dict[str, str]]:
    """Every runtime × batch cell of one model, plus notes (the int8 graph) for the report."""
    bar.set_postfix_str(f"{spec.name}: build")
    torch.manual_seed(0)
    model = spec.build().eval()
    mult_adds = count_cost(model, spec.resolution).mult_adds
    notes: dict[str, str] = {}
    built = build_runtimes(model, spec.resolution, args.threads, args.runtimes, tmp, notes)
    bar.update()
    ready = {k: v for k, v in built.items() if not isinstance(v, BaseException)}
    cells = []
    for batch in args.batches:
        bar.set_postfix_str(f"{spec.name}: batch {batch}")
        x = np.random.default_rng(1).standard_normal((batch, 3, spec.resolution, spec.resolution), dtype=np.float32)
        times = (
            time_interleaved(
                ready,
                x,
                warmup=args.warmup,
                min_runs=args.min_runs,
                max_runs=args.max_runs,
                cell_seconds=args.cell_seconds,
                block=args.block,
            )
            if ready
            else {}
        )
        for rt in args.runtimes:
            got = built[rt] if isinstance(built[rt], BaseException) else times[rt]
            cell = Cell(spec.name, spec.resolution, mult_adds, rt, batch, spec.ours, spec.detection)
            if isinstance(got, BaseException):
                cell.error = str(got) if isinstance(got, CellError) else _error(got)
            else:
                cell.times_ms = got
            cells.append(cell)
        bar.update()
    return cells, notes


#: what ``--quick`` changes (anything given explicitly on the command line wins)
QUICK = dict(
    alphas=[0.25],
    resolutions=[128],
    peers=["mobilenet_v3_small"],
    min_runs=3,
    max_runs=10,
    cell_seconds=0.2,
    warmup=1,
    block=3,
    peak_gemm=1024,
    peak_conv=[1, 256, 28],
    peak_runs=4,
    out="benchmarks/results/runtime_peers_quick.md",
    plot="benchmarks/results/runtime_peers_quick.png",
)
FULL = dict(
    alphas=list(ALPHAS),
    resolutions=list(RESOLUTIONS),
    peers=list(PEERS),
    min_runs=20,
    max_runs=200,
    cell_seconds=1.5,
    warmup=3,
    block=5,
    peak_gemm=2048,
    peak_conv=[8, 512, 28],
    peak_runs=8,
    out="benchmarks/results/runtime_peers.md",
    plot="benchmarks/results/runtime_peers.png",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="defaults (full run): " + ", ".join(f"{k}={v}" for k, v in FULL.items()),
    )
    p.add_argument("--quick", action="store_true", help=f"smoke run: {', '.join(f'{k}={v}' for k, v in QUICK.items())}")
    p.add_argument("--alphas", nargs="+", type=float)
    p.add_argument("--resolutions", nargs="+", type=int)
    p.add_argument("--peers", nargs="*", choices=list(PEERS), help="models beside the α × ρ grid (default: all)")
    p.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, help="exactly this many timed runs per cell (sets --min-runs and --max-runs)")
    p.add_argument("--min-runs", type=int)
    p.add_argument("--max-runs", type=int)
    p.add_argument("--cell-seconds", type=float, help="timed seconds to aim for per cell")
    p.add_argument("--warmup", type=int)
    p.add_argument("--block", type=int, help="consecutive runs of one runtime before switching")
    p.add_argument("--peak-gemm", type=int, help="n of the n³ GEMM peak measurements")
    p.add_argument(
        "--peak-conv",
        nargs=3,
        type=int,
        metavar=("BATCH", "CHANNELS", "SIZE"),
        help="shape of the 1×1 conv peak measurements",
    )
    p.add_argument("--peak-runs", type=int)
    p.add_argument("--note", default="", help="a line added under the title (e.g. 'measured under load')")
    p.add_argument("--out")
    p.add_argument("--plot", help="PNG path; '' for none")
    args = p.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--note" in given:  # the note is printed on its own
        del given[given.index("--note") : given.index("--note") + 2]
    args.command = shlex.join(["python", "-m", "benchmarks.runtime_peers"] + given)
    if args.runs is not None:
        args.min_runs = args.max_runs = args.runs
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.batches) < 1 or args.threads < 1 or args.min_runs < 1 or args.max_runs < args.min_runs:
        p.error("batches, --threads and --min-runs must be >= 1, and --max-runs >= --min-runs")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t_start = time.time()
    specs = backbone_specs(args.alphas, args.resolutions) + [PEERS[name] for name in args.peers]
    cells: list[Cell] = []
    notes: dict[str, dict[str, str]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        tqdm(total=1 + len(specs) * (1 + len(args.batches)), unit="step", desc="runtime_peers", file=sys.stderr) as bar,
    ):
        bar.set_postfix_str("GEMM peaks")
        peaks = measure_peaks(args.threads, gemm=args.peak_gemm, conv=tuple(args.peak_conv), runs=args.peak_runs)
        bar.update()
        for spec in specs:
            got, notes[spec.name] = bench_model(spec, args, Path(tmp), bar)
            cells += got
    md = markdown(cells, peaks, notes, args, wall_s=time.time() - t_start)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(md)
    if args.plot:
        plot(cells, peaks, Path(args.plot), args.threads)
    print(f"written to {out}" + (f" and {args.plot}" if args.plot else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
