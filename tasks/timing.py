"""Latency measurement: warm-up, then the median and 95th percentile of repeated batch runs."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    runs: int
    threads: int


def measure_latency(
    fn: Callable[[Any], object],
    x: Any,
    *,
    warmup: int = 5,
    runs: int = 30,
    threads: int | None = None,
) -> Latency:
    """Time ``fn(x)`` under ``torch.inference_mode`` on the CPU with ``threads`` intra-op threads."""
    import torch

    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    old = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        times = []
        with torch.inference_mode():
            for _ in range(warmup):
                fn(x)
            for _ in range(runs):
                t0 = time.perf_counter()
                fn(x)
                times.append((time.perf_counter() - t0) * 1e3)
        return Latency(float(np.median(times)), float(np.percentile(times, 95)), runs, torch.get_num_threads())
    finally:
        torch.set_num_threads(old)


#: /proc/cpuinfo flags that decide which fp32, bf16 and int8 kernels ONNX Runtime, OpenVINO and PyTorch pick
RELEVANT_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
)


#: flags that give x86 a fast int8 dot product without 16-bit saturation (u8 × s8 summed in 32 bits)
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def _cpuinfo_fields(cpuinfo: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
        if not line.strip() and fields:  # the first processor block is enough
            break
    return fields


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """(model name with family/model, the relevant flags present) from ``/proc/cpuinfo`` (empty off Linux)."""
    if not cpuinfo.is_file():
        import platform

        return platform.processor() or platform.machine(), []
    fields = _cpuinfo_fields(cpuinfo)
    flags = set(fields.get("flags", "").split())
    name = f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"
    return name, [f for f in RELEVANT_FLAGS if f in flags]


def cpu_line(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """One line for a results file: the CPU model and its relevant flags."""
    name, flags = cpu_description(cpuinfo)
    return f"{name}; flags: {' '.join(flags) or 'unknown'}"


def cpu_fingerprint(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """A short hash of the CPU model and *all* its flags: two machines with the same fingerprint pick
    the same kernels (a cache key for per-machine speed decisions)."""
    if cpuinfo.is_file():
        fields = _cpuinfo_fields(cpuinfo)
        text = "|".join(
            [fields.get(k, "") for k in ("vendor_id", "model name", "cpu family", "model")]
            + sorted(fields.get("flags", "").split())
        )
    else:
        import platform

        text = f"{platform.processor()}|{platform.machine()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def has_int8_dot(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on x86 CPUs with VNNI or AMX: int8 kernels there sum u8 × s8 products in 32 bits, so full-range
    (8-bit) weights cannot saturate (without them, AVX2's ``vpmaddubsw`` saturates at 16 bits)."""
    return any(f in INT8_DOT_FLAGS for f in cpu_description(cpuinfo)[1])
