"""Pretrained weights → a ready model: build the architecture a weights file records, load, check.

The tasks layer's side of the weights registry (``mnet.weights`` holds files and recipes and never
imports task code; building a model needs the task that owns it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from mnet.weights import Preprocess, WeightsEntry
from mnet.weights.loader import LoadedWeights, check_state_dict, load_into, load_weights, register_conversion_check

from .inference import Predictor, TorchSession
from .registry import get_task

if TYPE_CHECKING:
    from .base import Task


@dataclass
class Pretrained:
    """A model in eval mode with what inference needs: its task, input recipe, labels and provenance."""

    model: nn.Module
    task: str
    preprocess: Preprocess
    labels: list[str] | None
    #: the registry entry or file the user named (shown with every result)
    name: str
    #: the suite ``.safetensors`` file the weights were read from (the key of cached exports)
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)


def build_entry_model(entry: WeightsEntry | LoadedWeights, **overrides: Any) -> nn.Module:
    """A freshly built model of the entry's task and architecture (no weights loaded)."""
    kwargs = dict(entry.model_kwargs)
    kwargs.update(overrides)
    return get_task(entry.task).build_model(**kwargs)


def check_conversion(entry: WeightsEntry, state_dict: dict[str, Any], source: str) -> None:
    """A converted original must fit the entry's model (α, class count, keys, shapes) before it is cached."""
    check_state_dict(build_entry_model(entry), state_dict, source, alpha=entry.alpha)


register_conversion_check(check_conversion)


def build_pretrained(
    name_or_path: str | Path, *, source: str | Path | None = None, task: str | None = None, **overrides: Any
) -> tuple[nn.Module, LoadedWeights]:
    """Build the weights' model and load them; (model in eval mode, the loaded weights).

    With ``task``, weights recorded for another task are refused (e.g. ImageNet classes offered as
    face attributes)."""
    weights = load_weights(name_or_path, source=source)
    if task is not None and weights.task != task:
        raise ValueError(f"{name_or_path}: these weights are for task {weights.task!r}, not {task!r}")
    model = build_entry_model(weights, **overrides)
    load_into(model, weights)
    return model.eval(), weights


def pretrained(loaded: LoadedWeights, model: nn.Module, name: str | Path, **changes: Any) -> Pretrained:
    """A :class:`Pretrained` for a model built from ``loaded`` (``changes`` override its fields)."""
    fields: dict[str, Any] = dict(
        model=model.eval(),
        task=loaded.task,
        preprocess=loaded.preprocess,
        labels=loaded.labels,
        name=str(name),
        path=loaded.path,
        meta=dict(loaded.meta),
        model_kwargs=loaded.model_kwargs,
    )
    fields.update(changes)
    return Pretrained(**fields)


def model_predictor(
    task: Task | str,
    model: nn.Module,
    preprocess: Preprocess,
    *,
    labels: list[str] | None = None,
    name: str = "model",
    threads: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Predictor:
    """A :class:`~mnet.tasks.inference.Predictor` running ``model`` (with its task's decoding) in PyTorch."""
    task = get_task(task) if isinstance(task, str) else task
    kind = task.output_kind(model)
    session = TorchSession(task.inference_network(model.eval()), threads=threads)
    return Predictor(task.name, kind, session, preprocess, labels, name, meta=dict(meta or {}))


def torch_predictor(p: Pretrained, *, threads: int | None = None) -> Predictor:
    """The pretrained model's :class:`~mnet.tasks.inference.Predictor` in PyTorch."""
    return model_predictor(
        p.task, p.model, p.preprocess, labels=p.labels, name=p.name, threads=threads, meta=p.model_kwargs
    )
