"""Dogs models from pretrained weights: a dogs checkpoint as is, or an ImageNet classifier whose 120 dog
rows become the head (zero-shot, and the initialisation for fine-tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data import NUM_BREEDS, breeds

#: how the dogs head starts from an ImageNet classifier: its dog rows, or freshly initialised
HEAD_INITS = ("zero_shot", "random")


def imagenet_rows() -> list[int]:
    """Row of the 1000-way ImageNet classifier for each breed, in dogs label order."""
    return [b.imagenet_index for b in breeds()]


def dog_rows_head(fc_weight: torch.Tensor, fc_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet classifier restricted to the 120 breeds (logits over dogs only)."""
    if fc_weight.shape[0] != 1000:
        raise ValueError(f"expected a 1000-way ImageNet classifier, got {fc_weight.shape[0]} classes")
    idx = torch.tensor(imagenet_rows())
    return fc_weight[idx].clone(), fc_bias[idx].clone()


def dogs_model_from_weights(
    weights: str | Path,
    *,
    resolution: int | None = None,
    head: str = "zero_shot",
    alpha: float | None = None,
    dropout: float = 0.0,
    source: str | Path | None = None,
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """(model, the :class:`weights.LoadedWeights`, how it was built). ImageNet classification weights give the dogs head from their dog rows
    (``head='zero_shot'``) or a fresh 120-way head (``'random'``: the head re-initialised because the
    class count changes); dogs weights load as they are. ``resolution`` only changes the model's
    nominal input size (the network is fully convolutional up to the global pool)."""
    from mnet.weights import load_weights

    from ..classification.finetune import pretrained_classifier

    if head not in HEAD_INITS:
        raise ValueError(f"model.head_init must be one of {', '.join(HEAD_INITS)}, got {head!r}")
    probe = load_weights(weights, source=source)
    if probe.task not in ("classification", "dogs"):
        raise ValueError(
            f"{probe.path}: weights are for task {probe.task!r}; dogs needs ImageNet classification or dogs weights"
        )
    model, w, old = pretrained_classifier(
        probe, num_classes=NUM_BREEDS, resolution=resolution, alpha=alpha, dropout=dropout
    )
    imagenet = w.task == "classification"
    if imagenet and head == "zero_shot":
        model.head.fc.weight.data, model.head.fc.bias.data = dog_rows_head(*old)
    return (
        model,
        w,
        {
            "model_kwargs": {
                **w.model_kwargs,
                "num_classes": NUM_BREEDS,
                "dropout": dropout,
                **({"resolution": int(resolution)} if resolution else {}),
            },
            "init_from": str(weights),
            "head_init": head if imagenet else "dogs",
        },
    )
