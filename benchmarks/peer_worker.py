"""One runtime, in its own process, timing every model it is given: the worker of ``benchmarks.peer_runtimes``.

    python -m benchmarks.peer_worker JOB.json      # prints one JSON object: {"cells": [...], "info": {...}}

A job names one runtime (a key of :data:`OPENERS`), the thread count, the timing budget and the cells
(model files, input file, batch). Each runtime gets a fresh process so nothing else's threads live in
it (ONNX Runtime's idle workers spin and steal the cores from whatever runs next in the same process).
The ONNX Runtime, OpenVINO and LiteRT workers never import torch or ``mnet`` (a 3–10 s import on these
machines); they open the files with the same options as ``tasks/runtime`` (``OnnxRuntime``:
all graph optimisations, sequential, 1 inter-op thread, ``threads`` intra-op threads; ``OpenVinoRuntime``:
latency hint, one stream, ``threads`` threads, f32 unless the default precision is asked for), and the
wrappers add no work to a run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Run = Callable[[np.ndarray], object]


def _ort(path: str, threads: int) -> Run:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.inter_op_num_threads = 1
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _openvino(precision: str | None) -> Callable[[str, int], Run]:
    def open_(path: str, threads: int) -> Run:
        import openvino as ov

        core, model = ov.Core(), None
        model = core.read_model(path)
        compiled: dict[tuple[int, ...], Any] = {}
        cfg: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads}
        if precision:
            cfg["INFERENCE_PRECISION_HINT"] = precision

        def run(x: np.ndarray) -> object:
            req = compiled.get(x.shape)
            if req is None:
                m = model.clone()
                m.reshape({m.inputs[0].get_any_name(): list(x.shape)})
                cm = core.compile_model(m, "CPU", cfg)
                INFO.setdefault("openvino precision", cm.get_property("INFERENCE_PRECISION_HINT").to_string())
                req = compiled[x.shape] = cm.create_infer_request()
            req.infer({0: x})
            return [np.array(req.get_output_tensor(i).data) for i in range(len(req.model_outputs))]

        return run

    return open_


def _litert(path: str, threads: int) -> Run:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=path, num_threads=threads)  # XNNPACK delegate by default
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    outs = [o["index"] for o in interp.get_output_details()]

    def run(x: np.ndarray) -> object:
        interp.set_tensor(inp, x)
        interp.invoke()
        return [interp.get_tensor(i) for i in outs]

    return run


def _torch(channels_last: bool) -> Callable[[dict, int], Run]:
    """PyTorch eager on the task's network (``Task.network``): the weights' model, or a random one."""

    def open_(cell: dict, threads: int) -> Run:
        import torch

        from mnet.tasks import get_task

        torch.set_num_threads(threads)
        task = get_task(cell["task"])
        if cell.get("weights"):
            from mnet.tasks.pretrained import build_pretrained

            model, _ = build_pretrained(cell["weights"])
        else:
            torch.manual_seed(0)
            model = task.build_model(alpha=cell["alpha"], resolution=cell["resolution"])
        net = task.inference_network(model.eval()).eval()
        if channels_last:
            net = net.to(memory_format=torch.channels_last)

        def run(x: np.ndarray) -> object:
            t = torch.from_numpy(x)
            if channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                return net(t)

        return run

    return open_


#: runtime key → (what it opens: "fp32" / "int8" / "tflite" file, or "model" for PyTorch; opener; input kind)
OPENERS: dict[str, tuple[str, Callable[..., Run], str]] = {
    "eager": ("model", _torch(False), "float"),
    "channels_last": ("model", _torch(True), "float"),
    "ort_fp32": ("fp32", _ort, "float"),
    "ort_int8": ("int8", _ort, "float"),
    "ov_fp32": ("fp32", _openvino("f32"), "float"),
    "ov_int8": ("int8", _openvino("f32"), "float"),
    "ov_fp32_auto": ("fp32", _openvino(None), "float"),
    "ov_int8_auto": ("int8", _openvino(None), "float"),
    "litert": ("tflite", _litert, "uint8"),
}

INFO: dict[str, str] = {}


def time_cell(run: Run, x: np.ndarray, *, budget_s: float, min_runs: int, max_runs: int) -> list[float]:
    """Warm up (a third of the budget, at least 2 runs), then time runs (ms) for ``budget_s`` (between
    ``min_runs`` and ``max_runs``; equal bounds: exactly that many)."""
    t_end, n = time.perf_counter() + budget_s / 3, 0
    while n < 2 or time.perf_counter() < t_end:
        run(x)
        n += 1
    times: list[float] = []
    t_end = time.perf_counter() + budget_s
    while len(times) < min_runs or (len(times) < max_runs and time.perf_counter() < t_end):
        t0 = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    what, opener, kind = OPENERS[job["runtime"]]
    out = []
    for model in job["models"]:
        try:
            run = opener(model, job["threads"]) if what == "model" else opener(model["files"][what], job["threads"])
        except Exception as e:  # noqa: BLE001 - the parent writes it into the table
            out += [
                {"model": model["name"], "batch": b, "error": f"{type(e).__name__}: {e}"[:300]}
                for b in model["batches"]
            ]
            continue
        inputs = np.load(model["inputs"])
        for batch in model["batches"]:
            x = np.ascontiguousarray(inputs[kind][:batch])
            lo, hi = (n, n) if (n := model.get("runs", {}).get(str(batch))) else (job["min_runs"], job["max_runs"])
            try:
                times = time_cell(run, x, budget_s=job["budget_s"], min_runs=lo, max_runs=hi)
                out.append({"model": model["name"], "batch": batch, "times_ms": times})
            except Exception as e:  # noqa: BLE001
                out.append({"model": model["name"], "batch": batch, "error": f"{type(e).__name__}: {e}"[:300]})
        del run
    print(json.dumps({"cells": out, "info": INFO}))


if __name__ == "__main__":
    main(sys.argv[1])
