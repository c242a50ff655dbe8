"""Import the official SSD-MobileNetV1 weights into :class:`~tasks.detection.model.SSD`.

- TFLite (TF OD API ``ssd_mobilenet_v1_coco`` quantized, the TF Lite hosted model
  ``coco_ssd_mobilenet_v1_1.0_quant_2018_06_29``): uint8 weights dequantized, BatchNorm folded into
  conv biases (loaded as an exactly equivalent BatchNorm), anchors and post-process options read from
  the file and checked against ours.
- TF.js (face-api.js ``ssd_mobilenetv1_model``): the same layout at 512×512 with 1 + 2 classes.

TF box predictors emit codes as (ty, tx, th, tw); ours are (tx, ty, tw, th), so each anchor's four box
channels are permuted.
"""

from __future__ import annotations

import re
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .anchors import AnchorConfig, generate_anchors

#: per anchor, TF (ty, tx, th, tw) → ours (tx, ty, tw, th)
_BOX_PERM = [1, 0, 3, 2]
EPS = 1e-3  # TF-slim BatchNorm epsilon (the backbone and extra layers)


def box_channels_to_xy(w: np.ndarray) -> np.ndarray:
    """Permute a box predictor's output channels (dim 0: anchor-major, 4 codes minor) from TF's order."""
    n = w.shape[0]
    return w.reshape(n // 4, 4, *w.shape[1:])[:, _BOX_PERM].reshape(w.shape)


def feature_shapes(resolution: int, num_layers: int = 6) -> list[tuple[int, int]]:
    """Map sizes under TF SAME padding: ceil(size / 16), ceil(size / 32), then halving (ceil)."""
    sizes = [-(-resolution // 16), -(-resolution // 32)]
    while len(sizes) < num_layers:
        sizes.append(-(-sizes[-1] // 2))
    return [(s, s) for s in sizes]


def check_anchors(
    file_anchors_cxcywh: np.ndarray, resolution: int, tolerance: float, config: AnchorConfig | None = None
) -> float:
    """Max |ours − file| over all anchors for the anchor config (default ssd_mobilenet_v1's); ValueError
    if larger than ``tolerance`` (half a quantization step for uint8 anchors)."""
    config = config or AnchorConfig()
    ours = generate_anchors(config, feature_shapes(resolution), (resolution, resolution)).numpy()
    if ours.shape != file_anchors_cxcywh.shape:
        raise ValueError(f"file has {len(file_anchors_cxcywh)} anchors, the ssd_mobilenet_v1 config gives {len(ours)}")
    diff = float(np.abs(ours - file_anchors_cxcywh).max())
    if diff > tolerance:
        raise ValueError(f"anchors in the file differ from the config's by {diff:.4g} (> {tolerance:.4g})")
    return diff


def _conv(sd: dict, prefix: str, weight_oihw: np.ndarray, bias: np.ndarray, bn: bool) -> None:
    from mnet.weights.converters.common import folded_bias_as_batchnorm

    sd[f"{prefix}.conv.weight" if bn else f"{prefix}.weight"] = np.ascontiguousarray(weight_oihw, np.float32)
    if bn:
        sd.update(folded_bias_as_batchnorm(f"{prefix}.bn", bias, EPS))
    else:
        sd[f"{prefix}.bias"] = np.ascontiguousarray(bias, np.float32)


# -- TFLite ------------------------------------------------------------------------------------------
#: (pattern, name → suite module) rules, first match wins
LayerRules = list[tuple[re.Pattern, Callable[[re.Match], str]]]

_TFLITE_LAYERS: LayerRules = [
    (re.compile(r"MobilenetV1/Conv2d_0/"), lambda m: "backbone.layers.0"),
    (re.compile(r"MobilenetV1/Conv2d_(\d+)_depthwise/"), lambda m: f"backbone.layers.{m[1]}.dw"),
    (re.compile(r"MobilenetV1/Conv2d_(\d+)_pointwise/"), lambda m: f"backbone.layers.{m[1]}.pw"),
    (re.compile(r"Conv2d_13_pointwise_1_Conv2d_(\d+)_1x1"), lambda m: f"extras.{int(m[1]) - 2}.0"),
    (re.compile(r"Conv2d_13_pointwise_2_Conv2d_(\d+)_3x3"), lambda m: f"extras.{int(m[1]) - 2}.1"),
    (re.compile(r"BoxPredictor_(\d+)/BoxEncodingPredictor/"), lambda m: f"head.box.{m[1]}"),
    (re.compile(r"BoxPredictor_(\d+)/ClassPredictor/"), lambda m: f"head.cls.{m[1]}"),
]


def module_for(rules: LayerRules, name: str) -> str | None:
    """The suite module a tensor/scope name maps to: the first rule whose pattern is found in it."""
    for pattern, target in rules:
        m = pattern.search(name)
        if m:
            return target(m)
    return None


def convert_tflite_ssd(path: str | Path, entry: Any = None):
    """``ssd_mobilenet_v1_coco_quant.tflite`` → SSD state dict (+ the file's anchors and NMS options)."""
    from mnet.weights.converters.common import ConvertedWeights, ohwi_to_oihw, tflite_depthwise_to_oihw
    from mnet.weights.formats.tflite import read_tflite

    model = read_tflite(path)
    tensors = model.tensors
    sd: dict[str, np.ndarray] = {}
    for op in model.operators:
        if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        w_t, b_t = tensors[op.inputs[1]], tensors[op.inputs[2]]
        target = module_for(_TFLITE_LAYERS, w_t.name)
        if target is None:
            raise ValueError(f"{path}: conv weight {w_t.name!r} matches no SSD layer")
        w = tflite_depthwise_to_oihw(w_t.numpy()) if op.opcode == "DEPTHWISE_CONV_2D" else ohwi_to_oihw(w_t.numpy())
        b = b_t.numpy()
        is_head = target.startswith("head.")
        if target.startswith("head.box."):
            w, b = box_channels_to_xy(w), box_channels_to_xy(b)
        # (ReLU6 is not a fused op here: uint8 outputs quantized to [0, 6] clamp as it does)
        _conv(sd, target, w, b, bn=not is_head)
    post = next((op for op in model.operators if op.opcode == "TFLite_Detection_PostProcess"), None)
    meta: dict[str, Any] = {"arch": "ssd_mobilenet_v1"}
    if post is not None:
        opts = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in post.options.items()}
        meta["tflite_postprocess"] = opts
        scales = (opts.get("x_scale"), opts.get("y_scale"), opts.get("w_scale"), opts.get("h_scale"))
        if scales != (10.0, 10.0, 5.0, 5.0):
            raise ValueError(f"{path}: box coder scales {scales} differ from (10, 10, 5, 5)")
        anchors = tensors[post.inputs[2]]
        yxhw = anchors.numpy()
        step = float(anchors.quantization.scale.max()) if anchors.quantization is not None else 1e-6
        meta["anchors_max_abs_diff"] = check_anchors(yxhw[:, [1, 0, 3, 2]], 300, step / 2 + 1e-6)
        meta["num_anchors"] = int(len(yxhw))
    return ConvertedWeights(sd, meta)


# -- TF.js (face-api.js) -----------------------------------------------------------------------------
FACEAPI_MANIFEST = "ssd_mobilenetv1_model-weights_manifest.json"
#: face-api.js's detector came from a 2017 TF OD API: same config, interpolated box second
FACEAPI_ANCHORS = AnchorConfig(interpolated_after_unit_ratio=True)

_TFJS_LAYERS: LayerRules = [
    (re.compile(r"^MobilenetV1/Conv2d_0_pointwise$"), lambda m: "backbone.layers.0"),
    (re.compile(r"^MobilenetV1/Conv2d_(\d+)_depthwise$"), lambda m: f"backbone.layers.{m[1]}.dw"),
    (re.compile(r"^MobilenetV1/Conv2d_(\d+)_pointwise$"), lambda m: f"backbone.layers.{m[1]}.pw"),
    (re.compile(r"^Prediction/Conv2d_(\d+)_pointwise$"), lambda m: f"extras.{int(m[1]) // 2}.{int(m[1]) % 2}"),
    (re.compile(r"^Prediction/BoxPredictor_(\d+)/BoxEncodingPredictor$"), lambda m: f"head.box.{m[1]}"),
    (re.compile(r"^Prediction/BoxPredictor_(\d+)/ClassPredictor$"), lambda m: f"head.cls.{m[1]}"),
]


def _tfjs_layer(scope: str, w: dict[str, np.ndarray], target: str, sd: dict[str, np.ndarray]) -> None:
    """One conv scope: kernel (HWIO or depthwise HWCM) + BatchNorm (real, or folded into an offset)
    or, for the heads, a bias."""
    from mnet.weights.converters.common import batchnorm, depthwise_hwcm_to_oihw, hwio_to_oihw

    if f"{scope}/depthwise_weights" in w:
        kernel = depthwise_hwcm_to_oihw(w[f"{scope}/depthwise_weights"])
    else:
        kernel = hwio_to_oihw(w[f"{scope}/weights"])
    if target.startswith("head."):
        bias = w[f"{scope}/biases"]
        if target.startswith("head.box."):
            kernel, bias = box_channels_to_xy(kernel), box_channels_to_xy(bias)
        _conv(sd, target, kernel, bias, bn=False)
    elif f"{scope}/BatchNorm/moving_mean" in w:
        sd[f"{target}.conv.weight"] = kernel
        bn = f"{scope}/BatchNorm/"
        sd.update(
            batchnorm(
                f"{target}.bn", w.get(bn + "gamma"), w[bn + "beta"], w[bn + "moving_mean"], w[bn + "moving_variance"]
            )
        )
    else:
        _conv(sd, target, kernel, w[f"{scope}/convolution_bn_offset"], bn=True)


def convert_tfjs_faceapi_ssd(path: str | Path, entry: Any = None):
    """face-api.js ``ssd_mobilenetv1_model-weights_manifest.json`` (+ ``.bin`` beside it; or their
    folder) → SSD state dict, with the file's 5,118 anchors checked against the config at 512×512."""
    from mnet.weights.converters.common import ConvertedWeights
    from mnet.weights.formats.tfjs import read_tfjs

    path = Path(path)
    if path.is_dir():
        path = path / FACEAPI_MANIFEST
    if tarfile.is_tarfile(path):  # the npm package: manifest + shard under package/model/
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(path) as t:
                members = [
                    m for m in t.getmembers() if m.isfile() and Path(m.name).name.startswith("ssd_mobilenetv1_model")
                ]
                for m in members:
                    (Path(tmp) / Path(m.name).name).write_bytes(t.extractfile(m).read())  # type: ignore[union-attr]
            w = read_tfjs(Path(tmp) / FACEAPI_MANIFEST).weights
    else:
        w = read_tfjs(path).weights
    sd: dict[str, np.ndarray] = {}
    scopes = sorted({k.rsplit("/", 1)[0] for k in w if k.endswith(("/weights", "/depthwise_weights"))})
    for scope in scopes:
        target = module_for(_TFJS_LAYERS, scope)
        if target is None:
            raise ValueError(f"{path}: weights scope {scope!r} matches no SSD layer")
        _tfjs_layer(scope, w, target, sd)
    meta: dict[str, Any] = {"arch": "ssd_mobilenet_v1"}
    if "Output/extra_dim" in w:  # anchors as (ymin, xmin, ymax, xmax)
        y0, x0, y1, x1 = np.moveaxis(w["Output/extra_dim"].reshape(-1, 4).astype(np.float64), -1, 0)
        cxcywh = np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], -1).astype(np.float32)
        meta["anchors_max_abs_diff"] = check_anchors(cxcywh, 512, 1e-5, FACEAPI_ANCHORS)
        meta["num_anchors"] = int(len(cxcywh))
    if "Preprocessor/mul/x" in w:
        meta["input_scale"] = [float(w["Preprocessor/mul/x"]), -float(w["Preprocessor/sub/y"])]
    return ConvertedWeights(sd, meta)
