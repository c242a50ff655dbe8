"""Our default inference path against the runtimes a user would pick instead, on this CPU, in one run.

Models (real weights from the registry, exported by ``mnet export`` and ``mnet export --int8``):
MobileNetV1 1.0-224, 0.75-192, 0.5-160, 0.25-128 and SSD-MobileNetV1 0.75-300 (up to decoded boxes and
scores; the NMS after it is not timed). Runtimes, each in its own process (:mod:`benchmarks.peer_worker`,
:mod:`benchmarks.web_runtime`; ONNX Runtime's spinning worker threads slow whatever else runs in the
same process):

- PyTorch eager, NCHW and channels_last;
- ONNX Runtime fp32 and int8 (our two files);
- OpenVINO fp32 and int8 from the same two files, float layers in f32 (the arithmetic the export was
  checked with), and again with OpenVINO's default precision (bf16 on CPUs with AVX-512 BF16 or AMX);
- LiteRT (TFLite) with XNNPACK on Google's official uint8 ``.tflite`` files, where the registry entry
  is one (0.75-192, 0.5-160, 0.25-128, SSD 0.75-300 with its NMS in the graph);
- onnxruntime-web 1.30.0 (WASM SIMD, 1 and 2 threads, fp32 and int8 files) in headless Chromium, for
  the models the browser live view serves (0.75-192, 0.5-160, SSD 0.75-300).

"Our default path" is what :func:`mnet.tasks.runtime.choice.choose_runtime` picks for the model on this
machine (timed here, in this run, from a fresh cache); its cells are that runtime's cells. Each runtime
runs ``--passes`` times, the order reversed every other pass, so a change of load on the shared machine
spreads over all of them; a cell's p50 / p95 pool the runs of all passes, and the per-pass medians show
the spread. A peer that is not installed, a file that does not exist, or a batch a runtime cannot run
(the official .tflite files have batch 1) is an "n/a" cell with the reason.

    python -m benchmarks.peer_runtimes                # the full run (~10 min on 2 quiet cores)
    python -m benchmarks.peer_runtimes --fetch-web    # first time: npm pack onnxruntime-web@1.30.0 (checked)
    python -m benchmarks.peer_runtimes --quick        # smoke run: 0.25-128, random weights, batch 1 (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchModel:
    name: str
    label: str
    task: str
    alpha: float
    resolution: int
    weights: str  # registry entry
    web: bool = False  # served by the browser live view


MODELS: dict[str, BenchModel] = {
    m.name: m
    for m in (
        BenchModel(
            "mnv1_1.0_224", "MobileNetV1 1.0-224", "classification", 1.0, 224, "mobilenet_v1_1.0_224.tfslim_in1k"
        ),
        BenchModel(
            "mnv1_0.75_192",
            "MobileNetV1 0.75-192",
            "classification",
            0.75,
            192,
            "mobilenet_v1_0.75_192.tflite_in1k_quant",
            web=True,
        ),
        BenchModel(
            "mnv1_0.5_160",
            "MobileNetV1 0.5-160",
            "classification",
            0.5,
            160,
            "mobilenet_v1_0.5_160.tflite_in1k_quant",
            web=True,
        ),
        BenchModel(
            "mnv1_0.25_128",
            "MobileNetV1 0.25-128",
            "classification",
            0.25,
            128,
            "mobilenet_v1_0.25_128.tflite_in1k_quant",
        ),
        BenchModel(
            "ssd_0.75_300",
            "SSD-MobileNetV1 0.75-300",
            "detection",
            0.75,
            300,
            "ssd_mobilenet_v1_0.75_300.tflite_coco_quant",
            web=True,
        ),
    )
}


@dataclass(frozen=True)
class Peer:
    """One column: a runtime (and precision / settings) in its own worker process."""

    key: str
    label: str
    module: str = "benchmarks.peer_worker"
    needs: str | None = None  # importable module that must be installed
    file: str = "fp32"  # which file it runs: fp32, int8, tflite, or model (PyTorch)
    web_threads: int = 0


PEERS: dict[str, Peer] = {
    p.key: p
    for p in (
        Peer("eager", "PyTorch eager", file="model"),
        Peer("channels_last", "PyTorch channels_last", file="model"),
        Peer("ort_fp32", "ONNX Runtime fp32", needs="onnxruntime"),
        Peer("ort_int8", "ONNX Runtime int8", needs="onnxruntime", file="int8"),
        Peer("ov_fp32", "OpenVINO fp32", needs="openvino"),
        Peer("ov_int8", "OpenVINO int8", needs="openvino", file="int8"),
        Peer("ov_fp32_auto", "OpenVINO fp32 file, default precision", needs="openvino"),
        Peer("ov_int8_auto", "OpenVINO int8 file, default precision", needs="openvino", file="int8"),
        Peer("litert", "LiteRT XNNPACK, official uint8 .tflite", needs="ai_edge_litert", file="tflite"),
        *(
            Peer(
                f"web_{prec}_{t}t",
                f"ORT-web {prec}, {t} thread{'s' if t > 1 else ''}",
                module="benchmarks.web_runtime",
                needs="playwright",
                file=prec,
                web_threads=t,
            )
            for prec in ("fp32", "int8")
            for t in (1, 2)
        ),
    )
}
WEB = [k for k, p in PEERS.items() if p.web_threads]
#: the choice's candidate labels → the column that runs the same thing
CHOICE_TO_PEER = {
    "onnxruntime fp32": "ort_fp32",
    "onnxruntime int8": "ort_int8",
    "openvino fp32": "ov_fp32",
    "openvino int8": "ov_int8",
}


@dataclass
class Cell:
    model: str
    peer: str
    batch: int
    pass_times: list[list[float]] = field(default_factory=list)
    error: str | None = None

    @property
    def times(self) -> list[float]:
        return [t for p in self.pass_times for t in p]

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.times)

    @property
    def p50(self) -> float:
        return float(np.median(self.times))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.times, 95))

    @property
    def pass_medians(self) -> list[float]:
        return [float(np.median(p)) for p in self.pass_times if p]


@dataclass
class Prepared:
    """One model's files and what the run learnt about it."""

    model: BenchModel
    files: dict[str, str]  # fp32, int8, tflite (absent when there is none)
    inputs: str  # .npz with "float" (8, 3, H, W) and "uint8" (8, H, W, 3)
    weights: str  # "pretrained" or "random"
    int8_record: str = ""
    choice: str = ""  # the pick's label
    choice_reason: str = ""
    choice_ms: dict[str, float] = field(default_factory=dict)  # the choice's own timings (p10)
    choice_load: float = 0.0  # load average (1 min) when the choice timed
    missing: dict[str, str] = field(default_factory=dict)  # file kind → why it is absent


