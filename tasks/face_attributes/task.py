"""Face attributes (paper Sec. 4.4, Table 12): CelebA's 40 binary attributes, one sigmoid each.

Cost as Table 12 counts it: the backbone plus the 40-way attribute layer (no ImageNet classifier),
3.2 M parameters at α 1.0. Training fine-tunes from ImageNet weights with BCE (optional per-attribute
positive weights); distillation (as the paper trained its face models) mixes BCE on the labels with BCE
on a teacher's sigmoid outputs: ``loss = λ · BCE(z, y) + (1 − λ) · BCE(z, σ(z_teacher))``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from mnet.weights import Preprocess

from ..base import Task, register_task
from ..decode import NonFiniteOutputError
from ..inference import Predictor
from ..pretrained import model_predictor
from .celeba import CelebA
from .metrics import multilabel_metrics
from .model import FACE_MODELS, FaceModel
from .train_config import CONFIG_SCHEMA
from .transforms import center_square, face_eval_transform, face_train_transform

log = logging.getLogger(__name__)


def _mean_std(preprocess: Any) -> dict[str, Any]:
    return {"mean": tuple(preprocess.mean), "std": tuple(preprocess.std)} if preprocess is not None else {}


@torch.inference_mode()
def predict_probs(
    model: nn.Module,
    ds: CelebA,
    *,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool = False,
    desc: str = "predict",
    name: str = "model",
) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid outputs (N, A) and labels (N, A) over a dataset, in order."""

    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    probs, labels = [], []
    for x, y in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        logits = model(x.to(device))
        if not torch.isfinite(logits).all():
            raise NonFiniteOutputError(f"{name}: its attribute logits hold NaN/inf values: its weights are broken")
        probs.append(torch.sigmoid(logits.float()).cpu())
        labels.append(y)
    model.train(was_training)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


class MultiLabelLoss(nn.Module):
    """BCE on the labels, optionally mixed with BCE on a teacher's probabilities (targets (N, 2, A))."""

    def __init__(self, pos_weight: torch.Tensor | None = None, label_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= label_weight <= 1.0:
            raise ValueError(f"loss.label_weight must be in [0, 1], got {label_weight}")
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else None)
        self.label_weight = label_weight

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        pw = None if self.pos_weight is None else self.pos_weight.to(logits.device)
        if targets.dim() == 2:
            return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pw)
        labels, soft = targets[:, 0], targets[:, 1]
        loss = (1.0 - self.label_weight) * F.binary_cross_entropy_with_logits(logits, soft)
        if self.label_weight > 0:
            loss = loss + self.label_weight * F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pw)
        return loss


def pos_weights(targets: torch.Tensor, setting: Any, names: Sequence[str]) -> torch.Tensor | None:
    """``loss.pos_weight``: null (none), ``auto`` (negatives/positives per attribute, clipped to [0.1, 10])
    or a list of one weight per attribute."""
    if setting in (None, False):
        return None
    if setting == "auto":
        pos = targets.sum(0)
        return ((len(targets) - pos) / pos.clamp(min=1)).clamp(0.1, 10.0)
    w = torch.as_tensor(setting, dtype=torch.float32)
    if w.shape != (len(names),):
        raise ValueError(f"loss.pos_weight must be 'auto', null or {len(names)} numbers, got {setting!r}")
    return w


class WithTeacher(torch.utils.data.Dataset):
    """A training set whose targets become (2, A): the labels and the teacher's probabilities."""

    def __init__(self, base: CelebA, teacher_probs: np.ndarray) -> None:
        if teacher_probs.shape != tuple(base.targets.shape):
            raise ValueError(f"teacher gives {teacher_probs.shape} outputs for {tuple(base.targets.shape)} labels")
        self.base, self.soft = base, torch.from_numpy(teacher_probs.astype(np.float32))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base[i]
        return x, torch.stack([y, self.soft[i]])


