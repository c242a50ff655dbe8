"""Top-k accuracy, accumulated over batches of ranked predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..results import Label


class TopK:
    """Counts of correct top-k predictions; ``result()`` gives percentages."""

    def __init__(self, ks: tuple[int, ...] = (1, 5)) -> None:
        self.ks = ks
        self.correct = {k: 0 for k in ks}
        self.n = 0

    def update(self, ranked: Sequence[Sequence[Label]], labels: Sequence[int]) -> None:
        """``ranked``: per image the predicted classes, best first (``Label.index``); ``labels``: the truth."""
        labels = np.asarray(labels).reshape(-1)
        if len(ranked) != len(labels):
            raise ValueError(f"{len(ranked)} predictions for {len(labels)} labels")
        for row, y in zip(ranked, labels):
            order = [item.index for item in row]
            for k in self.ks:
                self.correct[k] += int(int(y) in order[:k])
        self.n += len(labels)

    def result(self) -> dict[str, float]:
        return {f"top{k}": 100.0 * self.correct[k] / max(self.n, 1) for k in self.ks}
