"""TF.js weights reader: a JSON manifest (``weightsManifest`` of a ``model.json``, or a bare
``*-weights_manifest.json`` list) plus the ``.bin`` shards it names.

The shards of one group are concatenated and read in manifest order as little-endian buffers. Weights
with ``quantization: {dtype: uint8|uint16, min, scale}`` are dequantized as ``q · scale + min``
(rounded for int32 weights, as tfjs-core does); ``{dtype: float16}`` ones are widened to float32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import FormatError

#: TF.js dtype → numpy dtype of the stored values
TFJS_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("?"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float16": np.dtype("<f2"),
    "int8": np.dtype("i1"),
}


@dataclass
class TFJSModel:
    path: str
    weights: dict[str, np.ndarray]
    #: per weight name, the manifest's quantization entry (``{}`` when stored unquantized)
    quantization: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the ``modelTopology`` of a graph/layers model (``None`` for a bare manifest)
    topology: Any = None
    format: str = ""


def _decode(raw: bytes, spec: dict[str, Any], source: str) -> tuple[np.ndarray, int]:
    """Decode one manifest entry from the start of ``raw``; return the array and the bytes used."""
    name, dtype, shape = spec["name"], spec.get("dtype", "float32"), [int(s) for s in spec.get("shape", [])]
    numel = int(np.prod(shape)) if shape else 1
    quant = spec.get("quantization") or {}
    stored = TFJS_DTYPES.get(quant.get("dtype", dtype))
    if stored is None:
        raise FormatError(f"{source}: weight {name!r} has unsupported dtype {quant.get('dtype', dtype)!r}")
    nbytes = numel * stored.itemsize
    if len(raw) < nbytes:
        raise FormatError(f"{source}: weight data ends early at {name!r} (needs {nbytes} bytes, {len(raw)} left)")
    q = np.frombuffer(raw[:nbytes], dtype=stored).reshape(shape)
    if quant.get("dtype") in ("uint8", "uint16"):
        values = q.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
        arr = np.round(values).astype(np.int32) if dtype == "int32" else values.astype(np.float32)
    elif quant.get("dtype") == "float16":
        arr = q.astype(np.float32)
    else:
        arr = q.copy()
    return arr, nbytes


def read_tfjs(path: str | Path) -> TFJSModel:
    """Read a TF.js ``model.json`` or weights manifest and the ``.bin`` files beside it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such TF.js manifest")
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: not a TF.js model/manifest JSON ({e})") from None
    topology, fmt = None, ""
    if isinstance(doc, dict):
        if "weightsManifest" not in doc:
            raise FormatError(f"{path}: JSON has no 'weightsManifest' (not a TF.js model.json)")
        groups, topology, fmt = doc["weightsManifest"], doc.get("modelTopology"), doc.get("format", "")
    else:
        groups = doc
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "paths" in g and "weights" in g for g in groups):
        raise FormatError(f"{path}: weights manifest must be a list of {{'paths', 'weights'}} groups")
    weights: dict[str, np.ndarray] = {}
    quant: dict[str, dict[str, Any]] = {}
    for group in groups:
        shard_paths = [path.parent / p for p in group["paths"]]
        for sp in shard_paths:
            if not sp.is_file():
                raise FileNotFoundError(f"{path}: weight shard {sp} is missing")
        raw = b"".join(sp.read_bytes() for sp in shard_paths)
        source = ", ".join(str(sp) for sp in shard_paths)
        offset = 0
        for spec in group["weights"]:
            arr, used = _decode(raw[offset:], spec, source)
            weights[spec["name"]] = arr
            quant[spec["name"]] = dict(spec.get("quantization") or {})
            offset += used
        if offset != len(raw):
            raise FormatError(
                f"{source}: {len(raw) - offset} bytes left over after the manifest's weights "
                f"(manifest {path} does not describe this data)"
            )
    return TFJSModel(str(path), weights, quant, topology, fmt)
