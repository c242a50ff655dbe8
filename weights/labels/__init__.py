"""Class-name lists for the registry's entries (loaded lazily by dotted reference)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent


@cache
def imagenet1k_synsets() -> tuple[tuple[str, str], ...]:
    """The 1000 ILSVRC2012 classes as (wnid, names) in the canonical order (sorted wnids, 0..999)."""
    rows = []
    for line in (HERE / "imagenet1k_synsets.txt").read_text().splitlines():
        wnid, _, names = line.partition(" ")
        rows.append((wnid, names))
    return tuple(rows)


def imagenet1k() -> list[str]:
    """The 1000 ImageNet class names (first synonym of each synset), index 0..999."""
    return [names.split(",")[0].strip() for _, names in imagenet1k_synsets()]


def imagenet1k_wnids() -> list[str]:
    return [wnid for wnid, _ in imagenet1k_synsets()]
