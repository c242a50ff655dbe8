"""Optimizers with parameter groups, and LR schedules with warm-up.

Parameter groups follow the paper (Sec. 3.2): "very little or no weight decay (l2 regularization) on the
depthwise filters since there are so few parameters in them"; BatchNorm parameters get none either.
Backbone parameters can take a lower learning rate (``backbone_lr_mult``) for fine-tuning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels


#: which parameters a ``no_decay`` entry exempts from weight decay: (module, param name) → bool
NO_DECAY_RULES: dict[str, Callable[[nn.Module, str], bool]] = {
    "depthwise": lambda m, n: _is_depthwise(m) and n == "weight",
    "norm": lambda m, n: isinstance(m, NORM_TYPES),
    "bias": lambda m, n: n == "bias",
}


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    no_decay: Iterable[str] = ("depthwise", "norm"),
    backbone: nn.Module | None = None,
    backbone_lr_mult: float = 1.0,
) -> list[dict[str, Any]]:
    """Split parameters into (backbone | rest) × (decay | no decay) groups; empty groups are dropped.

    Every group carries ``name`` so logs and tests can tell them apart.
    """
    rules = []
    for key in no_decay:
        if key not in NO_DECAY_RULES:
            raise ValueError(f"optim.no_decay: unknown entry {key!r}; choose from {', '.join(NO_DECAY_RULES)}")
        rules.append(NO_DECAY_RULES[key])
    in_backbone = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            decay = not any(rule(module, pname) for rule in rules)
            groups.setdefault((id(p) in in_backbone, decay), []).append(p)
    out = []
    for (is_bb, decay), params in sorted(groups.items()):
        out.append(
            {
                "name": f"{'backbone' if is_bb else 'head'}_{'decay' if decay else 'no_decay'}",
                "params": params,
                "lr": lr * (backbone_lr_mult if is_bb else 1.0),
                "weight_decay": weight_decay if decay else 0.0,
            }
        )
    return out


def _sgd(groups, o):
    return torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], nesterov=bool(o["nesterov"]))


def _rmsprop(groups, o):
    return torch.optim.RMSprop(groups, lr=o["lr"], alpha=o["rmsprop_alpha"], eps=o["eps"], momentum=o["momentum"])


def _adamw(groups, o):
    return torch.optim.AdamW(groups, lr=o["lr"], betas=tuple(o["betas"]), eps=o["adamw_eps"])


#: optimizer name → builder(param groups, optim config)
OPTIMIZERS: dict[str, Callable[[list[dict], Mapping[str, Any]], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "rmsprop": _rmsprop,
    "adamw": _adamw,
}


def build_optimizer(
    model: nn.Module, cfg: Mapping[str, Any], backbone: nn.Module | None = None
) -> torch.optim.Optimizer:
    name = cfg["name"]
    if name not in OPTIMIZERS:
        raise ValueError(f"optim.name: unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    num = {}
    for key in ("lr", "weight_decay", "backbone_lr_mult"):
        try:
            num[key] = float(cfg[key])
        except (TypeError, ValueError):
            raise ValueError(f"optim.{key} must be a number, got {cfg[key]!r}") from None
    groups = param_groups(
        model,
        lr=num["lr"],
        weight_decay=num["weight_decay"],
        no_decay=cfg["no_decay"],
        backbone=backbone,
        backbone_lr_mult=num["backbone_lr_mult"],
    )
    return OPTIMIZERS[name](groups, {**cfg, **num})


#: the LR schedules :class:`WarmupSchedule` knows (after the optional linear warm-up)
SCHEDULES: tuple[str, ...] = ("cosine", "step", "constant")


class WarmupSchedule:
    """LR factor at optimizer step ``t``: linear warm-up, then cosine / step / constant (picklable)."""

    def __init__(
        self,
        name: str,
        total_steps: int,
        steps_per_epoch: int,
        *,
        warmup_epochs: float = 0.0,
        warmup_start_factor: float = 0.1,
        min_lr_ratio: float = 0.0,
        step_epochs: float = 1.0,
        gamma: float = 0.1,
    ) -> None:
        if name not in SCHEDULES:
            raise ValueError(f"schedule.name: unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")
        self.name, self.total = name, max(1, total_steps)
        self.warmup = int(round(warmup_epochs * steps_per_epoch))
        self.start, self.min_ratio, self.gamma = warmup_start_factor, min_lr_ratio, gamma
        self.step_size = max(1, int(round(step_epochs * steps_per_epoch)))

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return self.start + (1.0 - self.start) * t / self.warmup
        if self.name == "constant":
            return 1.0
        if self.name == "step":
            return self.gamma ** ((t - self.warmup) // self.step_size)
        progress = min(1.0, (t - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], *, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    kw = {k: v for k, v in cfg.items() if k != "name"}
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupSchedule(cfg["name"], total_steps, steps_per_epoch, **kw))
