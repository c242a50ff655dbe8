"""TF-slim MobileNetV1 (``MobilenetV1/Conv2d_i_{depthwise,pointwise}``) → the suite's layout.

TF-slim's scopes map one to one onto the backbone: ``Conv2d_0`` → ``layers.0``,
``Conv2d_i_depthwise`` → ``layers.i.dw``, ``Conv2d_i_pointwise`` → ``layers.i.pw``,
``Logits/Conv2d_1c_1x1`` (a 1×1 conv over 1001 classes) → ``head.fc`` with the background row dropped.
BatchNorm is unfused with eps 0.001; kernels go HWIO → OIHW.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..entry import WeightsEntry
from ..formats import FormatError
from .common import ConvertedWeights, batchnorm, depthwise_hwcm_to_oihw, drop_background, hwio_to_oihw

SCOPE = "MobilenetV1"
NUM_LAYERS = 14  # Conv2d_0 .. Conv2d_13 (paper Table 1)


def _bn(get: Callable[[str], np.ndarray], scope: str, prefix: str, has: Callable[[str], bool]) -> dict[str, np.ndarray]:
    gamma = get(f"{scope}/BatchNorm/gamma") if has(f"{scope}/BatchNorm/gamma") else None
    return batchnorm(
        prefix,
        gamma,
        get(f"{scope}/BatchNorm/beta"),
        get(f"{scope}/BatchNorm/moving_mean"),
        get(f"{scope}/BatchNorm/moving_variance"),
    )


def tfslim_state_dict(tensors: dict[str, np.ndarray], source: str, *, num_classes: int = 1000) -> ConvertedWeights:
    """Map TF-slim MobileNetV1 variables (name → array) to the suite's state dict."""

    def has(name: str) -> bool:
        return name in tensors

    def get(name: str) -> np.ndarray:
        try:
            return tensors[name]
        except KeyError:
            raise FormatError(f"{source}: no tensor {name!r}: not a TF-slim MobileNetV1 graph/checkpoint") from None

    sd: dict[str, np.ndarray] = {}
    sd["layers.0.conv.weight"] = hwio_to_oihw(get(f"{SCOPE}/Conv2d_0/weights"))
    sd.update(_bn(get, f"{SCOPE}/Conv2d_0", "layers.0.bn", has))
    for i in range(1, NUM_LAYERS):
        dw, pw = f"{SCOPE}/Conv2d_{i}_depthwise", f"{SCOPE}/Conv2d_{i}_pointwise"
        sd[f"layers.{i}.dw.conv.weight"] = depthwise_hwcm_to_oihw(get(f"{dw}/depthwise_weights"))
        sd.update(_bn(get, dw, f"layers.{i}.dw.bn", has))
        sd[f"layers.{i}.pw.conv.weight"] = hwio_to_oihw(get(f"{pw}/weights"))
        sd.update(_bn(get, pw, f"layers.{i}.pw.bn", has))
    meta: dict = {}
    logits = f"{SCOPE}/Logits/Conv2d_1c_1x1"
    if has(f"{logits}/weights"):
        w = get(f"{logits}/weights")[0, 0].T  # [1, 1, C, K] → [K, C]
        b = get(f"{logits}/biases")
        if w.shape[0] == num_classes + 1:
            w, b, meta["class_map"] = drop_background(w, b, num_classes)
        sd["head.fc.weight"] = np.ascontiguousarray(w, dtype=np.float32)
        sd["head.fc.bias"] = np.ascontiguousarray(b, dtype=np.float32)
    return ConvertedWeights(sd, meta)


def _graph_bn_eps(consts: dict[str, np.ndarray]) -> float | None:
    """The eps TF-slim baked into the graph (``.../BatchNorm/batchnorm/add/y``), if present."""
    eps = {
        float(v.reshape(-1)[0]) for k, v in consts.items() if k.endswith("BatchNorm/batchnorm/add/y") and v.size == 1
    }
    if len(eps) > 1:
        raise FormatError(f"graph uses several BatchNorm eps values {sorted(eps)}")
    return eps.pop() if eps else None


def convert_graphdef(path: str | Path, entry: WeightsEntry) -> ConvertedWeights:
    """A TF-slim MobileNetV1 frozen GraphDef (``*_frozen.pb``) → suite weights."""
    from ..formats.graphdef import read_graphdef

    graph = read_graphdef(path)
    consts = graph.constants()
    out = tfslim_state_dict(consts, str(path), num_classes=entry.model_kwargs.get("num_classes", 1000))
    eps = _graph_bn_eps(consts)
    want = entry.model_kwargs.get("bn_eps", 1e-3)
    if eps is not None and not np.isclose(eps, want, rtol=1e-4):
        raise FormatError(f"{path}: graph BatchNorm eps is {eps}, entry {entry.name} expects {want}")
    pads = {n.attrs.get("padding") for n in graph.nodes if n.op in ("Conv2D", "DepthwiseConv2dNative")}
    out.meta.update(
        bn_eps=eps if eps is not None else want,
        tf_padding=sorted(p for p in pads if p),
        ignored=sorted({k.split("/")[0] for k in consts if not k.startswith(SCOPE)}),
    )
    return out


def convert_checkpoint(path: str | Path, entry: WeightsEntry) -> ConvertedWeights:
    """A TF-slim MobileNetV1 checkpoint (``mobilenet_v1_*.ckpt`` prefix, ``.index`` or data file) → suite weights.
    Raw variables are used (not their ``ExponentialMovingAverage`` shadows), as the frozen graphs do."""
    from ..formats.tfcheckpoint import read_checkpoint

    out = tfslim_state_dict(read_checkpoint(path), str(path), num_classes=entry.model_kwargs.get("num_classes", 1000))
    out.meta["bn_eps"] = entry.model_kwargs.get("bn_eps", 1e-3)
    return out


def convert_tfslim(path: str | Path, entry: WeightsEntry) -> ConvertedWeights:
    """Either TF-slim release format: a checkpoint (``.index`` / ``.data-*`` / ``.ckpt``) or a frozen GraphDef."""
    p = Path(path)
    if p.suffix in (".index", ".ckpt") or ".data-" in p.name or ".ckpt." in p.name:
        return convert_checkpoint(p, entry)
    return convert_graphdef(p, entry)
