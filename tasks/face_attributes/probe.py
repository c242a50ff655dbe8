"""Fast fine-tuning of the attribute layer on frozen, cached backbone features (CPU-friendly).

The backbone (ImageNet weights) runs once per image (training images also mirrored); the 40-way
sigmoid layer is then fitted on the cached pooled features by full-batch L-BFGS with BCE, the L2
strength picked by validation mean AP. A student can fit a teacher's probabilities instead of (or mixed
with) the labels: distillation with ``label_weight`` < 1, as in :class:`~.task.MultiLabelLoss`.
The result is a complete attribute model (backbone + head) that saves as suite weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from .celeba import CelebA
from .metrics import multilabel_metrics
from .model import attribute_model
from .task import MultiLabelLoss, backbone_state
from .transforms import face_eval_transform

L2_GRID = (1e-4, 1e-3, 1e-2, 3e-2)


@dataclass
class Features:
    x: torch.Tensor  # (N, C) pooled backbone features
    y: torch.Tensor  # (N, A) labels in {0, 1}


@torch.no_grad()  # (not inference_mode: the features are then fitted with autograd)
def extract(
    model: nn.Module,
    root: str | Path,
    split: str,
    resolution: int,
    *,
    attributes: Sequence[str] | None = None,
    mirror: bool = False,
    batch_size: int = 32,
) -> Features:
    """Pooled features of every image of a split (and of its mirror image when ``mirror``)."""
    tf = face_eval_transform(resolution)
    views = [tf] + ([lambda im: tf(im.transpose(Image.FLIP_LEFT_RIGHT))] if mirror else [])
    xs, ys = [], []
    model.eval()
    for view in views:
        ds = CelebA(root, split, view, attributes=attributes)
        for x, y in torch.utils.data.DataLoader(ds, batch_size=batch_size):
            xs.append(model.forward_head(model.forward_features(x), pre_logits=True))
            ys.append(y)
    return Features(torch.cat(xs), torch.cat(ys))


def fit_head(
    feats: Features,
    *,
    l2: float,
    soft: torch.Tensor | None = None,
    label_weight: float = 1.0,
    pos_weight: torch.Tensor | None = None,
    max_iter: int = 200,
) -> nn.Linear:
    """A Linear(C, A) fitted by L-BFGS on BCE (+ ``l2``·‖W‖²); ``soft`` = teacher probabilities (N, A)."""
    torch.manual_seed(0)
    c, a = feats.x.shape[1], feats.y.shape[1]
    head = nn.Linear(c, a)
    nn.init.zeros_(head.weight)
    prior = feats.y.mean(0).clamp(1e-3, 1 - 1e-3)
    with torch.no_grad():
        head.bias.copy_(torch.log(prior / (1 - prior)))
    loss_fn = MultiLabelLoss(pos_weight, label_weight)
    targets = feats.y if soft is None else torch.stack([feats.y, soft], dim=1)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(head(feats.x), targets) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def head_probs(head: nn.Linear, feats: Features) -> np.ndarray:
    with torch.no_grad():
        return torch.sigmoid(head(feats.x)).numpy()


def train_probe(
    root: str | Path,
    *,
    alpha: float,
    resolution: int,
    weights: str,
    source: str | None = None,
    attributes: Sequence[str] | None = None,
    soft: torch.Tensor | None = None,
    label_weight: float = 1.0,
    l2_grid: Sequence[float] = L2_GRID,
) -> dict[str, Any]:
    """Fit the attribute layer on frozen ``weights`` features; returns the model, the picked L2 (best val mean
    AP; ``val_mean_ap_by_l2`` every candidate's), val and test metrics and ``train_soft``, the fitted model's
    probabilities on the training views (a teacher's targets).
    ``soft``: a teacher's probabilities on the same training views (mirrored ones after the originals)."""
    names = CelebA(root, "train", face_eval_transform(resolution), attributes=attributes).attributes
    model = attribute_model(alpha=alpha, resolution=resolution, num_attributes=len(names))
    model.layers.load_state_dict(
        {k.removeprefix("layers."): v for k, v in backbone_state(weights, source=source, alpha=alpha).items()}
    )
    train = extract(model, root, "train", resolution, attributes=attributes, mirror=True)
    val = extract(model, root, "val", resolution, attributes=attributes)
    test = extract(model, root, "test", resolution, attributes=attributes)
    if soft is not None and soft.shape != train.y.shape:
        raise ValueError(
            f"teacher probabilities {tuple(soft.shape)} do not match the training set {tuple(train.y.shape)}"
        )
    results = []
    for l2 in l2_grid:
        head = fit_head(train, l2=l2, soft=soft, label_weight=label_weight)
        results.append((multilabel_metrics(head_probs(head, val), val.y.numpy(), names), l2, head))
    val_metrics, l2, head = max(results, key=lambda r: r[0]["mean_ap"])
    model.head.fc.load_state_dict(head.state_dict())
    test_metrics = multilabel_metrics(head_probs(head, test), test.y.numpy(), names)
    return {
        "model": model.eval(),
        "attributes": list(names),
        "l2": l2,
        "val_mean_ap": val_metrics["mean_ap"],
        "val_mean_ap_by_l2": {str(r[1]): r[0]["mean_ap"] for r in results},
        "val": val_metrics,
        "test": test_metrics,
        "train_soft": torch.from_numpy(head_probs(head, train)),
        "n_train_views": len(train.y),
    }
