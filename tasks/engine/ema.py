"""Exponential moving average of model weights (Polyak averaging), kept on the model's device."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """``ema = d·ema + (1-d)·w`` after each optimizer step; buffers (BN statistics) are copied.

    With ``warmup`` the decay ramps as ``min(d, (1+n)/(10+n))`` so early averages are not dominated by
    the initial weights.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema.decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self._param_names = {k for k, _ in self.module.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        ema_sd = self.module.state_dict()
        for k, v in model.state_dict().items():
            if k in self._param_names:
                ema_sd[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                ema_sd[k].copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
