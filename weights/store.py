"""The suite's own weights format: safetensors plus metadata, written atomically.

Metadata (all JSON-encoded strings in the safetensors header): ``format`` (``mnet-weights/1``),
``entry``, ``task``, ``arch``, ``model_kwargs``, ``preprocess``, ``labels``, ``source``,
``original_file``, ``original_sha256``, ``sha256_verified``, ``verification`` (in words),
``companion_sha256`` (files read beside the original), ``converter`` and converter extras such as ``class_map``. Loading never executes pickled code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .formats import FormatError

FORMAT = "mnet-weights/1"


def atomic_write(path: Path, write: Any) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_weights(path: str | Path, state_dict: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Write tensors + metadata as ``.safetensors`` (atomically)."""
    import torch
    from safetensors.torch import save_file

    tensors = {
        k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v).contiguous()
        for k, v in state_dict.items()
    }
    header = {k: json.dumps(v) for k, v in meta.items()}
    header["format"] = json.dumps(FORMAT)
    return atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=header))


def read_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a suite weights file (FormatError naming the file if it is not one)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise FormatError(f"{path}: not a safetensors file ({e})") from None
    try:
        meta = {k: json.loads(v) for k, v in raw.items()}
    except json.JSONDecodeError:
        meta = {}
    if meta.get("format") != FORMAT:
        raise FormatError(
            f"{path}: safetensors file without mnet metadata (format {FORMAT!r}); "
            "convert the original with `mnet weights convert`"
        )
    return meta


def load_weights_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """State dict and metadata of a suite ``.safetensors`` file."""
    from safetensors.torch import load_file

    meta = read_meta(path)
    try:
        return load_file(str(path)), meta
    except Exception as e:
        raise FormatError(f"{path}: corrupt safetensors data ({e})") from None
