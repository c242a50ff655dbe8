"""Pretrained weights: a registry of official checkpoints, converters from TF formats, a safetensors store.

>>> from mnet.weights import build_pretrained
>>> model, w = build_pretrained("mobilenet_v1_1.0_224.tfslim_in1k")  # find/fetch → verify → convert → cache
>>> w.preprocess, w.labels[:2]

Where things live: :mod:`mnet.weights.locations` (the cache folder, folders of original files; no torch).
"""

from . import entries as _entries  # noqa: F401  (registers the built-in entries)
from .entry import Preprocess, Source, WeightsEntry, resolve_ref
from .formats import FormatError
from .loader import (
    CacheUpdate,
    LoadedWeights,
    build_entry_model,
    build_pretrained,
    cached_path,
    check_state_dict,
    convert_file,
    convert_local,
    fetch_and_convert,
    is_available,
    load_into,
    load_weights,
    update_cache,
    verification_text,
)
from .locations import add_originals_dir, cache_subdir, originals_dirs
from .registry import find_entry_for_file, get_entry, list_entries, register_weights
from .sources import ChecksumError, cache_dir, fetch, sha256_file, weights_cache
from .store import read_meta, save_weights

__all__ = [
    "Preprocess",
    "Source",
    "WeightsEntry",
    "resolve_ref",
    "FormatError",
    "CacheUpdate",
    "LoadedWeights",
    "build_entry_model",
    "build_pretrained",
    "cached_path",
    "check_state_dict",
    "convert_file",
    "convert_local",
    "fetch_and_convert",
    "is_available",
    "load_into",
    "load_weights",
    "update_cache",
    "verification_text",
    "add_originals_dir",
    "cache_subdir",
    "originals_dirs",
    "find_entry_for_file",
    "get_entry",
    "list_entries",
    "register_weights",
    "ChecksumError",
    "cache_dir",
    "fetch",
    "sha256_file",
    "weights_cache",
    "read_meta",
    "save_weights",
]
