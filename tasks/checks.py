"""Checks every evaluation shares: a model whose outputs are not finite gets an error, never a metric.

All-NaN weights (a diverged run, a broken conversion) make every output NaN; top-k, AP and COCOeval then
print ``nan%`` or a quiet 0.0 as if it were a result. Each ``evaluate`` passes its model's outputs (or
the network part of them, before NMS or thresholds can hide a NaN) through :func:`check_finite`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


class NonFiniteOutputError(ValueError):
    """The model produced NaN or infinite outputs: its weights (or inputs) are broken."""


def model_name(model: Any, weights_meta: Mapping[str, Any] | None = None) -> str:
    """How to name a model in a message: its weights entry or file when known, else what runs it."""
    meta = weights_meta or {}
    for key in ("entry", "name", "path", "source"):
        if meta.get(key):
            return f"weights {meta[key]}"
    describe = getattr(model, "describe", None)
    if callable(describe):
        try:
            return f"model {describe()}"
        except Exception:  # noqa: BLE001 - a name is best effort; the error it goes into is what matters
            pass
    return f"model {type(model).__name__}"


def _arrays(outputs: Any):
    if isinstance(outputs, torch.Tensor):
        yield outputs.detach()
    elif isinstance(outputs, np.ndarray):
        yield outputs
    elif isinstance(outputs, Mapping):
        for v in outputs.values():
            yield from _arrays(v)
    elif isinstance(outputs, (list, tuple)):
        for v in outputs:
            yield from _arrays(v)


def check_finite(outputs: Any, name: str, what: str = "outputs") -> None:
    """Raise :class:`NonFiniteOutputError` naming ``name`` (see :func:`model_name`) when any float tensor or
    array in ``outputs`` (nested tuples, lists and dicts too) holds NaN or ±inf."""
    bad = total = 0
    for a in _arrays(outputs):
        if isinstance(a, torch.Tensor):
            if a.is_floating_point():
                bad += int((~torch.isfinite(a)).sum())
                total += a.numel()
        elif a.dtype.kind in "fc":
            bad += int((~np.isfinite(a)).sum())
            total += a.size
    if bad:
        raise NonFiniteOutputError(
            f"{name}: {bad:,} of {total:,} {what} are NaN or infinite; the weights are broken "
            f"(e.g. a diverged run or a failed conversion), so no metric is computed"
        )
