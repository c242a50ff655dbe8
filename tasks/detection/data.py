"""COCO-format detection data in the official layout: ``<root>/<split>/`` images and
``<root>/annotations/instances_<split>.json`` (read with pycocotools).

Any COCO-format dataset works with its own categories: class ``i + 1`` is the i-th category id (sorted),
so COCO's 80 categories become contiguous labels 1..80 (0 is background), and ``category_ids`` maps them
back to COCO's 90-id space. Crowd boxes are ignored; boxes partly outside the image are clipped and
boxes with no area left are dropped, both counted in :attr:`CocoDetection.stats`. Bad annotations
(unknown category id, non-finite or malformed coordinates) raise a ValueError naming the annotation id.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.images import load_rgb


def annotation_file(root: str | Path, split: str) -> Path:
    return Path(root) / "annotations" / f"instances_{split}.json"


def load_coco(path: str | Path):
    """Parse an annotation file with pycocotools (its chatter silenced), with errors naming the file."""
    from pycocotools.coco import COCO

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"COCO annotation file not found: {path} "
            f"(expected the official layout <root>/annotations/instances_<split>.json)"
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a valid COCO annotation file ({type(e).__name__}: {e})") from e


def clean_boxes(
    anns: Sequence[dict], width: int, height: int, label_of: dict[int, int], stats: Counter
) -> tuple[np.ndarray, np.ndarray]:
    """COCO ``bbox`` [x, y, w, h] → (K, 4) xyxy clipped to the image and (K,) labels, crowd skipped."""
    boxes, labels = [], []
    for a in anns:
        aid = a.get("id", "?")
        if a.get("iscrowd", 0):
            stats["crowd_ignored"] += 1
            continue
        cat = a.get("category_id")
        if cat not in label_of:
            raise ValueError(
                f"annotation id {aid}: unknown category_id {cat!r} "
                f"(known: {sorted(label_of)[:10]}{'…' if len(label_of) > 10 else ''})"
            )
        bbox = a.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise ValueError(f"annotation id {aid}: bbox must be [x, y, width, height], got {bbox!r}")
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise ValueError(f"annotation id {aid}: bbox has non-numeric values {bbox!r}") from None
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise ValueError(f"annotation id {aid}: bbox has non-finite values {bbox!r}")
        x1, y1, x2, y2 = x, y, x + w, y + h
        cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
        cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
        if cx2 - cx1 < 1e-3 or cy2 - cy1 < 1e-3:
            stats["invalid_dropped"] += 1
            continue
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
            stats["clipped"] += 1
        boxes.append((cx1, cy1, cx2, cy2))
        labels.append(label_of[cat])
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4), np.asarray(labels, dtype=np.int64))


class CocoDetection(Dataset):
    """One split of a COCO-format dataset. Items: ``(image, target)`` where ``image`` is an RGB uint8
    array (H, W, 3) — or whatever ``transform`` makes of it — and ``target`` holds ``boxes`` (K, 4)
    float32 xyxy pixels, ``labels`` (K,) int64 in 1..num_classes, ``image_id`` and ``orig_size`` (H, W).

    ``transform(image, boxes, labels) -> (image, boxes, labels)`` runs on numpy arrays.
    ``category_ids`` fixes the label space (e.g. a model's); by default the file's categories, sorted.
    Images listed in the file but missing on disk raise FileNotFoundError naming them, unless
    ``skip_missing`` (then they are dropped and counted).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "val2017",
        *,
        transform: Callable | None = None,
        category_ids: Sequence[int] | None = None,
        skip_missing: bool = False,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.image_dir = self.root / split
        self.ann_file = annotation_file(root, split)
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.image_dir} (expected <root>/{split}/)")
        self.coco = load_coco(self.ann_file)
        file_cats = sorted(self.coco.getCatIds())
        self.category_ids = list(category_ids) if category_ids is not None else file_cats
        self.label_of = {c: i + 1 for i, c in enumerate(self.category_ids)}
        cats = self.coco.cats
        self.class_names = [cats[c]["name"] if c in cats else str(c) for c in self.category_ids]
        self.transform = transform
        self.stats: Counter = Counter()
        ids, missing = [], []
        for img_id in sorted(self.coco.getImgIds()):
            info = self.coco.imgs[img_id]
            if not (self.image_dir / info["file_name"]).is_file():
                missing.append(f"{info['file_name']} (image id {img_id})")
                continue
            ids.append(img_id)
        if missing:
            if not skip_missing:
                raise FileNotFoundError(
                    f"{len(missing)} image(s) listed in {self.ann_file} are missing from "
                    f"{self.image_dir}: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
                )
            self.stats["missing_images_skipped"] = len(missing)
        self.ids = ids
        # validate every annotation up front, so a bad file fails before training starts
        for img_id in self.ids:
            _, labels = self._annotations(img_id, self.stats)
            self.stats["empty_images"] += int(len(labels) == 0)

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def _annotations(self, img_id: int, stats: Counter) -> tuple[np.ndarray, np.ndarray]:
        info = self.coco.imgs[img_id]
        anns = self.coco.imgToAnns.get(img_id, [])
        return clean_boxes(anns, int(info["width"]), int(info["height"]), self.label_of, stats)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        img_id = self.ids[index]
        info = self.coco.imgs[img_id]
        image = np.asarray(load_rgb(self.image_dir / info["file_name"]))
        boxes, labels = self._annotations(img_id, Counter())
        orig_size = image.shape[:2]
        if self.transform is not None:
            image, boxes, labels = self.transform(image, boxes, labels)
        target = {
            "boxes": torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)),
            "labels": torch.as_tensor(np.asarray(labels, dtype=np.int64)),
            "image_id": img_id,
            "orig_size": tuple(int(s) for s in orig_size),
        }
        return image, target


def collate(batch: Sequence[tuple[Any, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """Stack equally sized image tensors; keep targets as a list (their box counts differ)."""
    images, targets = zip(*batch)
    return torch.stack(list(images)), list(targets)


def collate_targets(batch: Sequence[tuple[Any, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """For training: images stacked, targets reduced to their tensors (``boxes``, ``labels``)."""
    images, targets = collate(batch)
    return images, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
