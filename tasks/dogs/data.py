"""Stanford Dogs in its official layout.

``Images/<wnid>-<breed>/<file>.jpg``, ``lists/{train,test}_list.mat`` (``file_list``, ``labels``
1-based, ``annotation_list``) and optionally ``Annotation/<wnid>-<breed>/<file>`` (PASCAL VOC XML
boxes). Labels index the 120 breeds in sorted-wnid order (:data:`BREEDS`); every list entry's folder
is checked against its label, so a mislabelled list fails loudly instead of training on wrong labels.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset

from ..data import ImageDecodeError, load_rgb

log = logging.getLogger(__name__)

OnBad = Literal["error", "skip"]
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Breed:
    wnid: str
    name: str
    imagenet_index: int  # row of the 1000-way ImageNet classifier (sorted ILSVRC2012 wnids)


@lru_cache(maxsize=1)
def breeds() -> tuple[Breed, ...]:
    """The 120 breeds in label order (``breeds.tsv`` beside this module)."""
    out = []
    for line in (Path(__file__).with_name("breeds.tsv")).read_text().splitlines():
        if line and not line.startswith("#"):
            wnid, name, idx = line.split("\t")
            out.append(Breed(wnid, name, int(idx)))
    return tuple(out)


NUM_BREEDS = 120


@dataclass(frozen=True)
class DogSample:
    path: Path
    label: int  # 0-based
    annotation: Path | None = None


def _cells(mat: dict, key: str, path: Path) -> list[str]:
    if key not in mat:
        raise ValueError(f"{path}: no {key!r} variable (has {sorted(k for k in mat if not k.startswith('__'))})")
    return [str(np.asarray(c).ravel()[0]) for c in np.asarray(mat[key]).ravel()]


def read_list(root: Path, split: str) -> list[DogSample]:
    """Parse ``lists/<split>_list.mat`` (scipy.io.loadmat) into samples with 0-based labels, checked."""
    import scipy.io

    if split not in SPLITS:
        raise ValueError(f"unknown Stanford Dogs split {split!r}; choose from {', '.join(SPLITS)}")
    path = root / "lists" / f"{split}_list.mat"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: Stanford Dogs list file missing (expected the official layout "
            f"Images/, lists/{{train,test}}_list.mat under {root})"
        )
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:  # noqa: BLE001 - scipy raises many kinds (MatReadError, IndexError, ...) for a bad file
        raise ValueError(f"{path}: not a readable MATLAB list file ({type(e).__name__}: {e})") from e
    files = _cells(mat, "file_list", path)
    labels = np.asarray(mat.get("labels", np.empty(0))).ravel().astype(int)
    if len(labels) != len(files):
        raise ValueError(f"{path}: {len(files)} files but {len(labels)} labels")
    annos = _cells(mat, "annotation_list", path) if "annotation_list" in mat else [None] * len(files)
    table = breeds()
    samples = []
    for f, lab, a in zip(files, labels, annos):
        if not 1 <= lab <= NUM_BREEDS:
            raise ValueError(f"{path}: label {lab} of {f} is outside 1..{NUM_BREEDS}")
        folder = f.split("/")[0]
        if not folder.startswith(table[lab - 1].wnid):
            raise ValueError(
                f"{path}: {f} has label {lab} ({table[lab - 1].wnid} {table[lab - 1].name}) but lies "
                f"in folder {folder!r}: the list and the folders disagree"
            )
        samples.append(DogSample(root / "Images" / f, int(lab) - 1, root / "Annotation" / a if a else None))
    return samples


def read_box(path: Path) -> tuple[int, int, int, int] | None:
    """Union of the VOC ``bndbox`` boxes in an annotation file (None when there is none)."""
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as e:
        raise ValueError(f"{path}: unreadable annotation ({e})") from None
    boxes = [[int(float(b.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")] for b in tree.iter("bndbox")]
    if not boxes:
        return None
    b = np.asarray(boxes)
    return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())


class StanfordDogs(Dataset):
    """``(transform(image), label)`` pairs of one split.

    ``on_bad_image='error'`` raises naming the file (missing, corrupt, truncated); ``'skip'`` drops
    listed-but-missing files at construction and returns ``None`` for undecodable ones (the engine's
    collate drops and counts them); every skip is logged and recorded in :attr:`skipped`.
    ``crop_to_box`` crops to the union of the ``Annotation/`` boxes when the file exists.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Callable | None = None,
        *,
        on_bad_image: OnBad = "error",
        crop_to_box: bool = False,
    ) -> None:
        if on_bad_image not in ("error", "skip"):
            raise ValueError(f"on_bad_image must be 'error' or 'skip', got {on_bad_image!r}")
        self.root = Path(root)
        if not (self.root / "Images").is_dir():
            raise FileNotFoundError(f"{self.root}: no Images/ folder (expected the official Stanford Dogs layout)")
        self.split, self.transform, self.on_bad, self.crop_to_box = split, transform, on_bad_image, crop_to_box
        self.skipped: list[tuple[str, str]] = []
        self.samples: list[DogSample] = []
        for s in read_list(self.root, split):
            if s.path.is_file():
                self.samples.append(s)
            elif on_bad_image == "error":
                raise FileNotFoundError(
                    f"{s.path}: listed in lists/{split}_list.mat but missing "
                    f"(set data.on_bad_image=skip to skip such files)"
                )
            else:
                self._skip(s.path, "listed but missing")
        if not self.samples:
            raise ValueError(f"{self.root}: split {split!r} has no readable images")

    def _skip(self, path: Path, why: str) -> None:
        self.skipped.append((str(path), why))
        log.warning("skipping %s: %s", path, why)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int):
        s = self.samples[index]
        img = load_rgb(s.path)
        if self.crop_to_box and s.annotation is not None and s.annotation.is_file():
            box = read_box(s.annotation)
            if box is not None:
                img = img.crop(box)
        return img

    def __getitem__(self, index: int) -> Any:
        try:
            img = self.load(index)
        except ImageDecodeError as e:
            if self.on_bad == "error":
                raise
            self._skip(self.samples[index].path, str(e))
            return None
        x = self.transform(img) if self.transform else img
        return x, self.samples[index].label
