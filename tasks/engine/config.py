"""Run configuration: a YAML file, the declared defaults under it, ``key=value`` overrides on top.

Keys are dotted paths (``optim.lr=0.01``, ``train.epochs=3``); values are parsed as YAML scalars, so
``train.amp=bf16``, ``train.ema.decay=0.999``, ``model.weights=null`` and ``data.scale=[0.5,1.0]`` work.

Every key is declared (:mod:`mnet.tasks.schema`): the engine's sections here (:data:`ENGINE_SCHEMA`), a
task's ``model``/``data``/``loss``/``augment`` keys in its ``config_schema``. An unknown key fails with its
full name and the nearest valid one; a value of the wrong type or range names the key.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mnet.tasks.schema import (
    UNSET,
    Bool,
    ConfigError,
    Int,
    Key,
    ListOf,
    Num,
    OneOf,
    Section,
    Str,
    defaults,
    merge,
    resolve,
)

from .optim import NO_DECAY_RULES, OPTIMIZERS, SCHEDULES

_FREE = {"changes_training": False}  # may differ when a run is resumed: how it runs, not what it learns

#: every key the engine reads, with its kind and default. The task sections are open here: a task's
#: ``config_schema`` declares their keys (then they are closed); ``data`` has the engine's loader keys.
ENGINE_SCHEMA = Section(
    {
        "task": Key(Str(), None, null=True, doc="the registered task this config trains"),
        "seed": Key(Int(0), 0),
        "device": Key(Str(), "auto", **_FREE, doc="auto | cpu | cuda | cuda:N"),
        "model": Section(open=True),
        "data": Section(
            {
                "batch_size": Key(Int(1), 32, doc="images per batch and process"),
                "num_workers": Key(Int(0), 0, **_FREE, doc="DataLoader worker processes (the order is the same)"),
                "drop_last": Key(Bool(), True),
            },
            open=True,
        ),
        "loss": Section(open=True),
        "augment": Section(open=True),
        "optim": Section(
            {
                "name": Key(OneOf(tuple(OPTIMIZERS)), "sgd"),
                "lr": Key(Num(0), 0.01),
                "momentum": Key(Num(0, 1), 0.9),
                "weight_decay": Key(Num(0), 4e-5),
                # the paper puts "very little or no weight decay on the depthwise filters"; BatchNorm likewise
                "no_decay": Key(ListOf(OneOf(tuple(NO_DECAY_RULES))), ["depthwise", "norm"]),
                "backbone_lr_mult": Key(Num(0), 1.0),
                "rmsprop_alpha": Key(Num(0, 1), 0.9, doc="TF-slim's RMSprop decay"),
                "eps": Key(Num(0, lo_open=True), 1.0, doc="TF-slim's RMSprop epsilon (AdamW uses adamw_eps)"),
                "adamw_eps": Key(Num(0, lo_open=True), 1e-8),
                "betas": Key(ListOf(Num(0, 1, hi_open=True), 2), [0.9, 0.999]),
                "nesterov": Key(Bool(), False),
            }
        ),
        "schedule": Section(
            {
                "name": Key(OneOf(SCHEDULES), "cosine"),
                "warmup_epochs": Key(Num(0), 0.0),
                "warmup_start_factor": Key(Num(0, 1), 0.1),
                "min_lr_ratio": Key(Num(0, 1), 0.0, doc="cosine floor as a fraction of the base LR"),
                "step_epochs": Key(Num(0, lo_open=True), 1.0, doc="step: decay every this many epochs"),
                "gamma": Key(Num(0), 0.1),
            }
        ),
        "train": Section(
            {
                # may change on resume: the schedule then spans the new length (docs/training.md)
                "epochs": Key(Int(1), 1, **_FREE),
                "accum_steps": Key(Int(1), 1),
                "max_steps_per_epoch": Key(Int(1), None, null=True, doc="cap optimizer steps per epoch"),
                "amp": Key(
                    OneOf(("off", "bf16", "fp16", "auto"), aliases=((False, "off"), (True, "auto"))),
                    "off",
                    doc="bf16 on CPU; fp16 + GradScaler on CUDA; auto picks",
                ),
                "channels_last": Key(Bool(), False),
                "freeze_backbone": Key(Bool(), False),
                "freeze_bn": Key(Bool(), False, doc="keep the backbone's BatchNorm running statistics fixed"),
                "unfreeze_after": Key(Int(0), None, null=True, doc="epochs after which a frozen backbone trains"),
                "ema": Section({"decay": Key(Num(0, 1, hi_open=True), None, null=True), "warmup": Key(Bool(), True)}),
                "grad_clip": Key(Num(0, lo_open=True), None, null=True),
                "sync_bn": Key(Bool(), False),
                "eval_every": Key(Int(1), 1, **_FREE),
                "checkpoint_every_steps": Key(Int(1), None, null=True, **_FREE, doc="also checkpoint mid-epoch"),
                "log_every": Key(Int(1), 10, **_FREE),
                "progress": Key(Bool(), True, **_FREE),
                "threads": Key(Int(1), None, null=True, **_FREE),
            }
        ),
        "output": Section(
            {
                "dir": Key(Str(), None, null=True, **_FREE, doc="the run folder (default runs/<task>)"),
                "export": Key(Bool(), True, **_FREE, doc="write best/last .safetensors"),
            }
        ),
        "debug": Section(
            {"kill_at_step": Key(Int(1), None, null=True, **_FREE, doc="SIGKILL itself after this step (tests)")}
        ),
    }
)

#: the engine's defaults as plain data (every key that has one)
ENGINE_DEFAULTS: dict[str, Any] = defaults(ENGINE_SCHEMA)


def schema_for(task: Any = None) -> Section:
    """The engine's sections with ``task``'s declared ones merged in; a task that declares a schema owns
    its sections outright (the engine's open task sections close)."""
    declared: Mapping[str, Section] | None = getattr(task, "config_schema", None)
    if not declared:
        return ENGINE_SCHEMA
    unknown = set(declared) - set(ENGINE_SCHEMA.keys)
    if unknown:
        raise TypeError(f"task {getattr(task, 'name', task)!r} declares sections the engine lacks: {sorted(unknown)}")
    closed = {
        name: Section(keys={}, open=False)
        for name, spec in ENGINE_SCHEMA.keys.items()
        if isinstance(spec, Section) and spec.open and name not in declared
    }
    return merge(ENGINE_SCHEMA, Section({**closed, **declared}, open=False))


def resolve_config(cfg: Mapping[str, Any], task: Any = None) -> dict[str, Any]:
    """``cfg`` checked against the engine's and ``task``'s schema, defaults filled (idempotent)."""
    return resolve(cfg, schema_for(task))


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else copy.deepcopy(v)
        )
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``'optim.lr=0.1'`` → (['optim', 'lr'], 0.1)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from None
    return key.strip().split("."), value


