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
    return node(
        name, "Const", attrs=attr("dtype", field(6, DT[arr.dtype])) + attr("value", field(8, tensor_proto(arr, **kw)))
    )


def graphdef_bytes(consts: dict[str, np.ndarray]) -> bytes:
    return b"".join(const_node(k, v) for k, v in consts.items())


def suite_to_tfslim(sd: dict[str, np.ndarray], num_layers: int = 14) -> dict[str, np.ndarray]:
    """The inverse of the TF-slim converter (suite state dict → TF-slim variable names, TF layouts),
    adding a background row to the classifier, for round-trip tests."""
    out: dict[str, np.ndarray] = {}

    def bn(scope: str, prefix: str) -> None:
        for tf, pt in (
            ("gamma", "weight"),
            ("beta", "bias"),
            ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"),
        ):
            out[f"{scope}/BatchNorm/{tf}"] = sd[f"{prefix}.{pt}"]

    out["MobilenetV1/Conv2d_0/weights"] = sd["layers.0.conv.weight"].transpose(2, 3, 1, 0)
    bn("MobilenetV1/Conv2d_0", "layers.0.bn")
    for i in range(1, num_layers):
        out[f"MobilenetV1/Conv2d_{i}_depthwise/depthwise_weights"] = sd[f"layers.{i}.dw.conv.weight"][:, 0].transpose(
            1, 2, 0
        )[..., None]
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
    doc = (
        {"format": "graph-model", "modelTopology": {"node": []}, "weightsManifest": manifest}
        if model_json
        else manifest
    )
    path.write_text(json.dumps(doc))
    return path


def _table_block(items: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    """One LevelDB table block with prefix-compressed keys and a restart array."""
    out, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(items):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        prev = key
    out += b"".join(int(r).to_bytes(4, "little") for r in restarts or [0]) + len(restarts or [0]).to_bytes(4, "little")
    return bytes(out)


def write_checkpoint(prefix: Path, tensors: dict[str, np.ndarray], restart_interval: int = 3) -> Path:
    """A TF "V2" checkpoint (``prefix.index`` + ``prefix.data-00000-of-00001``) holding float32 tensors."""
    data, items = bytearray(), [(b"", field(1, 1))]  # BundleHeaderProto: num_shards = 1
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        entry = field(1, 1) + field(2, shape_proto(np.shape(tensors[name]))) + field(4, len(data)) + field(5, len(raw))
        items.append((name.encode(), entry))
        data += raw
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(data))
    trailer = b"\0" * 5  # compression type 0 (none) + crc (not checked by the reader)
    body = _table_block(items, restart_interval)
    f = bytearray(body + trailer)
    meta_off, meta = len(f), _table_block([], 1)
    f += meta + trailer
    idx_off, idx = len(f), _table_block([(items[-1][0], varint(0) + varint(len(body)))], 1)
    f += idx + trailer
    footer = varint(meta_off) + varint(len(meta)) + varint(idx_off) + varint(len(idx))
    f += footer.ljust(40, b"\0") + (0xDB4775248B80FB57).to_bytes(8, "little")
    index = prefix.with_name(prefix.name + ".index")
    index.write_bytes(bytes(f))
    return index


def _fb(name: str):
    """A tflite schema *module* (the package re-exports classes under the same names)."""
    import importlib

    return importlib.import_module(f"tflite.{name}")


