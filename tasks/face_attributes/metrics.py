"""Per-attribute metrics for multi-label prediction: average precision, accuracy, balanced accuracy.

AP is the area under the precision-recall curve as a step function over distinct score thresholds,
``Σ (R_n − R_{n−1}) · P_n`` (the definition scikit-learn's ``average_precision_score`` uses; tied
scores form one threshold). A constant score therefore gets AP = the positive rate, the prevalence
baseline every result here is compared with. Attributes with no positives have no AP (``None``, left out
of the mean).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """AP of one attribute: ``scores`` (N,) any real values, ``labels`` (N,) in {0, 1}."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be equal 1-D shapes")
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct threshold
    tp, seen = tp[last], last + 1
    precision, recall = tp / seen, tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def multilabel_metrics(probs: np.ndarray, labels: np.ndarray, names: Sequence[str], *, threshold: float = 0.5) -> dict:
    """Per-attribute AP, accuracy, balanced accuracy and positive rate; their means; the prevalence AP.

    ``probs`` (N, A) in [0, 1], ``labels`` (N, A) in {0, 1}."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels).astype(bool)
    if probs.shape != labels.shape or probs.ndim != 2 or probs.shape[1] != len(names):
        raise ValueError(f"probs {probs.shape}, labels {labels.shape} and {len(names)} names do not agree")
    pred = probs >= threshold
    per = {}
    for j, name in enumerate(names):
        y, p = labels[:, j], pred[:, j]
        rates = [float((p[y == c] == c).mean()) for c in (True, False) if (y == c).any()]
        per[name] = {
            "ap": average_precision(probs[:, j], y),
            "accuracy": float((p == y).mean()) if len(y) else float("nan"),
            "balanced_accuracy": float(np.mean(rates)) if rates else float("nan"),
            "positive_rate": float(y.mean()) if len(y) else float("nan"),
        }
    mean = lambda key: float(np.nanmean([v[key] for v in per.values()])) if per else float("nan")  # noqa: E731
    with_pos = [v["positive_rate"] for v in per.values() if not np.isnan(v["ap"])]
    result = {
        "mean_ap": mean("ap"),
        "mean_accuracy": mean("accuracy"),
        "mean_balanced_accuracy": mean("balanced_accuracy"),
        # what a constant score gets: AP = prevalence, averaged over the attributes that have an AP
        "prevalence_mean_ap": float(np.mean(with_pos)) if with_pos else float("nan"),
        # what always answering the majority class gets
        "majority_mean_accuracy": float(
            np.mean([max(v["positive_rate"], 1 - v["positive_rate"]) for v in per.values()])
        ),
        "n": int(probs.shape[0]),
        "attributes_without_positives": [k for k, v in per.items() if np.isnan(v["ap"])],
        "per_attribute": per,
    }
    for v in per.values():  # JSON has no NaN: an undefined value (no positives / negatives) is null
        v.update({k: None for k, x in v.items() if isinstance(x, float) and np.isnan(x)})
    return result
