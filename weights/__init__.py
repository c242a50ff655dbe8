"""Pretrained weights: a registry of official checkpoints, converters from TF formats, a safetensors store.

>>> from weights import build_pretrained
>>> model, w = build_pretrained("mobilenet_v1_1.0_224.tfslim_in1k")  # fetch → verify → convert → cache
>>> w.preprocess, w.labels[:2]
"""

from . import entries as _entries  # noqa: F401  (registers the built-in entries)
from .entry import Preprocess, Source, WeightsEntry, resolve_ref
from .formats import FormatError
from .loader import (
    LoadedWeights,
    build_entry_model,
    build_pretrained,
    cached_path,
    check_state_dict,
    convert_file,
    fetch_and_convert,
    load_into,
    load_weights,
)
from .registry import find_entry_for_file, get_entry, list_entries, register_weights
from .sources import ChecksumError, cache_dir, fetch, sha256_file
from .store import read_meta, save_weights

__all__ = [
    "Preprocess",
    "Source",
    "WeightsEntry",
    "resolve_ref",
    "FormatError",
    "LoadedWeights",
    "build_entry_model",
    "build_pretrained",
    "cached_path",
    "check_state_dict",
    "convert_file",
    "fetch_and_convert",
    "load_into",
    "load_weights",
    "find_entry_for_file",
    "get_entry",
    "list_entries",
    "register_weights",
    "ChecksumError",
    "cache_dir",
    "fetch",
    "sha256_file",
    "read_meta",
    "save_weights",
]
