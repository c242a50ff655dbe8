"""TF1 frozen ``GraphDef`` (``.pb``) reader: nodes, attributes and ``Const`` tensors as numpy arrays.

Decodes the protobuf wire format directly (TF's ``graph.proto``, ``node_def.proto``,
``attr_value.proto``, ``tensor.proto``, ``tensor_shape.proto``), so no TensorFlow is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import FormatError
from .protowire import I32, LEN, WireError, as_float32, as_signed64, iter_fields, packed_varints

#: TF ``DataType`` enum → numpy dtype (types.proto)
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    7: np.dtype(object),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    17: np.dtype("<u2"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}


@dataclass
class Node:
    """One ``NodeDef``: its name, op, inputs and decoded attributes."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphDef:
    nodes: list[Node]
    path: str = "<bytes>"

    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def constants(self) -> dict[str, np.ndarray]:
        """Every ``Const`` node's value, by node name."""
        return {
            n.name: n.attrs["value"]
            for n in self.nodes
            if n.op == "Const" and isinstance(n.attrs.get("value"), np.ndarray)
        }


def _shape(buf: memoryview) -> list[int] | None:
    dims: list[int] = []
    for f, _, v in iter_fields(buf):
        if f == 2:  # Dim
            size = 0
            for g, _, dv in iter_fields(v):
                if g == 1:
                    size = as_signed64(dv)
            dims.append(size)
        elif f == 3 and v:  # unknown_rank
            return None
    return dims


def _floats(value: object, wire: int, fmt: str) -> list[float]:
    if wire == LEN:
        return np.frombuffer(bytes(value), dtype=fmt).tolist()
    if wire == I32:
        return [as_float32(int(value))]
    return np.frombuffer(int(value).to_bytes(8, "little"), dtype="<f8").tolist()


def decode_tensor(buf: memoryview) -> np.ndarray:
    """A ``TensorProto`` → numpy array (``tensor_content`` or the typed ``*_val`` fields)."""
    dtype_id, shape, content, values = 1, [], None, []
    for f, wire, v in iter_fields(buf):
        if f == 1:
            dtype_id = int(v)
        elif f == 2:
            shape = _shape(v) or []
        elif f == 4:
            content = bytes(v)
        elif f == 5:
            values += _floats(v, wire, "<f4")
        elif f == 6:
            values += _floats(v, wire, "<f8")
        elif f in (7, 10, 11, 13):  # int_val, int64_val, bool_val, half_val (as raw uint16 bits)
            values += packed_varints(v, wire)
        elif f == 8:
            values.append(bytes(v))
    if dtype_id not in TF_DTYPES:
        raise WireError(f"unsupported TF dtype enum {dtype_id}")
    dtype = TF_DTYPES[dtype_id]
    numel = int(np.prod(shape)) if shape else 1
    if content is not None:
        arr = np.frombuffer(content, dtype=dtype)
        if arr.size != numel:
            raise WireError(f"tensor_content has {arr.size} elements, shape {shape} needs {numel}")
        return arr.reshape(shape).copy()
    if dtype_id == 19:  # half_val holds the float16 bit patterns
        arr = np.array(values, dtype="<u2").view("<f2")
    else:
        arr = np.array(values, dtype=dtype)
    if arr.size == numel:
        return arr.reshape(shape)
    if arr.size in (0, 1):  # TF stores a constant fill as one value (or none for zeros)
        return np.full(shape, arr.item() if arr.size else 0, dtype=dtype)
    raise WireError(f"tensor has {arr.size} values, shape {shape} needs {numel}")


def _list_value(buf: memoryview) -> list[Any]:
    out: list[Any] = []
    for f, wire, v in iter_fields(buf):
        if f == 2:
            out.append(bytes(v).decode("utf-8", "replace"))
        elif f in (3, 6):
            out += packed_varints(v, wire)
        elif f == 4:
            out += _floats(v, wire, "<f4")
        elif f == 5:
            out += [bool(x) for x in packed_varints(v, wire)]
        elif f == 7:
            out.append(_shape(v))
        elif f == 8:
            out.append(decode_tensor(v))
    return out


def decode_attr(buf: memoryview) -> Any:
    """An ``AttrValue`` → Python value (list, str, int, float, bool, dtype id, shape, ndarray)."""
    for f, _wire, v in iter_fields(buf):
        if f == 1:
            return _list_value(v)
        if f == 2:
            return bytes(v).decode("utf-8", "replace")
        if f in (3, 6):
            return as_signed64(int(v))
        if f == 4:
            return as_float32(int(v))
        if f == 5:
            return bool(v)
        if f == 7:
            return _shape(v)
        if f == 8:
            return decode_tensor(v)
        if f == 9:
            return bytes(v).decode()
    return None


def decode_node(buf: memoryview) -> Node:
    node = Node(name="", op="")
    for f, _, v in iter_fields(buf):
        if f == 1:
            node.name = bytes(v).decode()
        elif f == 2:
            node.op = bytes(v).decode()
        elif f == 3:
            node.inputs.append(bytes(v).decode())
        elif f == 5:  # map<string, AttrValue> entry
            key, val = "", None
            for g, _, ev in iter_fields(v):
                if g == 1:
                    key = bytes(ev).decode()
                elif g == 2:
                    val = ev
            node.attrs[key] = decode_attr(val) if val is not None else None
    return node


def parse_graphdef(data: bytes, source: str = "<bytes>") -> GraphDef:
    """Decode serialized ``GraphDef`` bytes; :class:`FormatError` naming ``source`` if they are not one."""
    try:
        nodes = [decode_node(v) for f, wire, v in iter_fields(data) if f == 1 and wire == LEN]
    except (WireError, UnicodeDecodeError, ValueError, OverflowError) as e:
        raise FormatError(f"{source}: not a TensorFlow GraphDef protobuf ({e})") from None
    if not nodes or not all(n.name and n.op for n in nodes):
        raise FormatError(f"{source}: not a TensorFlow GraphDef (no named nodes found)")
    return GraphDef(nodes, source)


def read_graphdef(path: str | Path) -> GraphDef:
    """Read a frozen ``.pb`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GraphDef file")
    return parse_graphdef(path.read_bytes(), str(path))


def graphdef_constants(path: str | Path) -> dict[str, np.ndarray]:
    """``Const`` node name → numpy array, for a frozen ``.pb`` file."""
    return read_graphdef(path).constants()