# -- preparing the files ------------------------------------------------------------------------------------


def _sample_images(task: object, spec: object, resolution: int, n: int = 8) -> dict[str, np.ndarray] | None:
    """n real photos: the task's float input and the same photos as uint8 NHWC at the model's size (LiteRT)."""
    from PIL import Image

    from mnet.tasks.data.images import load_rgb
    from mnet.tasks.runtime.deploy import default_check_images

    try:
        files = default_check_images(task)
    except ValueError:
        return None
    files = (files * n)[:n]
    imgs = [load_rgb(f) for f in files]
    x = np.stack([spec.to_array(img) for img in imgs]).astype(np.float32)
    u8 = np.stack([np.asarray(img.resize((resolution, resolution), Image.BILINEAR), dtype=np.uint8) for img in imgs])
    return {"float": x, "uint8": u8}


def _tflite_file(weights: str, source: Path | None) -> tuple[str | None, str]:
    """The registry entry's official .tflite file under ``source``, or (None, why not)."""
    from mnet.weights import get_entry

    names = [n for n in get_entry(weights).filenames if n.endswith(".tflite")]
    if not names:
        return (
            None,
            f"no official uint8 .tflite for {weights} (the registry's original is {get_entry(weights).filenames[0]})",
        )
    if source is None or not source.is_dir():
        return None, f"{names[0]} not at hand (no --weights-from folder)"
    for f in sorted(source.rglob("*.tflite")):
        if f.name in names:
            return str(f), ""
    return None, f"{names[0]} not found under {source}"


