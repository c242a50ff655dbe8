"""A minimal protobuf wire-format decoder (enough for TF's GraphDef without TensorFlow or tensorboard).

Protobuf messages are sequences of (field number, wire type, value); see
https://protobuf.dev/programming-guides/encoding/. Length-delimited values are returned as
``memoryview`` slices so large tensors are not copied until needed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, I64, LEN, I32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a valid protobuf encoding."""


def read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    n = len(buf)
    while True:
        if pos >= n:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field_number, wire_type, value)``: int for VARINT/I64/I32 (raw bits), memoryview for LEN."""
    buf = memoryview(buf)
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise WireError(f"field number 0 at byte {pos}")
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == LEN:
            size, pos = read_varint(buf, pos)
            if pos + size > n:
                raise WireError(f"length-delimited field {field} runs past the end ({pos + size} > {n})")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == I64:
            if pos + 8 > n:
                raise WireError("truncated 64-bit field")
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == I32:
            if pos + 4 > n:
                raise WireError("truncated 32-bit field")
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise WireError(f"unsupported wire type {wire} for field {field}")
        yield field, wire, value


def as_signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def as_float32(bits: int) -> float:
    return struct.unpack("<f", bits.to_bytes(4, "little"))[0]


def packed_varints(value: object, wire: int) -> list[int]:
    """A repeated integer field, packed (LEN) or not (one VARINT)."""
    if wire == VARINT:
        return [as_signed64(int(value))]
    buf, pos, out = value, 0, []
    while pos < len(buf):
        v, pos = read_varint(buf, pos)
        out.append(as_signed64(v))
    return out