def backbone_state(weights: Any, *, source: str | None = None, alpha: float | None = None) -> dict[str, torch.Tensor]:
    """The ``layers.*`` tensors of any suite weights (an ImageNet entry, a face model, a .safetensors file,
    or already loaded :class:`weights.LoadedWeights`)."""
    from mnet.weights import LoadedWeights, load_weights

    w = weights if isinstance(weights, LoadedWeights) else load_weights(weights, source=source)
    have = w.model_kwargs.get("alpha")
    if alpha is not None and have is not None and abs(float(have) - float(alpha)) > 1e-9:
        raise ValueError(f"weights {weights} are for α={have}, the model has α={alpha}")
    return {k: v for k, v in w.state_dict.items() if k.startswith("layers.")}


def load_face_model(weights: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A face model and its metadata (``labels``, ``model_kwargs``, ``preprocess``) from a registry name or
    a suite ``.safetensors`` file (e.g. ``<run>/best.safetensors`` written by ``mnet train``)."""
    from ..pretrained import build_pretrained

    model, w = build_pretrained(weights, task="face_attributes")
    return model, dict(w.meta)


@register_task
class FaceAttributesTask(Task):
    """CelebA attributes: multi-label sigmoid head; mean AP / accuracy / balanced accuracy."""

    name = "face_attributes"
    primary_metric = "mean_ap"
    weights_tasks = ("face_attributes",)
    config_schema = CONFIG_SCHEMA

    def build_model(self, *, alpha: float, resolution: int, head: str = "attributes", **kwargs) -> nn.Module:
        if head not in FACE_MODELS:
            raise ValueError(f"unknown face model {head!r}; known: {', '.join(FACE_MODELS)}")
        model = FACE_MODELS[head].build(alpha=alpha, resolution=resolution, **kwargs)
        model.face_head = head  # which inference network and output kind it takes
        return model

    def _face_model(self, model: nn.Module) -> FaceModel:
        return FACE_MODELS[getattr(model, "face_head", "attributes")]

    def output_kind(self, model: nn.Module) -> str:
        return self._face_model(model).kind

    def inference_network(self, model: nn.Module) -> nn.Module:
        """Attributes → one sigmoid each; age/gender → expected age and P(male); RetinaFace → faces
        after priors, decoding and NMS (see :mod:`mnet.tasks.face_attributes.model`)."""
        return self._face_model(model).network(model)

    def evaluate(
        self,
        predictor: Predictor,
        data: str | Path,
        *,
        split: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        progress: bool = True,
        attributes: Sequence[str] | None = None,
        in_the_wild: bool = False,
        limit: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Per-attribute AP, accuracy, balanced accuracy on a CelebA split (default ``test``), their
        means, and the constant-score baseline (``prevalence_mean_ap``), through the one inference path.
        Attribute names come from ``attributes``, else the predictor's labels, else all 40."""
        if predictor.kind != "attributes":
            raise ValueError(
                f"{predictor.model}: face-attribute evaluation needs attribute weights, got {predictor.kind!r}"
            )
        ds = CelebA(
            data,
            split or "test",
            lambda img: predictor.preprocess.to_array(center_square(img)),
            attributes=attributes or predictor.labels,
            in_the_wild=in_the_wild,
        )
        n_out = len(predictor.labels) if predictor.labels else None
        if n_out is not None and n_out != len(ds.attributes):
            raise ValueError(
                f"{predictor.model} predicts {n_out} attributes, {len(ds.attributes)} are selected; "
                f"pass the model's attribute names"
            )
        if limit is not None:
            ds.files, ds.targets = ds.files[:limit], ds.targets[:limit]
        loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers)
        res = predictor.preprocess.resolution
        probs, labels = [], []
        for x, y in tqdm(loader, desc=f"eval face_attributes/{ds.split}", unit="batch", disable=not progress):
            ranked = predictor.decoded(x.numpy(), [predictor.frame(res, res)] * len(x), top_k=None)
            row = np.zeros((len(x), len(ds.attributes)))
            for i, items in enumerate(ranked):
                for item in items:
                    row[i, item.index] = item.score
            probs.append(row)
            labels.append(y.numpy())
        return multilabel_metrics(np.concatenate(probs), np.concatenate(labels), ds.attributes)

    # -- training through the engine --------------------------------------------------------------
    def _init_model(self, m: Mapping[str, Any], n_attr: int) -> nn.Module:
        """A fresh attribute model, its backbone from ``model.weights`` when given; ``model.alpha`` null
        takes the weights' α (1.0 without weights)."""
        from mnet.weights import load_weights

        w = load_weights(m["weights"], source=m.get("weights_source")) if m.get("weights") else None
        alpha = m.get("alpha")
        if alpha is None:
            alpha = w.model_kwargs.get("alpha", 1.0) if w is not None else 1.0
        alpha, res = float(alpha), int(m["resolution"])
        model = self.build_model(
            alpha=alpha, resolution=res, num_attributes=n_attr, dropout=float(m.get("dropout", 0.0))
        )
        if w is not None:
            state = backbone_state(w, alpha=alpha)
            model.layers.load_state_dict({k.removeprefix("layers."): v for k, v in state.items()})
        return model

    def teacher_probs(self, teacher: str, ds: CelebA, *, batch_size: int) -> np.ndarray:
        """The teacher's sigmoid outputs on the (un-augmented) training images, averaged with their mirror."""
        model, meta = load_face_model(teacher)
        labels = meta.get("labels") or []
        if list(labels) != list(ds.attributes):
            raise ValueError(f"teacher {teacher} predicts {labels[:3]}..., the student {list(ds.attributes)[:3]}...")
        res = int(meta["model_kwargs"]["resolution"])
        probs = []
        for flip in (False, True):
            tf = face_eval_transform(res)
            view = CelebA(
                ds.root,
                ds.split,
                (lambda im, tf=tf: tf(im.transpose(Image.FLIP_LEFT_RIGHT))) if flip else tf,
                attributes=ds.attributes,
            )
            probs.append(predict_probs(model, view, batch_size=batch_size, desc="teacher")[0])
        return (probs[0] + probs[1]) / 2

    def train_parts(self, cfg: Mapping[str, Any]):
        from ..training import TrainParts

        m, d, a, lcfg = cfg["model"], cfg["data"], cfg.get("augment") or {}, cfg.get("loss") or {}
        res = int(m["resolution"])
        attrs = d.get("attributes")
        train_set = CelebA(
            d["root"],
            d.get("train_split", "train"),
            face_train_transform(
                res,
                scale=a.get("scale", (0.7, 1.0)),
                hflip=a.get("hflip", 0.5),
                color_jitter=a.get("color_jitter", 0.2),
            ),
            attributes=attrs,
            in_the_wild=bool(d.get("in_the_wild", False)),
        )
        names = train_set.attributes
        model = self._init_model(m, len(names))
        pw = pos_weights(train_set.targets, lcfg.get("pos_weight"), names)
        teacher = lcfg.get("teacher")
        label_weight = lcfg.get("label_weight")  # null: only the teacher with one, only the labels without
        label_weight = float((0.0 if teacher else 1.0) if label_weight is None else label_weight)
        data: torch.utils.data.Dataset = train_set
        if teacher:
            data = WithTeacher(train_set, self.teacher_probs(teacher, train_set, batch_size=int(d["batch_size"])))
        val_split = d.get("val_split", "val")
        evaluate = None
        if val_split:

            def evaluate(model: nn.Module) -> dict[str, Any]:
                predictor = model_predictor(self, model, Preprocess(res), labels=list(names))
                r = self.evaluate(
                    predictor,
                    d["root"],
                    split=val_split,
                    batch_size=int(d["batch_size"]),
                    progress=False,
                    attributes=names,
                    in_the_wild=bool(d.get("in_the_wild", False)),
                )
                return {k: v for k, v in r.items() if k != "per_attribute"}

        export = {
            "arch": "mobilenet_v1",
            "labels": list(names),
            "model_kwargs": {"alpha": model.config.alpha, "resolution": res, "num_attributes": len(names)},
            "preprocess": {"resolution": res, "mean": [127.5] * 3, "std": [127.5] * 3, "crop_fraction": 1.0},
            "init": m.get("weights"),
            "teacher": teacher,
            "label_weight": label_weight,
        }
        return TrainParts(
            model=model,
            train_set=data,
            loss_fn=MultiLabelLoss(pw, label_weight),
            evaluate=evaluate,
            metric="mean_ap",
            backbone=model.layers,
            export_metadata=export,
        )
