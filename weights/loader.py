"""Resolve a weights name or file to a state dict, convert and cache on first use, load into models.

``load_weights("mobilenet_v1_1.0_224.tfslim_in1k")`` → cached ``.safetensors`` if present, else
find the original (folders of originals first, then the network; sha256-checked) → convert → write the
cache atomically → load. A path to a suite ``.safetensors`` file loads directly.

The cache (``<cache>/weights/<entry>.safetensors``, see :mod:`weights.locations`) is written only when its
content changes: a conversion of the same original (same sha256, same converter, same verification) is kept
as it is unless ``force`` is given.
Building a model from them is the tasks layer's job (``mnet.tasks.pretrained``): this
package never imports task code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .entry import Preprocess, WeightsEntry
from .formats import FormatError
from .registry import find_entry_for_file, get_entry
from .sources import Fetched, fetch, find_in_folder, find_originals, weights_cache
from .store import load_weights_file, read_meta, save_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)


@dataclass
class LoadedWeights:
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]
    path: Path

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        return dict(self.meta.get("model_kwargs") or {})

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess.from_dict(self.meta["preprocess"])

    @property
    def labels(self) -> list[str] | None:
        return self.meta.get("labels")


def cached_path(entry: WeightsEntry | str) -> Path:
    """Where the entry's converted weights are cached: ``<cache>/weights/<entry>.safetensors``."""
    name = entry.name if isinstance(entry, WeightsEntry) else entry
    return weights_cache() / f"{name}.safetensors"


def is_available(entry: WeightsEntry, source: str | Path | None = None) -> bool:
    """True when the entry is usable without a download: converted in the cache, or one of its original files
    lies in a folder of originals (``$MNET_WEIGHTS_DIR``, the user config, ``--source DIR``), in the cache's
    ``originals/``, or in ``source`` (a file or a folder searched recursively). Digests are checked on use."""
    if cached_path(entry).exists():
        return True
    if entry.base is not None:  # its own original ships as a local file (package data); the base must be at hand
        own = any(s.kind == "file" and Path(s.location).is_file() for s in entry.sources) or find_originals(entry)
        return bool(own) and is_available(get_entry(entry.base), source)
    if find_originals(entry):
        return True
    if not source:
        return False
    p = Path(source)
    return (p.is_file() and p.name in entry.filenames) or (p.is_dir() and bool(find_in_folder(entry, p)))


def entry_meta(entry: WeightsEntry) -> dict[str, Any]:
    return {
        "entry": entry.name,
        "task": entry.task,
        "arch": entry.arch,
        "model_kwargs": entry.model_kwargs,
        "preprocess": entry.preprocess.to_dict(),
        "labels": entry.label_list(),
        "converter": entry.converter,
        "published": entry.published,
        "license": entry.license,
    }


#: checks every conversion passes before it is written: ``check(entry, state_dict, source)`` raises a
#: ValueError naming ``source`` when the converted tensors do not fit the entry's model. The tasks layer,
#: which can build models, registers its check (``mnet.tasks.pretrained``); this package imports no task.
CONVERSION_CHECKS: list[Callable[[WeightsEntry, dict[str, Any], str], None]] = []


def register_conversion_check(check: Callable[[WeightsEntry, dict[str, Any], str], None]) -> None:
    if check not in CONVERSION_CHECKS:
        CONVERSION_CHECKS.append(check)


def verification_text(meta: dict[str, Any]) -> str:
    """What a converted file's metadata says about the check of its original, in words."""
    if meta.get("verification"):
        return meta["verification"]
    if meta.get("sha256_verified"):  # written before the words were recorded
        return f"verified (sha256 {meta.get('original_sha256')})"
    return "NOT verified"


def convert_original(entry: WeightsEntry, fetched: Fetched, out: str | Path | None = None) -> Path:
    """Run the entry's converter on its original file; check it fits the model; write safetensors."""
    converted = entry.converter_fn()(fetched.path, entry)
    for check in CONVERSION_CHECKS:
        check(entry, converted.state_dict, str(fetched.path))
    meta = entry_meta(entry)
    meta.update(converted.meta)
    meta.update(
        source=fetched.source,
        original_file=fetched.path.name,
        original_sha256=fetched.sha256,
        sha256_verified=fetched.verified,
        verification=fetched.verification,
        companion_sha256=fetched.companions,
    )
    return save_weights(out or cached_path(entry), converted.state_dict, meta)


def same_conversion(path: Path, entry: WeightsEntry, fetched: Fetched) -> bool:
    """True when ``path`` already holds the entry converted from this very original (same sha256 of it and of
    the files beside it, converter, model settings and verification), so converting again would write the same
    content."""
    try:
        meta = read_meta(path)
    except (OSError, FormatError):
        return False
    return (
        meta.get("entry") == entry.name
        and meta.get("original_sha256") == fetched.sha256
        and meta.get("converter") == entry.converter
        and meta.get("model_kwargs") == json.loads(json.dumps(entry.model_kwargs))
        and meta.get("companion_sha256", {}) == fetched.companions
        and meta.get("sha256_verified") == fetched.verified
    )


@dataclass(frozen=True)
class CacheUpdate:
    """The converted file and whether this call wrote it (``False``: it already held this conversion)."""

    path: Path
    written: bool
    verification: str


