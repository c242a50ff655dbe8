"""Face models on the shared backbone: a multi-label attribute head and an age/gender head.

* ``attributes``: MobileNetV1 + one linear layer with one logit per attribute (sigmoid each), the
  face-attribute classifier of the paper's Sec. 4.4 / Table 12.
* ``age_gender``: MobileNetV1 + Linear(1024α → 256) + ReLU, then gender (1 logit, sigmoid > 0.5 =
  male) and age (100-way softmax; the expected value is the age), the layout of the "faceres-deep"
  model this suite imports. The output is one (N, 101) tensor, ``[gender logit, age logits...]``,
  so it exports as a single array.
* ``retinaface``: the RetinaFace MobileNet-0.25 face detector (:mod:`.retinaface`), which finds the
  faces the other two describe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mnet.backbone import MobileNetV1, mobilenet_v1

from ..base import Sigmoid
from .celeba import CELEBA_ATTRIBUTES


class AgeGenderHead(nn.Module):
    """Global pool → feats (Linear + ReLU) → [gender logit | age logits]."""

    def __init__(self, in_features: int, hidden: int = 256, num_ages: int = 100) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feats = nn.Linear(in_features, hidden)
        self.gender = nn.Linear(hidden, 1)
        self.age = nn.Linear(hidden, num_ages)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        h = torch.relu(self.feats(self.pool(x).flatten(1)))
        return h if pre_logits else torch.cat([self.gender(h), self.age(h)], dim=1)


def decode_age_gender(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1 + ages) outputs → (age = Σ k · softmax_k, probability of male)."""
    probs = out[:, 1:].softmax(dim=1)
    ages = torch.arange(probs.shape[1], dtype=probs.dtype, device=probs.device)
    return (probs * ages).sum(dim=1), torch.sigmoid(out[:, 0])


def attribute_model(
    *, alpha: float, resolution: int, num_attributes: int = len(CELEBA_ATTRIBUTES), **kw
) -> MobileNetV1:
    return mobilenet_v1(alpha=alpha, resolution=resolution, num_classes=num_attributes, **kw)


def age_gender_model(*, alpha: float, resolution: int, hidden: int = 256, num_ages: int = 100, **kw) -> MobileNetV1:
    model = mobilenet_v1(alpha=alpha, resolution=resolution, num_classes=0, **kw)
    model.head = AgeGenderHead(model.num_features, hidden, num_ages)
    return model


class AgeGender(nn.Module):
    """The age/gender model → ``{"age": expected age, "male": probability of male}`` (the ``age_gender`` kind)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.model(x).float()
        age, male = decode_age_gender(out)
        return {"age": age, "male": male, "finite": torch.isfinite(out).all(dim=1)}


def retinaface_model(*, alpha: float, resolution: int, **kw) -> nn.Module:
    from .retinaface import RetinaFace

    return RetinaFace(alpha=alpha, resolution=resolution, **kw)


def retinaface_network(model: nn.Module) -> nn.Module:
    from .retinaface import RetinaFaceWithNMS

    return RetinaFaceWithNMS(model)


@dataclass(frozen=True)
class FaceModel:
    """One kind of face model: how to build it, and its inference network and output kind."""

    build: Callable[..., nn.Module]
    network: Callable[[nn.Module], nn.Module]
    kind: str


#: head name (``model_kwargs["head"]``) → the face model of that kind
FACE_MODELS: dict[str, FaceModel] = {
    "attributes": FaceModel(attribute_model, Sigmoid, "attributes"),
    "age_gender": FaceModel(age_gender_model, AgeGender, "age_gender"),
    "retinaface": FaceModel(retinaface_model, retinaface_network, "boxes"),
}
