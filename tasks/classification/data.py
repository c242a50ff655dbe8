"""ImageNet validation layout (``val/<wnid>/*.JPEG``) and ImageFolder, with the canonical class order.

Class order, first that applies: ``synset_words.txt`` in the data folder (ILSVRC's file: one
``wnid names`` line per class, index 0..999); the ILSVRC2012 1000 wnids shipped with the suite when
every class folder is one of them (so a subset of classes keeps the real ImageNet indices); otherwise
the sorted folder names (plain ImageFolder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..data.images import load_rgb

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
SYNSET_FILES = ("synset_words.txt", "LOC_synset_mapping.txt")


def read_synset_words(path: Path) -> list[tuple[str, str]]:
    """(wnid, names) per line of a ``synset_words.txt``; ValueError naming the file and line if malformed."""
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        wnid, _, names = line.strip().partition(" ")
        if not (wnid.startswith("n") and wnid[1:].isdigit()):
            raise ValueError(f"{path}:{i}: expected 'nXXXXXXXX names', got {line[:60]!r}")
        rows.append((wnid, names.strip()))
    return rows


@dataclass(frozen=True)
class ClassIndex:
    """Class folder names in model output order, with a human-readable name each, and where it came from."""

    ids: tuple[str, ...]
    names: tuple[str, ...]
    origin: str

    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.ids)}


def resolve_split(data: str | Path, split: str | None) -> tuple[Path, Path]:
    """(dataset root, folder of class sub-folders) for ``data`` and ``split`` (default ``val``)."""
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: {'not a folder' if root.exists() else 'no such data folder'}")
    split_dir = root / (split or "val")
    if split_dir.is_dir():
        return root, split_dir
    if split is not None:
        raise FileNotFoundError(f"{root}: has no split folder {split!r}")
    return root.parent, root  # ``data`` is itself the folder of classes


def class_index(root: Path, split_dir: Path) -> ClassIndex:
    folders = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValueError(f"{split_dir}: no class folders (expected <class>/<image> files)")
    for name in SYNSET_FILES:
        for base in (split_dir, root):
            f = base / name
            if f.is_file():
                rows = read_synset_words(f)
                known = {w for w, _ in rows}
                extra = [c for c in folders if c not in known]
                if extra:
                    raise ValueError(f"{f}: class folder(s) {extra[:5]} of {split_dir} are not listed")
                return ClassIndex(tuple(w for w, _ in rows), tuple(n.split(",")[0] for _, n in rows), str(f))
    from mnet.weights.labels import imagenet1k_synsets

    canonical = imagenet1k_synsets()
    wnids = {w for w, _ in canonical}
    if all(c in wnids for c in folders):
        return ClassIndex(
            tuple(w for w, _ in canonical),
            tuple(n.split(",")[0] for _, n in canonical),
            "ILSVRC2012 synsets (sorted wnids)",
        )
    return ClassIndex(tuple(folders), tuple(folders), "sorted folder names")


class ImageFolderDataset(Dataset):
    """``<split>/<class>/<image>`` samples with labels in the canonical order; images via ``load_rgb``."""

    def __init__(self, data: str | Path, split: str | None = None, transform: Callable | None = None) -> None:
        self.root, self.split_dir = resolve_split(data, split)
        self.classes = class_index(self.root, self.split_dir)
        idx = self.classes.index()
        self.samples: list[tuple[Path, int]] = []
        for cls_dir in sorted(p for p in self.split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for f in sorted(cls_dir.iterdir()):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                    self.samples.append((f, idx[cls_dir.name]))
        if not self.samples:
            raise ValueError(f"{self.split_dir}: no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        img = load_rgb(path)
        return (self.transform(img) if self.transform else img), label

    @property
    def num_classes_present(self) -> int:
        return len({label for _, label in self.samples})
