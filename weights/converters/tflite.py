"""TFLite MobileNetV1 classifiers (uint8 quantization-aware-trained releases) → suite weights.

The TFLite graph is a chain: CONV_2D (stem), then 13 × (DEPTHWISE_CONV_2D, CONV_2D), AVERAGE_POOL_2D,
CONV_2D 1×1 (1001 logits), RESHAPE, SOFTMAX. BatchNorm is folded into each conv's bias, weights are
uint8/int8 with scales and zero points: they are dequantized, and each folded bias becomes an
equivalent BatchNorm (weight 1, bias b, mean 0, var 1 − eps). Layers are matched by their position
in the chain, and each one's stride, padding and activation are checked against the architecture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnet.backbone import MOBILENET_V1_TABLE

from ..entry import WeightsEntry
from ..formats import FormatError
from .common import ConvertedWeights, drop_background, folded_bias_as_batchnorm, ohwi_to_oihw, tflite_depthwise_to_oihw

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _expected_layers() -> list[tuple[str, str, int]]:
    """(suite prefix, TFLite op, stride) for every conv of the body, in graph order (Table 1)."""
    out = [("layers.0", "CONV_2D", MOBILENET_V1_TABLE[0].stride)]
    for i, spec in enumerate(MOBILENET_V1_TABLE[1:], start=1):
        out += [(f"layers.{i}.dw", "DEPTHWISE_CONV_2D", spec.stride), (f"layers.{i}.pw", "CONV_2D", 1)]
    return out


def convert_tflite_classifier(path: str | Path, entry: WeightsEntry) -> ConvertedWeights:
    from ..formats.tflite import read_tflite

    model = read_tflite(path)
    convs = [op for op in model.operators if op.opcode in CONV_OPS]
    layers = _expected_layers()
    if len(convs) != len(layers) + 1:
        raise FormatError(f"{path}: {len(convs)} conv ops, a MobileNetV1 classifier has {len(layers) + 1}")
    eps = float(entry.model_kwargs.get("bn_eps", 1e-3))
    sd: dict[str, np.ndarray] = {}
    for (prefix, kind, stride), op in zip(layers, convs):
        opts = op.options
        got = (op.opcode, opts.get("StrideH"), opts.get("Padding"), opts.get("FusedActivationFunction"))
        if got != (kind, stride, "SAME", "RELU6"):
            raise FormatError(
                f"{path}: op {op.index} is {got}, expected ({kind}, stride {stride}, SAME, RELU6) for {prefix}"
            )
        w = model.tensors[op.inputs[1]].numpy()
        sd[f"{prefix}.conv.weight"] = tflite_depthwise_to_oihw(w) if kind == "DEPTHWISE_CONV_2D" else ohwi_to_oihw(w)
        bias = (
            model.tensors[op.inputs[2]].numpy()
            if len(op.inputs) > 2 and op.inputs[2] >= 0
            else np.zeros(w.shape[0 if kind == "CONV_2D" else 3])
        )
        sd.update(folded_bias_as_batchnorm(f"{prefix}.bn", bias.astype(np.float32), eps))
    logits = convs[-1]
    w = model.tensors[logits.inputs[1]].numpy()[:, 0, 0, :]  # [K, 1, 1, C] → [K, C]
    b = model.tensors[logits.inputs[2]].numpy().astype(np.float32)
    meta: dict = {
        "bn_folded": True,
        "dequantized_from": sorted({str(model.tensors[op.inputs[1]].dtype) for op in convs}),
    }
    num_classes = entry.model_kwargs.get("num_classes", 1000)
    if w.shape[0] == num_classes + 1:
        w, b, meta["class_map"] = drop_background(w, b, num_classes)
    sd["head.fc.weight"] = np.ascontiguousarray(w, dtype=np.float32)
    sd["head.fc.bias"] = np.ascontiguousarray(b, dtype=np.float32)
    inp = model.tensors[model.inputs[0]]
    if inp.quantization is not None:
        meta["input_quantization"] = {
            "scale": inp.quantization.scale.tolist(),
            "zero_point": inp.quantization.zero_point.tolist(),
        }
    return ConvertedWeights(sd, meta)