def prepare(m: BenchModel, args: argparse.Namespace, folder: Path) -> Prepared:
    """Export the model's fp32 and int8 ONNX files (cached in ``folder``), find its .tflite, make inputs."""
    from mnet.tasks import get_task
    from mnet.tasks.runtime.export import read_metadata
    from mnet.tasks.runtime.int8_accuracy import Int8Accuracy
    from mnet.weights import Preprocess, fetch_and_convert
    from mnet.weights.loader import is_available

    task = get_task(m.task)
    folder.mkdir(parents=True, exist_ok=True)
    fp32, int8 = folder / f"{m.name}.onnx", folder / f"{m.name}.int8.onnx"
    from mnet.weights import get_entry

    pretrained = not args.random_weights and is_available(get_entry(m.weights), args.weights_from)
    missing: dict[str, str] = {}
    if pretrained:
        from mnet.tasks.runtime.deploy import export_weights

        fetch_and_convert(m.weights, source=args.weights_from, progress=False)
        from mnet.weights import load_weights

        spec = load_weights(m.weights).preprocess
        for path, int8_flag in ((fp32, False), (int8, True)):
            if path.is_file() and not args.re_export:
                continue
            try:
                export_weights(m.weights, "onnx", path, int8=int8_flag, progress=False, overwrite=True)
            except Exception as e:  # noqa: BLE001 - the cells of this file say why
                missing["int8" if int8_flag else "fp32"] = f"export failed: {type(e).__name__}: {e}"[:200]
    else:
        import torch

        from mnet.tasks.runtime.export import export_onnx
        from mnet.tasks.runtime.quantize import quantize_onnx

        torch.manual_seed(0)
        spec = Preprocess(m.resolution)
        net = task.inference_network(task.build_model(alpha=m.alpha, resolution=m.resolution).eval())
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, m.resolution, m.resolution), dtype=np.float32)
        export_onnx(net, fp32, x)
        quantize_onnx(fp32, int8, [x])
    sample = _sample_images(task, spec, m.resolution) if pretrained else None
    if sample is None:
        rng = np.random.default_rng(1)
        sample = {
            "float": rng.standard_normal((8, 3, m.resolution, m.resolution), dtype=np.float32),
            "uint8": rng.integers(0, 256, (8, m.resolution, m.resolution, 3), dtype=np.uint8),
        }
    inputs = folder / f"{m.name}.inputs.npz"
    np.savez(inputs, **sample)
    files = {k: str(p) for k, p in (("fp32", fp32), ("int8", int8)) if p.is_file() and k not in missing}
    tfl, why = _tflite_file(m.weights, args.weights_from)  # Google's own file: the peer, whatever our weights
    if tfl:
        files["tflite"] = tfl
    else:
        missing["tflite"] = why
    record = ""
    if "int8" in files:
        rec = Int8Accuracy.from_metadata(read_metadata(files["int8"]))
        record = rec.summary() if rec else "no accuracy record (random weights)" if not pretrained else "no record"
    return Prepared(m, files, str(inputs), "pretrained" if pretrained else "random", record, missing=missing)


def choose(p: Prepared, args: argparse.Namespace, cache: Path) -> None:
    """What the per-machine choice picks for this model here (timed now: a fresh cache file)."""
    from mnet.tasks.runtime.choice import choose_runtime

    if "fp32" not in p.files:
        p.choice_reason = "no fp32 file"
        return
    p.choice_load = os.getloadavg()[0]
    c = choose_runtime(p.files["fp32"], p.files.get("int8"), threads=args.threads, cache_file=cache)
    p.choice, p.choice_reason, p.choice_ms = c.candidate.label, c.reason, c.timings_ms
    del c


# -- running the workers ------------------------------------------------------------------------------------


def installed(module: str | None) -> bool:
    import importlib.util

    return module is None or importlib.util.find_spec(module) is not None


def na_reason(peer: Peer, p: Prepared, batch: int, args: argparse.Namespace, ov_default: str | None) -> str | None:
    """Why this cell cannot be produced, or None."""
    if not installed(peer.needs):
        return f"{peer.needs} not installed (pip install 'mobilenet-suite[bench]')"
    if peer.web_threads:
        if not p.model.web:
            return "not served by the browser live view (0.75-192, 0.5-160, SSD 0.75-300 are)"
        if args.web_unavailable:
            return args.web_unavailable
    if peer.key.endswith("_auto") and ov_default == "f32":
        return "same as OpenVINO f32: OpenVINO's default precision on this CPU is f32"
    if peer.file in ("fp32", "int8", "tflite") and peer.file not in p.files:
        return p.missing.get(peer.file, f"no {peer.file} file")
    if peer.file == "tflite" and batch != 1:
        extra = " and TFLite_Detection_PostProcess (NMS) in the graph" if p.model.task == "detection" else ""
        return f"the official .tflite file has a fixed batch of 1{extra}"
    return None