def convert_if_changed(
    entry: WeightsEntry, fetched: Fetched, out: str | Path | None = None, *, force: bool = False
) -> CacheUpdate:
    """Convert ``fetched`` into ``out`` (default: the cache) unless ``out`` already holds the same conversion."""
    path = Path(out) if out else cached_path(entry)
    if not force and path.is_file() and same_conversion(path, entry, fetched):
        log.info("%s: already converted from %s (sha256 %s); left as it is", path, fetched.path.name, fetched.sha256)
        return CacheUpdate(path, False, fetched.verification)
    convert_original(entry, fetched, path)
    log.info("%s: converted from %s (%s)", path, fetched.source, fetched.verification)
    return CacheUpdate(path, True, fetched.verification)


def update_cache(
    name: str, *, source: str | Path | None = None, verify: bool = True, force: bool = False, progress: bool = True
) -> CacheUpdate:
    """Make sure the entry is in the cache: nothing to do when it is (and no ``source`` / ``force``); else find
    its original (checked against every pinned digest) and convert it, writing only when the content changes."""
    entry = get_entry(name)
    path = cached_path(entry)
    if path.is_file() and not force and source is None:
        try:
            return CacheUpdate(path, False, verification_text(read_meta(path)))
        except FormatError as e:  # a damaged cache file: make it again
            log.warning("%s; converting again", e)
    return convert_if_changed(entry, fetch(entry, source, verify=verify, progress=progress), path, force=force)


def fetch_and_convert(
    name: str, *, source: str | Path | None = None, verify: bool = True, force: bool = False, progress: bool = True
) -> Path:
    """Make sure the entry is in the cache (fetch + convert when needed); return the cached path."""
    return update_cache(name, source=source, verify=verify, force=force, progress=progress).path


def convert_file(path: str | Path, entry: str | None = None, **options: Any) -> Path:
    """Convert a local original file (``.pb``, ``.tflite``, ...) for an entry (found by file name when not given);
    the output path. ``options``: ``out``, ``verify``, ``force`` as for :func:`convert_local`."""
    return convert_local(path, entry, **options).path


def convert_local(
    path: str | Path,
    entry: str | None = None,
    *,
    out: str | Path | None = None,
    verify: bool = True,
    force: bool = False,
) -> CacheUpdate:
    """Convert a local original for an entry (found by file name when not given) into ``out`` (default: the
    cache) unless it already holds this conversion; says whether it was written."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    e = get_entry(entry) if entry else find_entry_for_file(path.name)
    if e is None:
        raise ValueError(f"{path}: cannot tell which weights entry this file is; pass --entry NAME")
    return convert_if_changed(e, fetch(e, path, verify=verify), out, force=force)


def load_weights(
    name_or_path: str | Path, *, source: str | Path | None = None, verify: bool = True, progress: bool = True
) -> LoadedWeights:
    """State dict + metadata for a registry name or a suite ``.safetensors`` file."""
    p = Path(name_or_path)
    if p.suffix == ".safetensors" or p.is_file():
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such weights file")
        if p.suffix != ".safetensors":
            raise FormatError(
                f"{p}: not a suite .safetensors weights file; convert it first with `mnet weights convert {p}`"
            )
        sd, meta = load_weights_file(p)
        return LoadedWeights(sd, meta, p)
    entry = get_entry(str(name_or_path))
    path = fetch_and_convert(entry.name, source=source, verify=verify, progress=progress)
    sd, meta = load_weights_file(path)
    if meta.get("entry") != entry.name:
        raise FormatError(f"{path}: cached file holds {meta.get('entry')!r}, not {entry.name!r}; delete it")
    meta["preprocess"] = entry.preprocess.to_dict()  # the registry is the source of truth for the recipe
    return LoadedWeights(sd, meta, path)


def _channels_hint(key: str, have: tuple, want: tuple) -> str:
    if key == "head.fc.weight" or key == "head.fc.bias":
        return f" (class count: weights have {have[0]} classes, the model {want[0]})"
    if key.endswith("conv.weight") and have[0] != want[0]:
        return f" (width: {have[0]} vs {want[0]} channels: a different α)"
    return ""


def check_state_dict(model: nn.Module, state_dict: dict[str, Any], source: str, *, alpha: float | None = None) -> None:
    """Raise a ValueError naming ``source`` and what mismatches (α, class count, missing/extra keys, shapes)."""
    cfg = getattr(model, "config", None)
    model_alpha = getattr(cfg, "alpha", None)
    if alpha is not None and model_alpha is not None and abs(float(alpha) - float(model_alpha)) > 1e-9:
        raise ValueError(f"{source}: weights are for α={alpha}, the model has α={model_alpha}")
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(k for k in set(state_dict) - set(own) if not k.endswith("num_batches_tracked"))
    bad = [
        (k, tuple(state_dict[k].shape), tuple(own[k].shape))
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if bad:
        k, have, want = bad[0]
        problems.append(
            f"{len(bad)} shape mismatch(es), first {k}: weights {list(have)} vs model {list(want)}"
            + _channels_hint(k, have, want)
        )
    if missing:
        problems.append(f"{len(missing)} missing key(s): {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected key(s): {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}"
        )
    if problems:
        raise ValueError(f"{source}: weights do not fit the model: " + "; ".join(problems))


def load_into(model: nn.Module, weights: LoadedWeights) -> nn.Module:
    """Copy the weights into ``model`` after checking they fit (clear error naming the file)."""
    alpha = weights.model_kwargs.get("alpha")
    check_state_dict(model, weights.state_dict, str(weights.path), alpha=alpha)
    model.load_state_dict(weights.state_dict, strict=False)
    return model
