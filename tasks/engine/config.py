"""Run configuration: a YAML file, engine defaults under it, ``key=value`` overrides on top.

Keys are dotted paths (``optim.lr=0.01``, ``train.epochs=3``); values are parsed as YAML scalars, so
``train.amp=bf16``, ``train.ema.decay=0.999``, ``model.weights=null`` and ``data.scale=[0.5,1.0]`` work.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

#: every key the engine reads, with its default; tasks add their own keys under ``model``/``data``/``loss``
ENGINE_DEFAULTS: dict[str, Any] = {
    "task": None,
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "model": {"alpha": None, "resolution": 224, "weights": None},  # alpha None: from the weights (else 1.0)
    "data": {"batch_size": 32, "num_workers": 0, "drop_last": True},
    "loss": {},
    "optim": {
        "name": "sgd",  # sgd | rmsprop | adamw
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 4e-5,
        # the paper puts "very little or no weight decay on the depthwise filters"; BatchNorm likewise
        "no_decay": ["depthwise", "norm"],  # any of: depthwise, norm, bias
        "backbone_lr_mult": 1.0,
        "rmsprop_alpha": 0.9,  # TF-slim's RMSprop decay
        "eps": 1.0,  # TF-slim's RMSprop epsilon (AdamW uses adamw_eps)
        "adamw_eps": 1e-8,
        "betas": [0.9, 0.999],
        "nesterov": False,
    },
    "schedule": {
        "name": "cosine",  # cosine | step | constant
        "warmup_epochs": 0.0,
        "warmup_start_factor": 0.1,
        "min_lr_ratio": 0.0,  # cosine floor as a fraction of the base LR
        "step_epochs": 1.0,  # step: decay every this many epochs
        "gamma": 0.1,
    },
    "train": {
        "epochs": 1,
        "accum_steps": 1,
        "max_steps_per_epoch": None,  # cap optimizer steps per epoch (quick runs, benchmarks)
        "amp": "off",  # off | bf16 | fp16 | auto (bf16 on CPU; fp16 + GradScaler on CUDA)
        "channels_last": False,
        "freeze_backbone": False,
        "freeze_bn": False,  # keep the backbone's BatchNorm running statistics fixed
        "unfreeze_after": None,  # epochs after which a frozen backbone starts training
        "ema": {"decay": None, "warmup": True},
        "grad_clip": None,
        "sync_bn": False,
        "eval_every": 1,
        "checkpoint_every_steps": None,  # also checkpoint mid-epoch every N optimizer steps
        "log_every": 10,
        "progress": True,
        "threads": None,
    },
    "output": {"dir": None, "export": True},
    "debug": {"kill_at_step": None},  # SIGKILL itself after this optimizer step (crash-recovery tests)
}


class ConfigError(ValueError):
    """A config key or value is wrong; the message names it."""


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
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {'.'.join(path)}: {'.'.join(path[: i + 1])} is {nxt!r}, not a section")
        node = nxt
    node[path[-1]] = value


def load_config(
    path: str | Path | None = None, overrides: Iterable[str] = (), *, defaults: Mapping[str, Any] = ENGINE_DEFAULTS
) -> dict[str, Any]:
    """Defaults ← YAML file ← overrides. Unknown engine keys are rejected (typos fail loudly)."""
    cfg = copy.deepcopy(dict(defaults))
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
        cfg = deep_merge(cfg, loaded)
    for item in overrides:
        keys, value = parse_override(item)
        set_path(cfg, keys, value)
    check_keys(cfg, defaults)
    return cfg


#: sections whose keys belong to the task (any key allowed)
TASK_SECTIONS = ("model", "data", "loss", "augment")


def check_keys(cfg: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = "") -> None:
    for k, v in cfg.items():
        name = f"{prefix}{k}"
        if not prefix and k in TASK_SECTIONS:
            continue
        if k not in defaults:
            raise ConfigError(f"unknown config key {name!r} (known here: {', '.join(sorted(defaults))})")
        if isinstance(defaults[k], Mapping) and defaults[k]:
            if not isinstance(v, Mapping):
                raise ConfigError(f"config key {name!r} must be a section, got {v!r}")
            check_keys(v, defaults[k], name + ".")


def dump_config(cfg: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
