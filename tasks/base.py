"""The Task interface and registry: each task plugs a head onto the shared backbone."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import nn

from mnet.backbone import Cost, count_cost

if TYPE_CHECKING:
    from .engine import TrainParts
    from .schema import Section


class Task(ABC):
    """One vision task on the MobileNet backbone.

    Subclasses say how to build the model at a given α × ρ and how to count its cost the way the
    paper does for that task; later they add data, loss, metrics and postprocessing.
    """

    #: registry key, used on the command line (``mnet compare --tasks NAME``)
    name: str = ""
    #: one line for listings
    description: str = ""
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

    @abstractmethod
    def build_model(self, *, alpha: float, resolution: int, **kwargs) -> nn.Module:
        """A freshly initialised model for this task."""

    def cost(self, model: nn.Module, resolution: int) -> Cost:
        """Params and Mult-Adds as the paper counts them for this task (default: the whole forward)."""
        return count_cost(model, resolution)

    def inference_fn(self, model: nn.Module) -> Callable[[torch.Tensor], object]:
        """What one timed inference runs: the model plus any postprocessing (decode, NMS)."""
        return model

    # -- the runnable network: what ``mnet export`` writes and a runtime (tasks/runtime) runs ---------
    def network(self, model: nn.Module) -> nn.Module:
        """The part of ``model`` that a runtime runs and ``mnet export`` writes: an image batch
        (N, 3, H, W) in, plain tensors out, no decode/NMS or data-dependent control flow.
        Default: the model itself."""
        return model

    def export_network(self, model: nn.Module, *, with_postprocess: bool = False) -> nn.Module:
        """What ``mnet export`` writes: :meth:`network`, or with ``with_postprocess`` the network plus the
        task's postprocessing as graph ops (tasks that support it; a module with ``dynamic_batch = False``
        is exported and checked at batch 1)."""
        if with_postprocess:
            raise ValueError(
                f"task {self.name!r} has no postprocessing to put inside the graph (its network's outputs are final)"
            )
        return self.network(model)

    def with_network(self, model: nn.Module, network: Callable[..., Any]) -> Callable[..., Any]:
        """``model`` (eval mode, same call signature and outputs as ``model(x, ...)``) with its
        :meth:`network` part replaced by ``network`` (a ``tasks.runtime.Runtime``). Default: ``network``."""
        return network

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

    def load_pretrained(self, weights: str | Path, *, source: str | Path | None = None) -> tuple[nn.Module, Any]:
        """(model in eval mode, :class:`weights.LoadedWeights`) for a weights entry or suite file of this
        task; tasks that can adapt other tasks' weights (dogs from ImageNet) override this."""
        from mnet.weights import build_pretrained

        model, w = build_pretrained(weights, source=source)
        if w.task != self.name:
            raise ValueError(f"weights {weights} are for task {w.task!r}, not {self.name!r}")
        return model, w

    def train_parts(self, cfg: Mapping[str, Any]) -> TrainParts:
        """Model, training data, loss and validation metrics for the engine (``mnet train``), built
        from the run's resolved config (``cfg['model']``, ``cfg['data']``, ``cfg['loss']``, ...)."""
        raise NotImplementedError(f"task {self.name!r} cannot be trained yet")

    # -- raw images in, results out: ``mnet predict``, the demo, any runtime (tasks/runtime) -------
    def preprocess(self, image: Any, spec: Callable[[Any], Any]) -> np.ndarray:
        """One decoded RGB PIL image → the model's float32 (3, H, W) input, as numpy.

        ``spec`` is the preprocessing recorded with the weights (``weights.Preprocess``: crop,
        resize, normalise; callable on an image). Override for tasks whose geometry differs (e.g.
        letterboxing); keep it numpy/PIL so the ONNX Runtime path needs no torch.
        """
        to_array = getattr(spec, "to_array", None)  # weights.Preprocess: the numpy path, no torch
        return to_array(image) if to_array is not None else np.asarray(spec(image), dtype=np.float32)

    def postprocess_options(self, model: nn.Module | None) -> dict[str, Any]:
        """Keywords that :meth:`postprocess` needs from the model beyond its outputs (e.g. detection's
        NMS settings); ``model`` is the PyTorch model, or an untrained one of the same build for an
        exported file (None when the file records no build). Default: none."""
        return {}

    def postprocess(
        self,
        outputs: Any,
        *,
        labels: Sequence[str] | None = None,
        top_k: int = 5,
        image_sizes: Sequence[tuple[int, int]] | None = None,
        **options: Any,
    ) -> list[dict[str, Any]]:
        """Batch outputs of :meth:`network` (numpy arrays in its output structure) → one JSON-ready dict
        per image.

        ``image_sizes`` are the original (width, height), for tasks that map boxes back; ``options``
        come from :meth:`postprocess_options`. The default
        is classification's: softmax over (N, C) logits → ``{"top_k": [{"index", "label", "prob"}, ...]}``.
        """
        logits = np.asarray(outputs[0] if isinstance(outputs, (list, tuple)) else outputs, dtype=np.float64)
        if logits.ndim != 2:
            raise ValueError(f"task {self.name!r}: expected (N, C) logits to postprocess, got shape {logits.shape}")
        if labels is not None and len(labels) != logits.shape[1]:
            raise ValueError(f"{len(labels)} labels for {logits.shape[1]} classes")
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
        k = min(top_k, probs.shape[1])
        results = []
        for row in probs:
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.argsort(-row[top])]
            results.append(
                {
                    "top_k": [
                        {"index": int(i), "label": labels[i] if labels else str(int(i)), "prob": float(row[i])}
                        for i in top
                    ]
                }
            )
        return results


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