def set_path(cfg: dict[str, Any], path: list[str], value: Any) -> None:
    node = cfg
    for i, part in enumerate(path[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {'.'.join(path)}: {'.'.join(path[: i + 1])} is {nxt!r}, not a section")
        node = nxt
    node[path[-1]] = value


def _task_named(name: Any) -> Any:
    """The registered task called ``name``, or None (a test double or no task named)."""
    if not isinstance(name, str):
        return None
    from mnet.tasks.base import TASKS
    from mnet.tasks.registry import TASK_SPECS, get_task

    if name in TASKS:
        return TASKS[name]
    return get_task(name) if name in TASK_SPECS else None


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (), *, task: Any = None) -> dict[str, Any]:
    """Defaults ← YAML file ← overrides, checked against the declared schema.

    ``task`` (a task object or registered name) picks the task's schema; without it, the config's own
    ``task:`` key does when it names a registered task. A config written for another task is refused.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
        raw = loaded
    for item in overrides:
        keys, value = parse_override(item)
        set_path(raw, keys, value)
    if isinstance(task, str):
        task = _task_named(task) or task
    if task is not None:
        name = getattr(task, "name", task)
        if raw.get("task") not in (None, name):
            where = f"config {path}" if path is not None else "the config"
            raise ConfigError(f"{where} is for task {raw['task']!r}, not {name!r}")
        raw["task"] = name
    else:
        task = _task_named(raw.get("task"))
    return resolve_config(raw, task)


def dump_config(cfg: Mapping[str, Any], path: str | Path) -> None:
    from .checkpoint import save_text

    save_text(path, yaml.safe_dump(dict(cfg), sort_keys=False))


__all__ = [
    "ENGINE_DEFAULTS",
    "ENGINE_SCHEMA",
    "UNSET",
    "ConfigError",
    "dump_config",
    "load_config",
    "resolve_config",
    "schema_for",
]