def write_tflite_convs(path: Path, layers: list[dict], input_shape=(1, 32, 32, 3)) -> Path:
    """A TFLite flatbuffer holding a chain of quantized CONV_2D / DEPTHWISE_CONV_2D ops.

    Each layer: ``{"depthwise": bool, "weight": uint8 array (TFLite layout), "scale", "zero_point",
    "bias": int32 array, "bias_scale", "stride", "padding": "SAME"|"VALID", "activation": "RELU6"|"NONE"}``.
    """
    import flatbuffers

    b = flatbuffers.Builder(1 << 16)

    def vec(start, items):  # a vector of tables (offsets), built back to front
        start(b, len(items))
        for off in reversed(items):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def buffer(data: bytes | None) -> int:
        B = _fb("Buffer")
        v = b.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
        B.Start(b)
        if v is not None:
            B.AddData(b, v)
        return B.End(b)

    def quant(scale, zp) -> int:
        Q = _fb("QuantizationParameters")
        s, z = (
            b.CreateNumpyVector(np.atleast_1d(np.asarray(scale, np.float32))),
            b.CreateNumpyVector(np.atleast_1d(np.asarray(zp, np.int64))),
        )
        Q.Start(b)
        Q.AddScale(b, s)
        Q.AddZeroPoint(b, z)
        return Q.End(b)

    tensors, buffers = [], [buffer(None)]

    def tensor(name, shape, ttype, data=None, scale=None, zp=0) -> int:
        T = _fb("Tensor")
        n, sh = b.CreateString(name), b.CreateNumpyVector(np.asarray(shape, np.int32))
        q = quant(scale, zp) if scale is not None else None
        buf = 0
        if data is not None:
            buffers.append(buffer(data))
            buf = len(buffers) - 1
        T.Start(b)
        T.AddShape(b, sh)
        T.AddType(b, ttype)
        T.AddBuffer(b, buf)
        T.AddName(b, n)
        if q is not None:
            T.AddQuantization(b, q)
        tensors.append(T.End(b))
        return len(tensors) - 1

    act = tensor("input", input_shape, 3, scale=1 / 128, zp=128)
    ops = []
    for i, L in enumerate(layers):
        w = tensor(f"w{i}", L["weight"].shape, 3, L["weight"].astype(np.uint8).tobytes(), L["scale"], L["zero_point"])
        bias = tensor(f"b{i}", L["bias"].shape, 2, L["bias"].astype("<i4").tobytes(), L["bias_scale"], 0)
        out = tensor(f"a{i}", (1, 1, 1, 1), 3, scale=0.05, zp=0)
        O = _fb("DepthwiseConv2DOptions" if L["depthwise"] else "Conv2DOptions")
        O.Start(b)
        O.AddPadding(b, 0 if L.get("padding", "SAME") == "SAME" else 1)
        O.AddStrideW(b, L["stride"])
        O.AddStrideH(b, L["stride"])
        if L["depthwise"]:
            O.AddDepthMultiplier(b, 1)
        O.AddFusedActivationFunction(b, 3 if L.get("activation", "RELU6") == "RELU6" else 0)
        opts = O.End(b)
        Op = _fb("Operator")
        ins, outs = (
            b.CreateNumpyVector(np.array([act, w, bias], np.int32)),
            b.CreateNumpyVector(np.array([out], np.int32)),
        )
        Op.Start(b)
        Op.AddOpcodeIndex(b, 1 if L["depthwise"] else 0)
        Op.AddInputs(b, ins)
        Op.AddOutputs(b, outs)
        Op.AddBuiltinOptionsType(b, 2 if L["depthwise"] else 1)
        Op.AddBuiltinOptions(b, opts)
        ops.append(Op.End(b))
        act = out
    codes = []
    for code in (3, 4):  # CONV_2D, DEPTHWISE_CONV_2D
        C = _fb("OperatorCode")
        C.Start(b)
        C.AddDeprecatedBuiltinCode(b, code)
        C.AddBuiltinCode(b, code)
        C.AddVersion(b, 1)
        codes.append(C.End(b))
    S, M = _fb("SubGraph"), _fb("Model")
    t_vec, o_vec = vec(S.StartTensorsVector, tensors), vec(S.StartOperatorsVector, ops)
    i_vec, out_vec = b.CreateNumpyVector(np.array([0], np.int32)), b.CreateNumpyVector(np.array([act], np.int32))
    S.Start(b)
    S.AddTensors(b, t_vec)
    S.AddInputs(b, i_vec)
    S.AddOutputs(b, out_vec)
    S.AddOperators(b, o_vec)
    sub = S.End(b)
    c_vec, s_vec, b_vec = (
        vec(M.StartOperatorCodesVector, codes),
        vec(M.StartSubgraphsVector, [sub]),
        vec(M.StartBuffersVector, buffers),
    )
    desc = b.CreateString("written by the test suite")
    M.Start(b)
    M.AddVersion(b, 3)
    M.AddOperatorCodes(b, c_vec)
    M.AddSubgraphs(b, s_vec)
    M.AddBuffers(b, b_vec)
    M.AddDescription(b, desc)
    b.Finish(M.End(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


#: files :func:`convert_generated` was called on (cache tests count conversions)
CONVERSIONS: list[Path] = []


def convert_generated(path, entry):
    """A stand-in converter for cache tests: the original's bytes (and a ``.bin`` shard beside it, when the entry
    names one) seed a small classifier's weights, so different bytes give different weights."""
    import hashlib

    import torch

    from mnet.backbone import mobilenet_v1
    from mnet.weights.converters.common import ConvertedWeights

    path = Path(path)
    CONVERSIONS.append(path)
    h = hashlib.sha256(path.read_bytes())
    for name in entry.companions:
        h.update((path.parent / name).read_bytes())
    torch.manual_seed(int.from_bytes(h.digest()[:4], "little"))
    model = mobilenet_v1(**entry.model_kwargs)
    return ConvertedWeights({k: v.numpy() for k, v in model.state_dict().items() if "num_batches" not in k})


GENERATED = "testnet_0.25_32.generated"


def generated_entry(*, sources=(), filenames=("testnet.bin",), companions=None, name: str = GENERATED):
    """A weights entry for :func:`convert_generated` (a tiny α=0.25 classifier), with the given sources/pins."""
    from mnet.weights.entry import Preprocess, WeightsEntry

    return WeightsEntry(
        name=name,
        task="classification",
        arch="mobilenet_v1",
        model_kwargs={"alpha": 0.25, "resolution": 32, "num_classes": 3},
        preprocess=Preprocess(32),
        converter="weights_helpers:convert_generated",
        sources=tuple(sources),
        filenames=tuple(filenames),
        companions=dict(companions or {}),
    )
