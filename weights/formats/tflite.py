"""TFLite flatbuffer reader (with the ``tflite`` schema package; no TensorFlow).

Gives every tensor with its name, shape, dtype, raw data, quantization (per-tensor or per-channel
scale / zero point) and its dequantized float values, and every operator with its opcode name,
inputs, outputs, builtin options (as a dict) and custom options (decoded from FlexBuffers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from . import FormatError

#: TFLite ``TensorType`` → numpy dtype
TFLITE_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f2"),
    2: np.dtype("<i4"),
    3: np.dtype("u1"),
    4: np.dtype("<i8"),
    6: np.dtype("?"),
    7: np.dtype("<i2"),
    9: np.dtype("i1"),
    10: np.dtype("<f8"),
    12: np.dtype("<u8"),
    15: np.dtype("<u4"),
    16: np.dtype("<u2"),
}


@dataclass
class Quantization:
    """Affine quantization: ``real = scale · (q − zero_point)``, per tensor or along ``axis``."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        scale, zp = self.scale.astype(np.float64), self.zero_point.astype(np.float64)
        if self.per_channel:
            shape = [1] * q.ndim
            shape[self.axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return ((q.astype(np.float64) - zp) * scale).astype(np.float32)


@dataclass
class TFLiteTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None  # raw stored values (None for activations / inputs)
    quantization: Quantization | None

    def numpy(self) -> np.ndarray:
        """The stored values as float32, dequantized when the tensor is quantized."""
        if self.data is None:
            raise ValueError(f"tensor {self.name!r} has no stored data (it is an activation)")
        if self.quantization is not None and self.dtype.kind in "iu":
            return self.quantization.dequantize(self.data)
        return self.data.astype(np.float32) if self.dtype.kind == "f" else self.data


@dataclass
class TFLiteOperator:
    index: int
    opcode: str  # e.g. "CONV_2D", or the custom code ("TFLite_Detection_PostProcess")
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TFLiteModel:
    path: str
    tensors: list[TFLiteTensor]
    operators: list[TFLiteOperator]
    inputs: list[int]
    outputs: list[int]
    description: str = ""

    def tensor(self, name: str) -> TFLiteTensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"{self.path}: no tensor named {name!r}")

    def constants(self) -> dict[str, np.ndarray]:
        """Name → dequantized float array, for every tensor with stored data."""
        return {t.name: t.numpy() for t in self.tensors if t.data is not None}


@cache
def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _table_to_dict(obj: Any) -> dict[str, Any]:
    """Read every scalar / vector field of a flatbuffer options table into a dict."""
    out: dict[str, Any] = {}
    skip = {"Init"}
    for name in dir(obj):
        if name.startswith("_") or name in skip or name.startswith("GetRootAs") or "BufferHasIdentifier" in name:
            continue
        if name.endswith(("Length", "IsNone")):
            continue
        attr = getattr(obj, name)
        if not callable(attr):
            continue
        if name.endswith("AsNumpy"):
            v = attr()
            out[name[: -len("AsNumpy")]] = v.tolist() if isinstance(v, np.ndarray) else []
            continue
        if hasattr(obj, name + "AsNumpy"):
            continue
        try:
            out[name] = attr()
        except TypeError:  # an indexed accessor without a numpy variant
            continue
    return out


def _builtin_options(op: Any) -> dict[str, Any]:
    import tflite

    kind = op.BuiltinOptionsType()
    if not kind:
        return {}
    cls_name = _enum_names(tflite.BuiltinOptions).get(kind)
    cls = getattr(tflite, cls_name, None) if cls_name else None
    table = op.BuiltinOptions()
    if cls is None or table is None:
        return {}
    opt = cls()
    opt.Init(table.Bytes, table.Pos)
    out = _table_to_dict(opt)
    for key, enum in (("Padding", tflite.Padding), ("FusedActivationFunction", tflite.ActivationFunctionType)):
        if key in out:  # enum values as names: "SAME" / "VALID", "NONE" / "RELU" / "RELU6" ...
            out[key] = _enum_names(enum).get(out[key], out[key])
    return out


def _custom_options(op: Any) -> dict[str, Any]:
    if op.CustomOptionsIsNone() or op.CustomOptionsLength() == 0:
        return {}
    from flatbuffers import flexbuffers

    raw = op.CustomOptionsAsNumpy().tobytes()
    try:
        value = flexbuffers.Loads(raw)
    except Exception:  # not FlexBuffers: keep the bytes
        return {"custom_options_bytes": raw}
    return value if isinstance(value, dict) else {"custom_options": value}


def _quantization(t: Any) -> Quantization | None:
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(q.ScaleLength(), np.int64)
    return Quantization(np.asarray(q.ScaleAsNumpy(), np.float32), np.asarray(zp, np.int64), int(q.QuantizedDimension()))


def parse_tflite(data: bytes, source: str = "<bytes>") -> TFLiteModel:
    """Decode a ``.tflite`` flatbuffer; :class:`FormatError` naming ``source`` if it is not one."""
    import tflite

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise FormatError(f"{source}: not a TFLite model (no 'TFL3' file identifier)")
    try:
        model = tflite.Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise FormatError(f"{source}: TFLite model has no subgraph")
        g = model.Subgraphs(0)
        opnames = tflite.utils.BUILTIN_OPCODE2NAME
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            codes.append(oc.CustomCode().decode() if code == 32 and oc.CustomCode() else opnames.get(code, str(code)))
        tensors = []
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            dtype = TFLITE_DTYPES.get(t.Type())
            shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            data_arr = None
            buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
            if buf is not None and buf.DataLength() > 0 and dtype is not None:
                data_arr = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype).reshape(shape)
            tensors.append(
                TFLiteTensor(i, t.Name().decode(), shape, dtype or np.dtype("V1"), data_arr, _quantization(t))
            )
        ops = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            opts = _builtin_options(op) or _custom_options(op)
            ops.append(
                TFLiteOperator(
                    i, codes[op.OpcodeIndex()], op.InputsAsNumpy().tolist(), op.OutputsAsNumpy().tolist(), opts
                )
            )
        desc = model.Description().decode("utf-8", "replace") if model.Description() else ""
        return TFLiteModel(source, tensors, ops, g.InputsAsNumpy().tolist(), g.OutputsAsNumpy().tolist(), desc)
    except FormatError:
        raise
    except Exception as e:  # flatbuffers raises assorted errors on corrupt data
        raise FormatError(f"{source}: corrupt TFLite model ({type(e).__name__}: {e})") from None


def read_tflite(path: str | Path) -> TFLiteModel:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such TFLite file")
    return parse_tflite(path.read_bytes(), str(path))