def run_worker(peer: Peer, jobs: list[dict], args: argparse.Namespace, tmp: Path) -> dict:
    """One worker process for ``peer`` over ``jobs`` (models with their batches); its JSON result."""
    job = {
        "runtime": peer.key,
        "threads": args.threads,
        "budget_s": args.budget,
        "min_runs": args.min_runs,
        "max_runs": args.max_runs,
        "models": jobs,
        "web": {"cache": str(args.web_cache), "threads": peer.web_threads, "precision": peer.file},
    }
    path = tmp / f"job_{peer.key}.json"
    path.write_text(json.dumps(job))
    cmd = [sys.executable, "-m", peer.module, str(path)]
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=args.worker_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"worker timed out after {args.worker_timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": f"worker failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}"}
    return json.loads(lines[-1])


def measure(prepared: list[Prepared], args: argparse.Namespace, ov_default: str | None) -> tuple[list[Cell], dict]:
    cells: dict[tuple[str, str, int], Cell] = {}
    info: dict[str, str] = {}
    runnable: dict[str, list[dict]] = {}
    for key in args.runtimes:
        peer = PEERS[key]
        jobs = []
        for p in prepared:
            batches = []
            for b in args.batches:
                cell = cells[(p.model.name, key, b)] = Cell(p.model.name, key, b)
                cell.error = na_reason(peer, p, b, args, ov_default)
                if cell.error is None:
                    batches.append(b)
            if batches:
                jobs.append(
                    {
                        "name": p.model.name,
                        "task": p.model.task,
                        "alpha": p.model.alpha,
                        "resolution": p.model.resolution,
                        "weights": p.model.weights if p.weights == "pretrained" else None,
                        "files": p.files,
                        "inputs": p.inputs,
                        "batches": batches,
                    }
                )
        if jobs:
            runnable[key] = jobs
    order = list(runnable)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.passes):
            if i == 1:  # later passes run as many times as the first did: each pass weighs the same in the pool
                for key, jobs in runnable.items():
                    for job in jobs:
                        job["runs"] = {
                            str(b): len(c.pass_times[0])
                            for b in job["batches"]
                            if (c := cells[(job["name"], key, b)]).pass_times
                        }
            for key in order if i % 2 == 0 else order[::-1]:
                print(f"pass {i + 1}/{args.passes}: {PEERS[key].label}", file=sys.stderr, flush=True)
                time.sleep(0.2)
                result = run_worker(PEERS[key], runnable[key], args, Path(tmp))
                info.update({f"{key}: {k}": v for k, v in result.get("info", {}).items()})
                if "error" in result:
                    for job in runnable[key]:
                        for b in job["batches"]:
                            cells[(job["name"], key, b)].error = result["error"]
                    continue
                for r in result["cells"]:
                    cell = cells[(r["model"], key, r["batch"])]
                    if "error" in r:
                        cell.error = r["error"]
                    else:
                        cell.pass_times.append(r["times_ms"])
    return list(cells.values()), info


# -- the command line ---------------------------------------------------------------------------------------

