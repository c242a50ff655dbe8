"""Latency measurement: warm-up, then the median and 95th percentile of repeated batch runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    runs: int
    threads: int


def measure_latency(
    fn: Callable[[torch.Tensor], object],
    x: torch.Tensor,
    *,
    warmup: int = 5,
    runs: int = 30,
    threads: int | None = None,
) -> Latency:
    """Time ``fn(x)`` under ``torch.inference_mode`` on the CPU with ``threads`` intra-op threads."""
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
