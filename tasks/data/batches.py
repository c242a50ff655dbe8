"""Batching that tolerates unreadable samples (shared by evaluation and the training engine)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch.utils.data import default_collate


class collate_skip_bad:  # noqa: N801  (used like a function; a class so it pickles into workers)
    """Drop ``None`` samples, collate the rest; returns ``(batch or None, number dropped)``."""

    def __init__(self, collate: Callable[[Sequence[Any]], Any] | None = None) -> None:
        self.collate = collate or default_collate

    def __call__(self, samples: Sequence[Any]) -> tuple[Any, int]:
        good = [s for s in samples if s is not None]
        return (self.collate(good) if good else None), len(samples) - len(good)
