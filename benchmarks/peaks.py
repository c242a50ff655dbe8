"""The CPU's measured GEMM peaks: fp32 in PyTorch and ONNX Runtime, int8 in ONNX Runtime, on one shape.

A model's GFLOP/s reads as a fraction of these, and int8 peak / fp32 peak (same runtime, same shape) is
the best int8 speed-up the CPU can give: on x86 without VNNI (AVX2 only), ONNX Runtime's u8 × s8 kernels
multiply with ``vpmaddubsw`` + ``vpmaddwd`` and gain little over fp32 FMA; with AVX-512 VNNI, AVX-VNNI
or AMX they can reach 2–4×. Two shapes: a square GEMM (``MatMul`` vs ``MatMulInteger``: the kernel
alone) and a MobileNet-like 1×1 convolution (``Conv`` vs ``QLinearConv``: what a pointwise layer gets,
layout reorders included). Every measurement is the best of ``runs`` (the least disturbed run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mnet.tasks.timing import RELEVANT_FLAGS, cpu_description  # noqa: F401 - re-exported for the benchmarks


@dataclass(frozen=True)
class Peak:
    name: str  # e.g. "ORT int8 MatMulInteger 2048³"
    dtype: str  # "fp32" | "int8"
    gops: float  # GFLOP/s (fp32) or GOP/s (int8), 2 operations per multiply-add


def _ort_session(model: onnx.ModelProto, threads: int):  # noqa: F821
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _graph(nodes: list, inputs: list, output: onnx.ValueInfoProto, inits: list) -> onnx.ModelProto:  # noqa: F821
    from onnx import helper

    graph = helper.make_graph(nodes, "peak", inputs, [output], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def gemm_models(m: int, k: int, n: int) -> dict[str, tuple[onnx.ModelProto, np.ndarray]]:  # noqa: F821
    """fp32 ``MatMul`` and u8 × s8 ``MatMulInteger`` (int32 out) models of (m, k) × (k, n), with inputs."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a32, b32 = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    fp32 = _graph(
        [helper.make_node("MatMul", ["x", "b"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n]),
        [numpy_helper.from_array(b32, "b")],
    )
    b8 = rng.integers(-64, 64, (k, n), dtype=np.int8)  # 7-bit weights, as quantize.py's reduce_range makes
    int8 = _graph(
        [helper.make_node("MatMulInteger", ["x", "b", "x_zp", "b_zp"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [m, k])],
        helper.make_tensor_value_info("y", TensorProto.INT32, [m, n]),
        [
            numpy_helper.from_array(b8, "b"),
            numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
            numpy_helper.from_array(np.array(0, np.int8), "b_zp"),
        ],
    )
    return {"fp32": (fp32, a32), "int8": (int8, rng.integers(0, 256, (m, k), dtype=np.uint8))}


def conv1x1_models(batch: int, channels: int, size: int) -> dict[str, tuple[onnx.ModelProto, np.ndarray]]:  # noqa: F821
    """fp32 ``Conv`` and ``QLinearConv`` (u8 activations, per-channel s8 weights) 1×1 models, with inputs."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    c, shape = channels, [batch, channels, size, size]
    w32 = rng.standard_normal((c, c, 1, 1), dtype=np.float32) / np.float32(np.sqrt(c))
    fp32 = _graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        helper.make_tensor_value_info("y", TensorProto.FLOAT, shape),
        [numpy_helper.from_array(w32, "w")],
    )
    scalars = {
        "x_scale": np.array(0.05, np.float32),
        "x_zp": np.array(128, np.uint8),
        "w_scale": np.full(c, 0.01, np.float32),
        "w_zp": np.zeros(c, np.int8),
        "y_scale": np.array(0.05, np.float32),
        "y_zp": np.array(128, np.uint8),
        "w": rng.integers(-64, 64, (c, c, 1, 1), dtype=np.int8),
    }
    int8 = _graph(
        [helper.make_node("QLinearConv", ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.UINT8, shape)],
        helper.make_tensor_value_info("y", TensorProto.UINT8, shape),
        [numpy_helper.from_array(v, k) for k, v in scalars.items()],
    )
    return {
        "fp32": (fp32, rng.standard_normal(shape, dtype=np.float32)),
        "int8": (int8, rng.integers(0, 256, shape, dtype=np.uint8)),
    }


def measure_peaks(
    threads: int, *, gemm: int = 2048, conv: tuple[int, int, int] = (8, 512, 28), runs: int = 8, pause: float = 0.05
) -> list[Peak]:
    """Best-of-``runs`` throughput of torch.mm, ORT MatMul / MatMulInteger (``gemm``³) and ORT 1×1
    Conv / QLinearConv (``conv`` = batch, channels, spatial size) on ``threads`` threads. The kernels
    take turns (one run each per round), so a burst of load elsewhere does not hit only one of them."""
    torch.set_num_threads(threads)
    a, b = torch.randn(gemm, gemm), torch.randn(gemm, gemm)
    gemm_ops = 2 * gemm**3
    kernels: list[tuple[str, str, int, Callable[[], object]]] = [
        (f"torch.mm fp32, {gemm}³ GEMM", "fp32", gemm_ops, lambda: torch.mm(a, b))
    ]
    batch, c, size = conv
    conv_ops = 2 * batch * size * size * c * c
    for label, ops, models in (
        (f"{gemm}³ GEMM", gemm_ops, gemm_models(gemm, gemm, gemm)),
        (f"1×1 conv {c}→{c}, {batch}×{size}×{size}", conv_ops, conv1x1_models(batch, c, size)),
    ):
        for dtype, (model, x) in models.items():
            sess = _ort_session(model, threads)
            kernels.append(
                (
                    f"ORT {dtype} {model.graph.node[0].op_type}, {label}",
                    dtype,
                    ops,
                    lambda sess=sess, x=x: sess.run(None, {"x": x}),
                )
            )
    best_s = [float("inf")] * len(kernels)
    for r in range(runs + 1):  # round 0 warms up
        for i, (*_, fn) in enumerate(kernels):
            time.sleep(pause)  # the previous kernel's spinning worker threads go idle first
            t0 = time.perf_counter()
            fn()
            if r:
                best_s[i] = min(best_s[i], time.perf_counter() - t0)
    return [Peak(name, dtype, ops / s / 1e9) for (name, dtype, ops, _), s in zip(kernels, best_s)]


def best(peaks: list[Peak], dtype: str) -> Peak:
    """The highest measured peak of ``dtype`` (the machine's practical peak for that precision)."""
    return max((p for p in peaks if p.dtype == dtype), key=lambda p: p.gops)
