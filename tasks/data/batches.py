"""Batching that tolerates unreadable samples (shared by evaluation and the training engine)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from torch.utils.data import Dataset, default_collate

from .images import ImageDecodeError

log = logging.getLogger(__name__)


class collate_skip_bad:  # noqa: N801  (used like a function; a class so it pickles into workers)
    """Drop ``None`` samples, collate the rest; returns ``(batch or None, number dropped)``."""

    def __init__(self, collate: Callable[[Sequence[Any]], Any] | None = None) -> None:
        self.collate = collate or default_collate

    def __call__(self, samples: Sequence[Any]) -> tuple[Any, int]:
        good = [s for s in samples if s is not None]
        return (self.collate(good) if good else None), len(samples) - len(good)


class SkipBadSamples(Dataset):
    """Wraps a dataset whose reads may raise :class:`~tasks.data.ImageDecodeError`: with
    ``on_bad_image='skip'`` such a sample becomes ``None`` (dropped and counted by the engine) and a
    warning names the file; with ``'error'`` the error propagates."""

    def __init__(self, dataset: Dataset, on_bad_image: str = "error") -> None:
        if on_bad_image not in ("error", "skip"):
            raise ValueError(f"data.on_bad_image must be 'error' or 'skip', got {on_bad_image!r}")
        self.dataset, self.on_bad = dataset, on_bad_image

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except ImageDecodeError as e:
            if self.on_bad == "error":
                raise
            log.warning("skipping sample %d: %s", index, e)
            return None
