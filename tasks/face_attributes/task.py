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

from ..base import Task, register_task
from .celeba import CelebA
from .metrics import multilabel_metrics
from .model import FACE_MODELS
from .transforms import face_eval_transform, face_train_transform

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
) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid outputs (N, A) and labels (N, A) over a dataset, in order."""
    from tqdm import tqdm

    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    probs, labels = [], []
    for x, y in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        probs.append(torch.sigmoid(model(x.to(device)).float()).cpu())
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


def backbone_state(weights: str, *, source: str | None = None, alpha: float | None = None) -> dict[str, torch.Tensor]:
    """The ``layers.*`` tensors of any suite weights (an ImageNet entry, a face model, a .safetensors file)."""
    from mnet.weights import load_weights

    w = load_weights(weights, source=source)
    have = w.model_kwargs.get("alpha")
    if alpha is not None and have is not None and abs(float(have) - float(alpha)) > 1e-9:
        raise ValueError(f"weights {weights} are for α={have}, the model has α={alpha}")
    return {k: v for k, v in w.state_dict.items() if k.startswith("layers.")}


def load_face_model(weights: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A face model and its metadata (``labels``, ``model_kwargs``, ``preprocess``) from a registry name, a
    suite ``.safetensors`` file, or a file exported by the engine (``<run>/best.safetensors``)."""
    from mnet.weights import build_pretrained
    from mnet.weights.formats import FormatError

    try:
        model, w = build_pretrained(weights)
        return model, dict(w.meta)
    except FormatError:
        from ..engine.checkpoint import read_exported

        sd, meta = read_exported(weights)
        if meta.get("task") != "face_attributes" or "model_kwargs" not in meta:
            raise ValueError(f"{weights}: not face-attribute weights (task {meta.get('task')!r})") from None
        model = FaceAttributesTask().build_model(**meta["model_kwargs"])
        model.load_state_dict(sd)
        return model.eval(), meta


