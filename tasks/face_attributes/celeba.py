"""CelebA in its official layout (Liu et al., ICCV 2015).

``img_align_celeba/<id>.jpg`` (aligned 178×218 faces), ``list_attr_celeba.txt`` (line 1: the image
count; line 2: the 40 attribute names; then one row per image: file name and 40 values of -1/1),
``list_eval_partition.txt`` (file name and 0/1/2 = train/val/test) and, for faces in the wild,
``img_celeba/<id>.jpg`` with ``list_bbox_celeba.txt`` (count, header ``image_id x_1 y_1 width height``,
one box per image). Every file is checked as it is read; a bad line raises a ValueError naming the file
and the line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..data import ImageDecodeError, load_rgb

#: CelebA's 40 attributes, in the official column order
CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
ATTR_FILE, PARTITION_FILE, BBOX_FILE = "list_attr_celeba.txt", "list_eval_partition.txt", "list_bbox_celeba.txt"
ALIGNED_DIR, WILD_DIR = "img_align_celeba", "img_celeba"
BBOX_HEADER = ("image_id", "x_1", "y_1", "width", "height")


@dataclass(frozen=True)
class AttributeTable:
    names: tuple[str, ...]
    files: tuple[str, ...]
    values: np.ndarray  # (N, A) int8 of -1 / 1


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (CelebA's official layout needs it)")
    return path.read_text().splitlines()


def _count(path: Path, lines: list[str], n_rows: int) -> None:
    try:
        count = int(lines[0].split()[0])
    except (IndexError, ValueError):
        raise ValueError(f"{path}: line 1 must be the image count, got {lines[0] if lines else ''!r}") from None
    if count != n_rows:
        raise ValueError(f"{path}: line 1 says {count} images, the file has {n_rows} rows")


def _plus_minus_one(text: str) -> int | None:
    try:
        v = int(text)
    except ValueError:
        return None
    return v if v in (-1, 1) else None


def read_attributes(path: str | Path) -> AttributeTable:
    """Parse ``list_attr_celeba.txt`` (any number of attribute columns, named on line 2)."""
    path = Path(path)
    lines = [ln for ln in _lines(path) if ln.strip()]
    if len(lines) < 2:
        raise ValueError(f"{path}: needs a count line and an attribute-name line, has {len(lines)} line(s)")
    names = tuple(lines[1].split())
    if not names or any(n.lstrip("-").isdigit() for n in names):
        raise ValueError(f"{path}: line 2 must be the attribute names, got {lines[1][:80]!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: line 2 repeats attribute names")
    rows = lines[2:]
    _count(path, lines, len(rows))
    files, values, seen = [], np.empty((len(rows), len(names)), dtype=np.int8), set()
    for i, row in enumerate(rows):
        parts = row.split()
        if parts[0] in seen:
            raise ValueError(f"{path}: line {i + 3}: {parts[0]} is listed twice")
        seen.add(parts[0])
        if len(parts) != len(names) + 1:
            raise ValueError(f"{path}: line {i + 3} has {len(parts) - 1} values, line 2 names {len(names)} attributes")
        vals = [_plus_minus_one(v) for v in parts[1:]]
        if None in vals:
            bad = ", ".join(f"{names[j]}={parts[j + 1]!r}" for j, v in enumerate(vals) if v is None)
            raise ValueError(f"{path}: line {i + 3}: values must be -1 or 1, got {bad[:200]}")
        files.append(parts[0])
        values[i] = vals
    return AttributeTable(names, tuple(files), values)


def read_partition(path: str | Path) -> dict[str, int]:
    """``list_eval_partition.txt`` → file name → 0/1/2."""
    path = Path(path)
    out: dict[str, int] = {}
    for i, line in enumerate(_lines(path)):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise ValueError(f"{path}: line {i + 1} must be '<file> 0|1|2', got {line!r}")
        out[parts[0]] = int(parts[1])
    return out


def read_bboxes(path: str | Path) -> dict[str, tuple[int, int, int, int]]:
    """``list_bbox_celeba.txt`` → file name → (x, y, width, height) in the in-the-wild image."""
    path = Path(path)
    lines = [ln for ln in _lines(path) if ln.strip()]
    if len(lines) < 2 or tuple(lines[1].split()) != BBOX_HEADER:
        raise ValueError(f"{path}: line 2 must be {' '.join(BBOX_HEADER)!r}")
    _count(path, lines, len(lines) - 2)
    out = {}
    for i, row in enumerate(lines[2:]):
        parts = row.split()
        if len(parts) != 5 or not all(p.isdigit() for p in parts[1:]):
            raise ValueError(f"{path}: line {i + 3} must be '<file> x y width height', got {row!r}")
        out[parts[0]] = tuple(int(p) for p in parts[1:])  # type: ignore[assignment]
    return out


def select_attributes(available: Sequence[str], wanted: Sequence[str] | None) -> list[int]:
    """Column indices of ``wanted`` (all when None); unknown names raise a ValueError with suggestions."""
    if wanted is None:
        return list(range(len(available)))
    out = []
    for name in wanted:
        if name not in available:
            close = difflib.get_close_matches(name, list(available), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(available)}"
            raise ValueError(f"unknown CelebA attribute {name!r}{hint}")
        out.append(list(available).index(name))
    if not out:
        raise ValueError("select at least one attribute")
    return out


def crop_box(img: Image.Image, box: tuple[float, float, float, float], margin: float) -> Image.Image:
    """Crop ``box`` (x, y, width, height) grown by ``margin`` of its size on each side, made square."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    return img.crop((round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)))


