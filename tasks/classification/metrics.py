"""Top-k accuracy, accumulated over batches."""

from __future__ import annotations

import torch


class TopK:
    """Counts of correct top-k predictions; ``result()`` gives percentages."""

    def __init__(self, ks: tuple[int, ...] = (1, 5)) -> None:
        self.ks = ks
        self.correct = {k: 0 for k in ks}
        self.n = 0

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
            raise ValueError(f"logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
        if int(labels.max()) >= logits.shape[1]:
            raise ValueError(f"label {int(labels.max())} is outside the model's {logits.shape[1]} classes")
        top = logits.topk(min(max(self.ks), logits.shape[1]), dim=1).indices
        hit = top == labels[:, None]
        for k in self.ks:
            self.correct[k] += int(hit[:, :k].any(dim=1).sum())
        self.n += int(labels.shape[0])

    def result(self) -> dict[str, float]:
        return {f"top{k}": 100.0 * self.correct[k] / max(self.n, 1) for k in self.ks}
