"""The Task interface and registry: each task plugs a head onto the shared backbone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from mnet.backbone import Cost, count_cost

if TYPE_CHECKING:
    from .pretrained import Pretrained
    from .schema import Section
    from .training import TrainParts


class Task(ABC):
    """One vision task on the MobileNet backbone.

    Subclasses say how to build the model at a given α × ρ and how to count its cost the way the
    paper does for that task; later they add data, loss, metrics and postprocessing.
    """

    #: registry key, used on the command line (``mnet compare --tasks NAME``); its description and
    #: default weights are in the catalogue (``mnet.tasks.registry.TASK_SPECS``)
    name: str = ""
    #: the key of ``evaluate``'s result that ``mnet compare`` reports (e.g. "top1", "AP", "mean_ap")
    primary_metric: str = ""
    #: registry tasks whose weights ``load_pretrained`` accepts (dogs also reads ImageNet classifiers)
    weights_tasks: tuple[str, ...] = ()
    #: folders under the shared data (``../shared``) whose real photos ``mnet export`` checks the exported
    #: model on, and calibrates int8 on, unless told otherwise
    check_images: tuple[str, ...] = ("data", "samples")
    calibration_images: tuple[str, ...] = ("data", "imagenet", "val")
    #: the training config sections :meth:`train_parts` reads (``model``, ``data``, ``loss``, ``augment``),
    #: declared key by key (:mod:`tasks.schema`); the engine refuses undeclared keys. None: not trainable
    config_schema: Mapping[str, Section] | None = None

    @property
    def description(self) -> str:
        from .registry import TASK_SPECS

        spec = TASK_SPECS.get(self.name)
        return spec.description if spec else ""

    @abstractmethod
    def build_model(self, *, alpha: float, resolution: int, **kwargs) -> nn.Module:
        """A freshly initialised model for this task."""

    def cost(self, model: nn.Module, resolution: int) -> Cost:
        """Params and Mult-Adds as the paper counts them for this task (default: the whole forward)."""
        return count_cost(model, resolution)

    # -- inference: the one contract every runtime, export, the CLI, eval and the demo share ------------
    def output_kind(self, model: nn.Module) -> str:
        """What :meth:`inference_network` outputs (a kind of :mod:`mnet.tasks.decode`); default ``classes``."""
        return "classes"

    def inference_network(self, model: nn.Module) -> nn.Module:
        """``model`` plus the task's decoding as graph ops: an image batch (N, 3, H, W) in, the final
        values of :meth:`output_kind` out as a dict of named tensors (``mnet.tasks.decode.OUTPUT_NAMES``).
        What PyTorch runs, what ``mnet export`` writes and what ONNX Runtime (or a web page) runs.
        Default: softmax over the model's logits."""
        return Softmax(model)

    def evaluate(
        self,
        model: nn.Module,
        data: str | Path,
        *,
        split: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        progress: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run the task's standard metric on a dataset in its official layout; return a flat dict
        of metric name → value (JSON-serialisable), including ``n``, the number of samples."""
        raise NotImplementedError(f"task {self.name!r} has no evaluation yet")

    def load_pretrained(self, weights: str | Path, *, source: str | Path | None = None) -> Pretrained:
        """The model of a weights entry or suite file of this task, in eval mode, with its recipe and
        labels; weights of another task are refused. Tasks that adapt other tasks' weights (dogs from an
        ImageNet classifier) override this."""
        from .pretrained import build_pretrained, pretrained

        model, w = build_pretrained(weights, source=source, task=self.name)
        return pretrained(w, model, weights)

    def train_parts(self, cfg: Mapping[str, Any]) -> TrainParts:
        """Model, training data, loss and validation metrics for the engine (``mnet train``), built
        from the run's resolved config (``cfg['model']``, ``cfg['data']``, ``cfg['loss']``, ...)."""
        raise NotImplementedError(f"task {self.name!r} cannot be trained yet")


class Softmax(nn.Module):
    """A classifier → ``{"probs": softmax(logits), "finite": all logits finite}`` (the ``classes`` kind)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.model(x).float()
        return {"probs": torch.softmax(logits, dim=1), "finite": torch.isfinite(logits).all(dim=1)}


class Sigmoid(nn.Module):
    """A multi-label model → ``{"probs": sigmoid(logits)}``, one independent probability per output."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.model(x).float()  # (a logit of +inf would pass as probability 1: flag it)
        return {"probs": torch.sigmoid(logits), "finite": torch.isfinite(logits).all(dim=1)}


_T = TypeVar("_T", bound=type[Task])
TASKS: dict[str, Task] = {}


def register_task(cls: _T) -> _T:
    """Class decorator adding one instance of ``cls`` to the registry under ``cls.name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a non-empty `name`")
    if cls.name in TASKS:
        raise KeyError(f"task {cls.name!r} is registered twice")
    TASKS[cls.name] = cls()
    return cls