@register_task
class FaceAttributesTask(Task):
    """CelebA attributes: multi-label sigmoid head; mean AP / accuracy / balanced accuracy."""

    name = "face_attributes"
    primary_metric = "mean_ap"
    weights_tasks = ("face_attributes",)
    description = "CelebA face attributes, 40 sigmoids (mean AP, accuracy, balanced accuracy)"

    def build_model(self, *, alpha: float, resolution: int, head: str = "attributes", **kwargs) -> nn.Module:
        if head not in FACE_MODELS:
            raise ValueError(f"unknown face head {head!r}; known: {', '.join(FACE_MODELS)}")
        return FACE_MODELS[head](alpha=alpha, resolution=resolution, **kwargs)

    def postprocess_options(self, model: nn.Module | None) -> dict[str, Any]:
        from .model import AgeGenderHead

        return {"head": "age_gender" if isinstance(getattr(model, "head", None), AgeGenderHead) else "attributes"}

    def postprocess(
        self,
        outputs: Any,
        *,
        labels: Sequence[str] | None = None,
        top_k: int = 5,
        image_sizes: Sequence[tuple[int, int]] | None = None,
        head: str = "attributes",
        **_: Any,
    ) -> list[dict[str, Any]]:
        """(N, A) logits → per image, multi-label: ``{"attributes": [{"index", "label", "prob", "present"}]}``,
        one independent sigmoid per attribute (not a softmax), most likely first; the ``age_gender`` head's
        (N, 1 + ages) → ``{"age", "gender", "gender_score"}``."""
        logits = np.asarray(outputs[0] if isinstance(outputs, (list, tuple)) else outputs, dtype=np.float64)
        if logits.ndim != 2:
            raise ValueError(f"face_attributes: expected (N, A) logits to postprocess, got shape {logits.shape}")
        if head == "age_gender":
            from .model import decode_age_gender

            ages, male = (t.numpy() for t in decode_age_gender(torch.from_numpy(logits)))
            return [
                {
                    "age": round(float(a), 1),
                    "gender": "male" if m >= 0.5 else "female",
                    "gender_score": float(max(m, 1 - m)),
                }
                for a, m in zip(ages, male)
            ]
        if labels is not None and len(labels) != logits.shape[1]:
            raise ValueError(f"{len(labels)} attribute names for {logits.shape[1]} outputs")
        probs = 1.0 / (1.0 + np.exp(-logits))
        return [
            {
                "attributes": [
                    {
                        "index": int(i),
                        "label": labels[i] if labels else str(int(i)),
                        "prob": float(row[i]),
                        "present": bool(row[i] >= 0.5),
                    }
                    for i in np.argsort(-row, kind="stable")
                ]
            }
            for row in probs
        ]

    def evaluate(
        self,
        model: nn.Module,
        data: str | Path,
        *,
        split: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        progress: bool = True,
        attributes: Sequence[str] | None = None,
        in_the_wild: bool = False,
        preprocess: Any = None,
        weights_meta: Mapping[str, Any] | None = None,
        limit: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Per-attribute AP, accuracy, balanced accuracy on a CelebA split, their means, and the
        constant-score baseline (``prevalence_mean_ap``). Attribute names come from ``attributes``, else
        the weights' labels, else all 40."""
        if attributes is None and weights_meta and weights_meta.get("labels"):
            attributes = list(weights_meta["labels"])
        res = int(getattr(preprocess, "resolution", None) or kwargs.get("resolution") or model.config.resolution)
        ds = CelebA(
            data,
            split or "test",
            face_eval_transform(res, **_mean_std(preprocess)),
            attributes=attributes,
            in_the_wild=in_the_wild,
        )
        n_out = getattr(model, "num_classes", None)
        if n_out is not None and n_out != len(ds.attributes):
            raise ValueError(
                f"the model predicts {n_out} attributes, {len(ds.attributes)} are selected; "
                f"pass the model's attribute names"
            )
        if limit is not None:
            ds.files, ds.targets = ds.files[:limit], ds.targets[:limit]
        probs, labels = predict_probs(
            model,
            ds,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            desc=f"eval face_attributes/{ds.split}",
        )
        return multilabel_metrics(probs, labels, ds.attributes)

    def predict_files(
        self,
        paths: Sequence[str | Path],
        *,
        detector: str = "ssd",
        age_gender: str | None = None,
        attributes: str | None = None,
        top_k: int = 5,
        score_threshold: float | None = None,
    ) -> list[dict]:
        """Faces in the wild for image files (``mnet faces``; a generic ``mnet predict`` can call this):
        one ``{"image", "size", "faces": [{box, score, age, gender, gender_score, attributes}]}`` per file."""
        from ..data import load_rgb
        from .pipeline import AGE_GENDER_WEIGHTS, ATTRIBUTE_WEIGHTS, FacePipeline

        pipe = FacePipeline(
            detector=detector,
            age_gender=age_gender or AGE_GENDER_WEIGHTS,
            attributes=attributes or ATTRIBUTE_WEIGHTS,
            top_k=top_k,
            score_threshold=score_threshold,
        )
        out = []
        for path in paths:
            img = load_rgb(path)
            out.append({"image": str(path), "size": list(img.size), "faces": [f.to_dict() for f in pipe(img)]})
        return out

    # -- training through the engine --------------------------------------------------------------
    def _init_model(self, m: Mapping[str, Any], n_attr: int) -> nn.Module:
        alpha, res = float(m["alpha"]), int(m["resolution"])
        model = self.build_model(
            alpha=alpha, resolution=res, num_attributes=n_attr, dropout=float(m.get("dropout", 0.0))
        )
        if m.get("weights"):
            model.layers.load_state_dict(
                {
                    k.removeprefix("layers."): v
                    for k, v in backbone_state(m["weights"], source=m.get("source"), alpha=alpha).items()
                }
            )
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
        from ..engine import TrainParts

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
        label_weight = float(lcfg.get("label_weight", 0.0 if teacher else 1.0))
        data: torch.utils.data.Dataset = train_set
        if teacher:
            data = WithTeacher(train_set, self.teacher_probs(teacher, train_set, batch_size=int(d["batch_size"])))
        val_split = d.get("val_split", "val")
        evaluate = None
        if val_split:

            def evaluate(model: nn.Module) -> dict[str, Any]:
                r = self.evaluate(
                    model,
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
            "model_kwargs": {"alpha": float(m["alpha"]), "resolution": res, "num_attributes": len(names)},
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
