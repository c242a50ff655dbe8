"""Building blocks: conv-BN-activation with TF "SAME" or symmetric padding."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import Activation, Padding


def tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) for one spatial dimension.

    TF pads so that ``out = ceil(in / stride)``, putting the odd pixel after: a 3×3 stride-2
    conv on an even input pads 0 before and 1 after (symmetric padding would shift the grid).
    """
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


#: activation name → module factory (``leaky_relu``: slope 0.1, as RetinaFace's MobileNet-0.25 body uses)
ACTIVATIONS = {
    "relu6": lambda: nn.ReLU6(inplace=True),
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
}


def make_activation(name: Activation) -> nn.Module:
    return ACTIVATIONS[name]()


class ConvBNAct(nn.Module):
    """Conv (no bias) → BatchNorm → activation, the unit every MobileNet layer is made of."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        *,
        padding: Padding = "tf_same",
        activation: Activation = "relu6",
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.tf_same = padding == "tf_same" and kernel_size > 1
        sym = 0 if self.tf_same else kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, sym, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            if self.stride == 1:  # odd kernel, stride 1: SAME is symmetric, whatever the size
                p = self.kernel_size // 2
                x = F.pad(x, (p, p, p, p))
            else:
                top, bottom = tf_same_pad(int(x.shape[-2]), self.kernel_size, self.stride)
                left, right = tf_same_pad(int(x.shape[-1]), self.kernel_size, self.stride)
                x = F.pad(x, (left, right, top, bottom))
        return self.act(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    """3×3 depthwise conv (one filter per channel) then 1×1 pointwise conv (paper Fig. 3)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, **kw) -> None:
        super().__init__()
        self.dw = ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, **kw)
        self.pw = ConvBNAct(in_channels, out_channels, 1, 1, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))