QUICK = dict(
    models=["mnv1_0.25_128"],
    batches=[1],
    passes=1,
    budget=0.05,
    min_runs=3,
    max_runs=10,
    runtimes=[k for k in PEERS if k not in WEB],
    out="benchmarks/results/peer_runtimes_quick.md",
    plot="benchmarks/results/peer_runtimes_quick.png",
)
FULL = dict(
    models=list(MODELS),
    batches=[1, 8],
    passes=3,
    budget=0.5,
    min_runs=5,
    max_runs=400,
    runtimes=list(PEERS),
    out="benchmarks/results/peer_runtimes.md",
    plot="benchmarks/results/peer_runtimes.png",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mnet.weights.sources import cache_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    p.add_argument("--models", nargs="+", choices=list(MODELS))
    p.add_argument("--runtimes", nargs="+", choices=list(PEERS))
    p.add_argument("--batches", nargs="+", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--passes", type=int, help="times each runtime runs every model (order reversed every other pass)")
    p.add_argument("--budget", type=float, help="timed seconds per cell per pass (after a third of it of warm-up)")
    p.add_argument("--min-runs", type=int)
    p.add_argument("--max-runs", type=int)
    p.add_argument("--weights-from", type=Path, help="folder of the original weight files (default: ../shared/weights)")
    p.add_argument("--random-weights", action="store_true", help="random-init models (no downloads; --quick)")
    p.add_argument("--models-dir", type=Path, help="where the exports are kept between runs")
    p.add_argument("--re-export", action="store_true", help="export the ONNX files again even when kept")
    p.add_argument("--fetch-web", action="store_true", help="npm pack onnxruntime-web@1.30.0 into the cache if absent")
    p.add_argument("--worker-timeout", type=float, default=1200)
    p.add_argument("--note", default="", help="a line under the title (e.g. the machine's load)")
    p.add_argument("--from-json", type=Path, help="re-write the report (and plot) of an earlier run's .json, no timing")
    p.add_argument("--out")
    p.add_argument("--plot", help="PNG path; '' for none")
    args = p.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--note" in given:
        del given[given.index("--note") : given.index("--note") + 2]
    args.command = shlex.join(["python", "-m", "benchmarks.peer_runtimes", *given])
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick:
        args.random_weights = True
    if args.weights_from is None:
        default = REPO.parent / "shared" / "weights"
        args.weights_from = default if default.is_dir() else None
    args.models_dir = args.models_dir or cache_dir() / "peer_runtimes"
    args.web_cache = cache_dir() / "npm"
    if min(args.batches) < 1 or args.threads < 1 or args.passes < 1 or args.min_runs < 1:
        p.error("batches, --threads, --passes and --min-runs must be >= 1")
    return args


def save_run(path: Path, prepared: list[Prepared], cells: list[Cell], info: dict, meta: dict) -> None:
    """Every measurement of the run as JSON (beside the report), so the report can be re-written from it."""
    data = {
        "meta": meta,
        "info": info,
        "prepared": [{**asdict(p), "model": p.model.name} for p in prepared],
        "cells": [asdict(c) for c in cells],
    }
    path.write_text(json.dumps(data, separators=(",", ":")))


def load_run(path: Path) -> tuple[list[Prepared], list[Cell], dict, dict]:
    data = json.loads(path.read_text())
    prepared = [Prepared(**{**p, "model": MODELS[p["model"]]}) for p in data["prepared"]]
    return prepared, [Cell(**c) for c in data["cells"]], data["info"], data["meta"]


def main(argv: list[str] | None = None) -> None:
    from benchmarks.peer_runtimes_report import markdown, plot

    args = parse_args(argv)
    out = Path(args.out)
    if args.from_json:
        prepared, cells, info, meta = load_run(args.from_json)
        for key in (
            "command",
            "note",
            "runtimes",
            "batches",
            "passes",
            "budget",
            "min_runs",
            "max_runs",
            "threads",
            "quick",
        ):
            setattr(args, key, meta["args"][key])
    else:
        prepared, cells, info, meta = measure_all(args)
    md = markdown(prepared, cells, info, args, wall_s=meta["wall_s"], load=tuple(meta["load"]), when=meta["when"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    if not args.from_json:
        save_run(out.with_suffix(".json"), prepared, cells, info, meta)
    print(md)
    if args.plot:
        plot(prepared, cells, Path(args.plot), args)
    print(f"written to {out}" + (f" and {args.plot}" if args.plot else ""), file=sys.stderr)


def measure_all(args: argparse.Namespace) -> tuple[list[Prepared], list[Cell], dict, dict]:
    """Prepare the files, let the choice pick, run every worker: (prepared, cells, worker info, run metadata)."""
    t0, load0 = time.time(), os.getloadavg()[0]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.web_unavailable = ""
    if any(PEERS[k].web_threads for k in args.runtimes):
        from benchmarks.web_runtime import CHROMIUM, WebUnavailable, fetch_package

        try:
            fetch_package(args.web_cache, download=args.fetch_web)
            if not Path(CHROMIUM).is_file():
                args.web_unavailable = f"no Chromium at {CHROMIUM}"
        except (WebUnavailable, OSError, subprocess.SubprocessError) as e:
            args.web_unavailable = str(e)
    ov_default = None
    if installed("openvino"):
        import openvino as ov

        ov_default = {"bfloat16": "bf16", "float32": "f32", "float16": "f16"}.get(
            (h := ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")).to_string(), h.to_string()
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if args.random_weights else args.models_dir
        prepared = []
        for name in args.models:
            print(f"preparing {name}", file=sys.stderr, flush=True)
            prepared.append(prepare(MODELS[name], args, folder / ("random" if args.random_weights else "")))
        for p in prepared:
            print(f"choosing the runtime for {p.model.name}", file=sys.stderr, flush=True)
            time.sleep(0.5)
            choose(p, args, Path(tmp) / "choice.json")
        cells, info = measure(prepared, args, ov_default)
    info["openvino default precision"] = ov_default or "–"
    keys = ("command", "note", "runtimes", "batches", "passes", "budget", "min_runs", "max_runs", "threads", "quick")
    meta = {
        "wall_s": time.time() - t0,
        "load": [load0, os.getloadavg()[0]],
        "when": when,
        "args": {k: getattr(args, k) for k in keys},
    }
    return prepared, cells, info, meta


if __name__ == "__main__":
    main()
