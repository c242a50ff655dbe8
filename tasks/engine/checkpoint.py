"""Atomic checkpoints (write a temporary file, then ``os.replace``), RNG state capture, weight export."""
from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> None:
    atomic_write(path, lambda tmp: torch.save(dict(state), tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (nothing to resume)")
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state() -> dict[str, Any]:
    """Every RNG the loop touches, in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def export_weights(state_dict: Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, Any]) -> None:
    """Weights only, as safetensors; ``metadata`` (task, α, ρ, classes...) is stored as JSON strings."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_exported(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict and decoded metadata of a file written by :func:`export_weights`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    with safe_open(str(path), "pt") as f:
        raw = f.metadata() or {}
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError:
            meta[k] = v
    return load_file(str(path)), meta