class CelebA(Dataset):
    """``(image tensor, targets float32 in {0, 1})`` for one split and a chosen subset of attributes.

    ``in_the_wild=True`` reads ``img_celeba/`` and crops each face by ``list_bbox_celeba.txt`` (with
    ``margin``) instead of the aligned images.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        transform: Callable[[Image.Image], torch.Tensor],
        *,
        attributes: Sequence[str] | None = None,
        in_the_wild: bool = False,
        margin: float = 0.2,
    ) -> None:
        root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such CelebA folder")
        table = read_attributes(root / ATTR_FILE)
        cols = select_attributes(table.names, attributes)
        partition = read_partition(root / PARTITION_FILE)
        missing = [f for f in table.files if f not in partition]
        if missing:
            raise ValueError(f"{root / PARTITION_FILE}: no partition for {len(missing)} image(s), e.g. {missing[0]}")
        keep = [i for i, f in enumerate(table.files) if partition[f] == SPLITS[split]]
        if not keep:
            raise ValueError(f"{root}: the {split!r} split is empty")
        self.root, self.split, self.transform = root, split, transform
        self.attributes = tuple(table.names[c] for c in cols)
        self.files = [table.files[i] for i in keep]
        self.targets = torch.from_numpy((table.values[np.ix_(keep, cols)] > 0).astype(np.float32))
        self.image_dir = root / (WILD_DIR if in_the_wild else ALIGNED_DIR)
        self.boxes = read_bboxes(root / BBOX_FILE) if in_the_wild else None
        self.margin = margin
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"{self.image_dir}: no such image folder")

    def __len__(self) -> int:
        return len(self.files)

    def load_image(self, index: int) -> Image.Image:
        name = self.files[index]
        img = load_rgb(self.image_dir / name)
        if self.boxes is not None:
            if name not in self.boxes:
                raise ValueError(f"{self.root / BBOX_FILE}: no box for {name}")
            img = crop_box(img, self.boxes[name], self.margin)
        return img

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.load_image(index)), self.targets[index]


__all__ = [
    "CELEBA_ATTRIBUTES",
    "SPLITS",
    "AttributeTable",
    "CelebA",
    "ImageDecodeError",
    "crop_box",
    "read_attributes",
    "read_bboxes",
    "read_partition",
    "select_attributes",
]
