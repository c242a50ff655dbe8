"""Test helpers: write small TF-format files (GraphDef protobuf, TF.js) from numpy, for converter tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DT = {np.dtype("float32"): 1, np.dtype("int32"): 3}


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def shape_proto(shape) -> bytes:
    return b"".join(field(2, field(1, int(d))) for d in shape)


def tensor_proto(arr: np.ndarray, *, as_fill: bool = False) -> bytes:
    arr = np.asarray(arr)
    body = field(1, DT[arr.dtype]) + field(2, shape_proto(arr.shape))
    if as_fill:  # one float_val for a constant-filled tensor, as TF writes it
        body += field(5, np.float32(arr.ravel()[0]).tobytes())
    else:
        body += field(4, arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    return body


def attr(key: str, value_proto: bytes) -> bytes:
    return field(5, field(1, key.encode()) + field(2, value_proto))


def node(name: str, op: str, inputs=(), attrs: bytes = b"") -> bytes:
    body = field(1, name.encode()) + field(2, op.encode())
    body += b"".join(field(3, i.encode()) for i in inputs)
    return field(1, body + attrs)


def const_node(name: str, arr: np.ndarray, **kw) -> bytes:
    arr = np.asarray(arr)
    return node(name, "Const", attrs=attr("dtype", field(6, DT[arr.dtype])) + attr("value", field(8, tensor_proto(arr, **kw))))


def graphdef_bytes(consts: dict[str, np.ndarray]) -> bytes:
    return b"".join(const_node(k, v) for k, v in consts.items())


def suite_to_tfslim(sd: dict[str, np.ndarray], num_layers: int = 14) -> dict[str, np.ndarray]:
    """The inverse of the TF-slim converter (suite state dict → TF-slim variable names, TF layouts),
    adding a background row to the classifier, for round-trip tests."""
    out: dict[str, np.ndarray] = {}

    def bn(scope: str, prefix: str) -> None:
        for tf, pt in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
            out[f"{scope}/BatchNorm/{tf}"] = sd[f"{prefix}.{pt}"]

    out["MobilenetV1/Conv2d_0/weights"] = sd["layers.0.conv.weight"].transpose(2, 3, 1, 0)
    bn("MobilenetV1/Conv2d_0", "layers.0.bn")
    for i in range(1, num_layers):
        out[f"MobilenetV1/Conv2d_{i}_depthwise/depthwise_weights"] = sd[f"layers.{i}.dw.conv.weight"][:, 0].transpose(1, 2, 0)[..., None]
        bn(f"MobilenetV1/Conv2d_{i}_depthwise", f"layers.{i}.dw.bn")
        out[f"MobilenetV1/Conv2d_{i}_pointwise/weights"] = sd[f"layers.{i}.pw.conv.weight"].transpose(2, 3, 1, 0)
        bn(f"MobilenetV1/Conv2d_{i}_pointwise", f"layers.{i}.pw.bn")
    w, b = sd["head.fc.weight"], sd["head.fc.bias"]
    out["MobilenetV1/Logits/Conv2d_1c_1x1/weights"] = np.concatenate([np.zeros_like(w[:1]), w]).T[None, None]
    out["MobilenetV1/Logits/Conv2d_1c_1x1/biases"] = np.concatenate([np.zeros_like(b[:1]), b])
    out["MobilenetV1/MobilenetV1/Conv2d_0/BatchNorm/batchnorm/add/y"] = np.float32(1e-3)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def write_tfjs(folder: Path, weights: list[tuple[str, np.ndarray, dict | None]], *, model_json: bool = True) -> Path:
    """Write ``model.json`` (or a bare manifest) + one ``.bin``; quantize per entry spec {dtype, min, scale}."""
    specs, chunks = [], []
    for name, arr, quant in weights:
        spec = {"name": name, "shape": list(arr.shape), "dtype": str(arr.dtype)}
        if quant and quant["dtype"] in ("uint8", "uint16"):
            q = np.round((arr.astype(np.float64) - quant["min"]) / quant["scale"]).astype(quant["dtype"])
            spec["quantization"] = quant
            chunks.append(q.tobytes())
        elif quant and quant["dtype"] == "float16":
            spec["quantization"] = quant
            chunks.append(arr.astype("<f2").tobytes())
        else:
            chunks.append(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
        specs.append(spec)
    (folder / "group1-shard1of1.bin").write_bytes(b"".join(chunks))
    manifest = [{"paths": ["group1-shard1of1.bin"], "weights": specs}]
    path = folder / ("model.json" if model_json else "weights_manifest.json")
    doc = {"format": "graph-model", "modelTopology": {"node": []}, "weightsManifest": manifest} if model_json else manifest
    path.write_text(json.dumps(doc))
    return path
