"""TF2/TF1 "V2" checkpoint reader (``model.ckpt.index`` + ``model.ckpt.data-NNNNN-of-MMMMM``), no TensorFlow.

The ``.index`` file is a LevelDB-format SSTable (uncompressed, as TF's tensor bundle writes it) mapping
each variable name to a ``BundleEntryProto`` (dtype, shape, shard, offset, size); the data shards hold
the raw little-endian tensor bytes. See tensorflow/core/util/tensor_bundle and LevelDB's table format.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from . import FormatError
from .graphdef import TF_DTYPES, _shape
from .protowire import WireError, iter_fields, read_varint

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48


def _handle(buf: memoryview, pos: int) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return offset, size, pos


def _block(data: memoryview, offset: int, size: int) -> list[tuple[bytes, memoryview]]:
    """Decode one table block into (key, value) pairs (keys are prefix-compressed)."""
    if offset + size + 5 > len(data):
        raise WireError("block runs past the end of the file")
    if data[offset + size] != 0:
        raise WireError(f"compressed table block (type {data[offset + size]}) is not supported")
    block = data[offset : offset + size]
    num_restarts = struct.unpack_from("<I", block, size - 4)[0]
    end = size - 4 - 4 * num_restarts
    if end < 0:
        raise WireError("bad restart count")
    out, pos, key = [], 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        vlen, pos = read_varint(block, pos)
        key = key[:shared] + bytes(block[pos : pos + non_shared])
        pos += non_shared
        out.append((key, block[pos : pos + vlen]))
        pos += vlen
    return out


def read_table(data: bytes) -> dict[str, memoryview]:
    """All key → value pairs of an uncompressed LevelDB SSTable."""
    buf = memoryview(data)
    if len(buf) < FOOTER_SIZE or struct.unpack_from("<Q", buf, len(buf) - 8)[0] != TABLE_MAGIC:
        raise WireError("no SSTable magic number at the end")
    footer = buf[len(buf) - FOOTER_SIZE :]
    _, _, pos = _handle(footer, 0)  # metaindex (unused)
    idx_off, idx_size, _ = _handle(footer, pos)
    entries: dict[str, memoryview] = {}
    for _, handle in _block(buf, idx_off, idx_size):
        off, size, _ = _handle(handle, 0)
        for key, value in _block(buf, off, size):
            entries[key.decode("utf-8")] = value
    return entries


def _entry(value: memoryview) -> dict:
    e = {"dtype": 1, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "sliced": False}
    for f, _, v in iter_fields(value):
        if f == 1:
            e["dtype"] = int(v)
        elif f == 2:
            e["shape"] = _shape(v) or []
        elif f in (3, 4, 5):
            e[{3: "shard_id", 4: "offset", 5: "size"}[f]] = int(v)
        elif f == 7:
            e["sliced"] = True
    return e


def checkpoint_prefix(path: str | Path) -> Path:
    """``x.ckpt``, ``x.ckpt.index`` or ``x.ckpt.data-00000-of-00001`` → the prefix ``x.ckpt``."""
    p = Path(path)
    if p.suffix == ".index":
        return p.with_suffix("")
    if ".data-" in p.name:
        return p.with_name(p.name.split(".data-")[0])
    return p


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Variable name → numpy array for a TF "V2" checkpoint (prefix, ``.index`` or data file)."""
    prefix = checkpoint_prefix(path)
    index = prefix.with_name(prefix.name + ".index")
    if not index.is_file():
        raise FileNotFoundError(f"{index}: no such checkpoint index")
    try:
        table = read_table(index.read_bytes())
        header = table.pop("", None)
        num_shards = 1
        if header is not None:
            for f, _, v in iter_fields(header):
                if f == 1:
                    num_shards = int(v)
        entries = {k: _entry(v) for k, v in table.items()}
    except (WireError, UnicodeDecodeError, struct.error) as e:
        raise FormatError(f"{index}: not a TensorFlow checkpoint index ({e})") from None
    shards: dict[int, bytes] = {}
    out: dict[str, np.ndarray] = {}
    for name, e in entries.items():
        if e["sliced"] or e["dtype"] not in TF_DTYPES or TF_DTYPES[e["dtype"]] == np.dtype(object):
            continue  # partitioned variables and strings are not model weights we convert
        sid = e["shard_id"]
        if sid not in shards:
            shard = prefix.with_name(f"{prefix.name}.data-{sid:05d}-of-{num_shards:05d}")
            if not shard.is_file():
                raise FileNotFoundError(f"{index}: data shard {shard} is missing")
            shards[sid] = shard.read_bytes()
        raw = shards[sid][e["offset"] : e["offset"] + e["size"]]
        dtype = TF_DTYPES[e["dtype"]]
        numel = int(np.prod(e["shape"])) if e["shape"] else 1
        if len(raw) != numel * dtype.itemsize:
            raise FormatError(
                f"{index}: tensor {name!r} needs {numel * dtype.itemsize} bytes, data shard has {len(raw)}"
            )
        out[name] = np.frombuffer(raw, dtype=dtype).reshape(e["shape"]).copy()
    return out
