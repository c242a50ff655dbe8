"""Parameters and Mult-Adds by the paper's convention (Section 3, Tables 2, 4, 6, 7, 9).

Only convolution and fully-connected weights count; biases and BatchNorm do not. A conv layer
costs ``H_out · W_out · C_out · (C_in / groups) · K_h · K_w`` Mult-Adds, a linear layer
``in · out``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str  # "conv" | "depthwise" | "pointwise" | "fc"
    params: int
    mult_adds: int
    output_shape: tuple[int, ...]


@dataclass
class Cost:
    """Totals and the per-layer breakdown of one forward pass at batch 1."""

    layers: list[LayerCost] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(c.params for c in self.layers)

    @property
    def mult_adds(self) -> int:
        return sum(c.mult_adds for c in self.layers)

    def by_kind(self) -> dict[str, tuple[float, float]]:
        """Share of Mult-Adds and of params per layer kind, in percent (the paper's Table 2)."""
        ma, pa = defaultdict(int), defaultdict(int)
        for c in self.layers:
            ma[c.kind] += c.mult_adds
            pa[c.kind] += c.params
        return {k: (100.0 * ma[k] / self.mult_adds, 100.0 * pa[k] / self.params) for k in ma}


def layer_kind(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return "fc"
    assert isinstance(module, nn.Conv2d)
    if module.groups > 1 and module.groups == module.in_channels:
        return "depthwise"
    if module.kernel_size == (1, 1):
        return "pointwise"
    return "conv"


def count_cost(
    model: nn.Module,
    input_size: int | tuple[int, int],
    forward: Callable[[nn.Module, torch.Tensor], object] | None = None,
) -> Cost:
    """Count params and Mult-Adds of every conv and linear layer a forward pass at batch 1 runs.

    ``forward(model, x)`` overrides how the model is called (for heads that need more than ``x``).
    Layers that run twice are counted twice; layers that never run are not counted.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    names = {m: n for n, m in model.named_modules()}
    cost = Cost()

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        params = module.weight.numel()
        if isinstance(module, nn.Linear):
            mult_adds = module.in_features * module.out_features * (output.numel() // module.out_features)
        else:
            per_out = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
            mult_adds = output.numel() * per_out
        cost.layers.append(LayerCost(names[module], layer_kind(module), params, mult_adds, tuple(output.shape)))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            x = torch.zeros(1, 3, h, w)
            (forward or (lambda m, t: m(t)))(model, x)
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    return cost
