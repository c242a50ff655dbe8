"""The Task interface and registry: each task plugs a head onto the shared backbone."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

import torch
from torch import nn

from backbone import Cost, count_cost

if TYPE_CHECKING:
    from .engine import TrainParts


class Task(ABC):
    """One vision task on the MobileNet backbone.

    Subclasses say how to build the model at a given α × ρ and how to count its cost the way the
    paper does for that task; later they add data, loss, metrics and postprocessing.
    """

    #: registry key, used on the command line (``mnet compare --tasks NAME``)
    name: str = ""
    #: one line for listings
    description: str = ""

    @abstractmethod
    def build_model(self, *, alpha: float, resolution: int, **kwargs) -> nn.Module:
        """A freshly initialised model for this task."""

    def cost(self, model: nn.Module, resolution: int) -> Cost:
        """Params and Mult-Adds as the paper counts them for this task (default: the whole forward)."""
        return count_cost(model, resolution)

    def inference_fn(self, model: nn.Module) -> Callable[[torch.Tensor], object]:
        """What one timed inference runs: the model plus any postprocessing (decode, NMS)."""
        return model

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

    def train_parts(self, cfg: Mapping[str, Any]) -> "TrainParts":
        """Model, training data, loss and validation metrics for the engine (``mnet train``), built
        from the run's resolved config (``cfg['model']``, ``cfg['data']``, ``cfg['loss']``, ...)."""
        raise NotImplementedError(f"task {self.name!r} cannot be trained yet")


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


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None
