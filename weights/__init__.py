"""Pretrained weights: a registry of official checkpoints, converters from TF formats, a safetensors store.

>>> from mnet.tasks.pretrained import build_pretrained
>>> model, w = build_pretrained("mobilenet_v1_1.0_224.tfslim_in1k")  # fetch → verify → convert → cache
>>> w.preprocess, w.labels[:2]

Importing this package is light (the registry, entries and input recipes: no torch); the loaders,
converters and the store are imported on first use of their names. Where things live:
:mod:`mnet.weights.locations` (the cache folder, folders of original files).
"""

from __future__ import annotations

import importlib
from typing import Any

from . import entries as _entries  # noqa: F401  (registers the built-in entries)
from .entry import Preprocess, Source, WeightsEntry, resolve_ref
from .registry import find_entry_for_file, get_entry, list_entries, register_weights

#: public name → the submodule that defines it (imported when the name is first used)
_LAZY = {
    "FormatError": "formats",
    "LoadedWeights": "loader",
    "cached_path": "loader",
    "convert_file": "loader",
    "fetch_and_convert": "loader",
    "load_weights": "loader",
    "check_state_dict": "loader",
    "load_into": "loader",
    "is_available": "loader",
    "CacheUpdate": "loader",
    "convert_local": "loader",
    "update_cache": "loader",
    "verification_text": "loader",
    "add_originals_dir": "locations",
    "cache_subdir": "locations",
    "originals_dirs": "locations",
    "weights_cache": "sources",
    "ChecksumError": "sources",
    "cache_dir": "sources",
    "fetch": "sources",
    "sha256_file": "sources",
    "read_meta": "store",
    "save_weights": "store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Preprocess",
    "Source",
    "WeightsEntry",
    "resolve_ref",
    "find_entry_for_file",
    "get_entry",
    "list_entries",
    "register_weights",
    *_LAZY,
]
